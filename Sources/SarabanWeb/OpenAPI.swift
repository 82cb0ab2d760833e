/// The JSON API's OpenAPI 3.1 document, served at `/api/v1/openapi.json` and kept in the
/// repository as `Docs/openapi.json` (`saraban dev openapi` prints it; a test checks the two are
/// the same and that its paths and methods are exactly the routes under `/api/v1`).
///
/// Why a document checked against the routes instead of generated stubs: swift-openapi-generator
/// builds a plugin with its own dependency tree (OpenAPIKit, Yams) before the first line of the app
/// compiles, minutes of CI on two cores for a handful of routes; a test keeps the two from drifting.
public enum OpenAPI {
    public static let document = #"""
        {
          "openapi": "3.1.0",
          "info": {
            "title": "Saraban node API",
            "version": "1.0.0",
            "description": "The JSON API of a Saraban node (an office's e-Saraban server). Every call needs an API token (`saraban token create --name NAME --scope read|write`, sent as `Authorization: Bearer sbt_…`) or a browser session (with the `X-CSRF-Token` header on calls that change something). Errors are `application/problem+json` (RFC 9457) with `detail` in English and `detail_th` in Thai."
          },
          "servers": [{ "url": "/" }],
          "security": [{ "token": [] }, { "session": [] }],
          "paths": {
            "/api/v1/openapi.json": {
              "get": {
                "operationId": "getOpenAPI",
                "summary": "This document",
                "responses": {
                  "200": { "description": "The OpenAPI document", "content": { "application/json": { "schema": { "type": "object" } } } },
                  "401": { "$ref": "#/components/responses/Unauthenticated" }
                }
              }
            },
            "/api/v1/me": {
              "get": {
                "operationId": "getMe",
                "summary": "Who is calling: a user (with role) or a token (with scope)",
                "responses": {
                  "200": { "description": "The caller", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Me" } } } },
                  "401": { "$ref": "#/components/responses/Unauthenticated" }
                }
              }
            },
            "/api/v1/me/password": {
              "post": {
                "operationId": "changeOwnPassword",
                "summary": "Change the logged-in user's own password (browser session only)",
                "requestBody": {
                  "required": true,
                  "content": { "application/json": { "schema": { "$ref": "#/components/schemas/PasswordChange" } } }
                },
                "responses": {
                  "204": { "description": "Changed" },
                  "400": { "$ref": "#/components/responses/Problem" },
                  "401": { "$ref": "#/components/responses/Unauthenticated" },
                  "403": { "$ref": "#/components/responses/Problem" },
                  "413": { "$ref": "#/components/responses/Problem" },
                  "429": { "$ref": "#/components/responses/Problem" }
                }
              }
            },
            "/api/v1/node": {
              "get": {
                "operationId": "getNode",
                "summary": "This node: office, letter code, node id, size",
                "responses": {
                  "200": { "description": "The node", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Node" } } } },
                  "401": { "$ref": "#/components/responses/Unauthenticated" }
                }
              }
            },
            "/api/v1/peers": {
              "get": {
                "operationId": "listPeers",
                "summary": "The configured peers: last contact and lag in changes each way",
                "responses": {
                  "200": {
                    "description": "The peers",
                    "content": { "application/json": { "schema": { "type": "array", "items": { "$ref": "#/components/schemas/Peer" } } } }
                  },
                  "401": { "$ref": "#/components/responses/Unauthenticated" }
                }
              }
            }
          },
          "components": {
            "securitySchemes": {
              "token": { "type": "http", "scheme": "bearer", "description": "An API token, `sbt_…`. A read token may only GET." },
              "session": { "type": "apiKey", "in": "cookie", "name": "saraban_session", "description": "A browser session; calls that change something also send `X-CSRF-Token`." }
            },
            "responses": {
              "Problem": {
                "description": "The request was refused; nothing was stored",
                "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
              },
              "Unauthenticated": {
                "description": "No valid token or session",
                "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
              }
            },
            "schemas": {
              "Problem": {
                "type": "object",
                "required": ["type", "title", "status", "code", "detail", "detail_th"],
                "properties": {
                  "type": { "type": "string", "description": "urn:saraban:problem:CODE" },
                  "title": { "type": "string" },
                  "status": { "type": "integer" },
                  "code": { "type": "string", "description": "Stable code: unauthenticated, session-expired, csrf, forbidden, read-only-token, invalid-token, not-found, invalid, invalid-utf8, too-large, locked-out, busy, conflict…" },
                  "detail": { "type": "string", "description": "English" },
                  "detail_th": { "type": "string", "description": "Thai" }
                }
              },
              "PasswordChange": {
                "type": "object",
                "required": ["current_password", "new_password"],
                "properties": {
                  "current_password": { "type": "string" },
                  "new_password": { "type": "string", "minLength": 8 }
                }
              },
              "Me": {
                "type": "object",
                "required": ["kind", "name"],
                "properties": {
                  "kind": { "type": "string", "enum": ["user", "token"] },
                  "name": { "type": "string" },
                  "display_name": { "type": "string" },
                  "role": { "type": "string", "enum": ["clerk", "officer", "head", "admin"] },
                  "scope": { "type": "string", "enum": ["read", "write"] }
                }
              },
              "Node": {
                "type": "object",
                "required": ["office", "node_id", "documents", "database_bytes"],
                "properties": {
                  "office": { "type": "string" },
                  "letter_code": { "type": "string" },
                  "node_id": { "type": "string" },
                  "documents": { "type": "integer" },
                  "database_bytes": { "type": "integer" }
                }
              },
              "Peer": {
                "type": "object",
                "description": "As `saraban peer list --json`: lag and times are absent before the first contact",
                "required": ["node_id", "address", "envelopes_sent", "envelopes_received"],
                "properties": {
                  "name": { "type": "string" },
                  "node_id": { "type": "string" },
                  "address": { "type": "string" },
                  "last_contact": { "type": "string", "format": "date-time" },
                  "last_synced": { "type": "string", "format": "date-time" },
                  "last_error": { "type": "string" },
                  "changes_peer_lacks": { "type": "integer" },
                  "changes_we_lack": { "type": "integer" },
                  "envelopes_sent": { "type": "integer" },
                  "envelopes_received": { "type": "integer" }
                }
              }
            }
          }
        }

        """#
}

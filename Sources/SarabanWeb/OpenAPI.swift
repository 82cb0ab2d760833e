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
            },
            "/api/v1/inbox": {
              "get": {
                "operationId": "listInbox",
                "summary": "Dispatches awaiting receipt at this office, most urgent first (ด่วนที่สุด), then oldest",
                "description": "The subject of a secret letter (ลับ, ลับมาก) above the caller's clearance is withheld (`withheld`: true, the class in its place); API tokens have no clearance.",
                "responses": {
                  "200": { "description": "The inbox", "content": { "application/json": { "schema": { "type": "array", "items": { "$ref": "#/components/schemas/InboxItem" } } } } },
                  "401": { "$ref": "#/components/responses/Unauthenticated" }
                }
              }
            },
            "/api/v1/inbox/{id}/receive": {
              "post": {
                "operationId": "receiveDispatch",
                "summary": "Receive (ลงรับ) a dispatch: this office's record, its receive number, the receipt back to the sender. Repeating it writes nothing new",
                "parameters": [{ "$ref": "#/components/parameters/DocumentID" }],
                "responses": {
                  "200": { "description": "Received", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Received" } } } },
                  "401": { "$ref": "#/components/responses/Unauthenticated" },
                  "403": { "$ref": "#/components/responses/Problem" },
                  "404": { "$ref": "#/components/responses/Problem" },
                  "409": { "$ref": "#/components/responses/Problem" }
                }
              }
            },
            "/api/v1/inbox/{id}/return": {
              "post": {
                "operationId": "returnDispatch",
                "summary": "Return (ส่งคืน) a dispatch to its sender with a reason; refused once it was received",
                "parameters": [{ "$ref": "#/components/parameters/DocumentID" }],
                "requestBody": {
                  "required": true,
                  "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ReturnReason" } } }
                },
                "responses": {
                  "200": { "description": "Returned", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Returned" } } } },
                  "400": { "$ref": "#/components/responses/Problem" },
                  "401": { "$ref": "#/components/responses/Unauthenticated" },
                  "403": { "$ref": "#/components/responses/Problem" },
                  "404": { "$ref": "#/components/responses/Problem" },
                  "409": { "$ref": "#/components/responses/Problem" },
                  "413": { "$ref": "#/components/responses/Problem" }
                }
              }
            },
            "/api/v1/letters": {
              "get": {
                "operationId": "listLetters",
                "summary": "This office's letters of one register year, newest first, a page at a time",
                "parameters": [
                  { "$ref": "#/components/parameters/Year" },
                  { "name": "page", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000000, "default": 1 } },
                  { "name": "per_page", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 200, "default": 50 } }
                ],
                "responses": {
                  "200": { "description": "One page", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/LetterPage" } } } },
                  "400": { "$ref": "#/components/responses/Problem" },
                  "401": { "$ref": "#/components/responses/Unauthenticated" }
                }
              }
            },
            "/api/v1/letters/{id}": {
              "get": {
                "operationId": "getLetter",
                "summary": "One letter: fields, attachments, where it was sent and the receipts. A secret letter needs a user cleared for it (403 otherwise); every look at one is audited",
                "parameters": [{ "$ref": "#/components/parameters/DocumentID" }],
                "responses": {
                  "200": { "description": "The letter", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Letter" } } } },
                  "401": { "$ref": "#/components/responses/Unauthenticated" },
                  "403": { "$ref": "#/components/responses/Problem" },
                  "404": { "$ref": "#/components/responses/Problem" }
                }
              }
            },
            "/api/v1/letters/{id}/attachments/{name}": {
              "get": {
                "operationId": "getAttachment",
                "summary": "An attachment's bytes, streamed; `Content-Disposition` with the exact name (RFC 6266). A name that could be a path (`/`, `\\`, `..`, control characters) is refused with 400; a secret letter needs a cleared user (403, audited)",
                "parameters": [
                  { "$ref": "#/components/parameters/DocumentID" },
                  { "name": "name", "in": "path", "required": true, "schema": { "type": "string" }, "description": "The attachment's name, percent-encoded" }
                ],
                "responses": {
                  "200": { "description": "The file", "content": { "application/octet-stream": { "schema": { "type": "string", "contentMediaType": "application/octet-stream" } } } },
                  "400": { "$ref": "#/components/responses/Problem" },
                  "401": { "$ref": "#/components/responses/Unauthenticated" },
                  "403": { "$ref": "#/components/responses/Problem" },
                  "404": { "$ref": "#/components/responses/Problem" }
                }
              }
            },
            "/api/v1/registers/{book}": {
              "get": {
                "operationId": "getRegister",
                "summary": "A register as the official form (the columns of `saraban register show`), subjects above the caller's clearance withheld",
                "parameters": [
                  { "name": "book", "in": "path", "required": true, "schema": { "type": "string", "enum": ["receive", "send", "circular", "order"] } },
                  { "$ref": "#/components/parameters/Year" }
                ],
                "responses": {
                  "200": { "description": "The register", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Register" } } } },
                  "400": { "$ref": "#/components/responses/Problem" },
                  "401": { "$ref": "#/components/responses/Unauthenticated" },
                  "404": { "$ref": "#/components/responses/Problem" }
                }
              }
            },
            "/api/v1/audit": {
              "get": {
                "operationId": "listAudit",
                "summary": "Every view of a secret letter (and every refused attempt), newest first: a logged-in admin only",
                "responses": {
                  "200": { "description": "The audit list", "content": { "application/json": { "schema": { "type": "array", "items": { "$ref": "#/components/schemas/AuditEntry" } } } } },
                  "401": { "$ref": "#/components/responses/Unauthenticated" },
                  "403": { "$ref": "#/components/responses/Problem" }
                }
              }
            }
          },
          "components": {
            "parameters": {
              "DocumentID": { "name": "id", "in": "path", "required": true, "schema": { "type": "string" }, "description": "A document id (as `saraban letter list` and the inbox show it)" },
              "Year": { "name": "year", "in": "query", "schema": { "type": "integer", "minimum": 2400, "maximum": 2800 }, "description": "Buddhist-Era register year (default: the current one)" }
            },
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
              "InboxItem": {
                "type": "object",
                "required": ["id", "from_office", "from_node", "urgency", "urgency_en", "secrecy", "sent", "letter_number", "date", "subject", "withheld", "attachments"],
                "properties": {
                  "id": { "type": "string" },
                  "from_office": { "type": "string" },
                  "from_node": { "type": "string" },
                  "urgency": { "type": "string", "enum": ["ปกติ", "ด่วน", "ด่วนมาก", "ด่วนที่สุด"] },
                  "urgency_en": { "type": "string", "enum": ["normal", "urgent", "very-urgent", "most-urgent"] },
                  "secrecy": { "type": "string", "enum": ["none", "confidential", "secret"] },
                  "sent": { "type": "string", "format": "date-time" },
                  "letter_number": { "type": "string" },
                  "date": { "type": "string" },
                  "subject": { "type": "string" },
                  "withheld": { "type": "boolean" },
                  "attachments": { "type": "array", "items": { "$ref": "#/components/schemas/Attachment" } }
                }
              },
              "Attachment": {
                "type": "object",
                "required": ["name", "size", "hash"],
                "properties": { "name": { "type": "string" }, "size": { "type": "integer" }, "hash": { "type": "string" }, "url": { "type": "string" } }
              },
              "Received": {
                "type": "object",
                "required": ["record", "number", "year", "existing"],
                "properties": {
                  "record": { "type": "string", "description": "This office's record of the letter" },
                  "number": { "type": "integer", "description": "เลขรับ" },
                  "year": { "type": "integer" },
                  "existing": { "type": "boolean", "description": "Received before: nothing new was written" }
                }
              },
              "ReturnReason": {
                "type": "object",
                "required": ["reason"],
                "properties": { "reason": { "type": "string", "minLength": 1, "maxLength": 500 } }
              },
              "Returned": { "type": "object", "properties": { "receipt": { "type": "string" } } },
              "LetterPage": {
                "type": "object",
                "required": ["year", "page", "per_page", "total", "items"],
                "properties": {
                  "year": { "type": "integer" }, "page": { "type": "integer" }, "per_page": { "type": "integer" }, "total": { "type": "integer" },
                  "items": { "type": "array", "items": { "$ref": "#/components/schemas/Letter" } }
                }
              },
              "Letter": {
                "type": "object",
                "required": ["id", "kind", "status", "year", "subject", "secrecy", "urgency", "withheld"],
                "properties": {
                  "id": { "type": "string" },
                  "kind": { "type": "string" },
                  "status": { "type": "string" },
                  "year": { "type": "integer" },
                  "number": { "type": "string" },
                  "date": { "type": "string" },
                  "subject": { "type": "string" },
                  "secrecy": { "type": "string", "enum": ["none", "confidential", "secret"] },
                  "urgency": { "type": "string", "enum": ["normal", "urgent", "very-urgent", "most-urgent"] },
                  "withheld": { "type": "boolean" },
                  "from_office": { "type": "string" },
                  "receive_number": { "type": "integer" },
                  "fields": { "type": "object", "additionalProperties": { "type": "string" } },
                  "attachments": { "type": "array", "items": { "$ref": "#/components/schemas/Attachment" } },
                  "deliveries": {
                    "type": "array",
                    "items": {
                      "type": "object",
                      "required": ["office", "dispatch", "state"],
                      "properties": {
                        "office": { "type": "string" },
                        "dispatch": { "type": "string" },
                        "state": { "type": "string", "enum": ["pending", "received", "returned"] },
                        "receive_number": { "type": "integer" },
                        "receive_year": { "type": "integer" },
                        "reason": { "type": "string" }
                      }
                    }
                  }
                }
              },
              "Register": {
                "type": "object",
                "required": ["book", "book_thai", "year", "office", "columns", "lines"],
                "properties": {
                  "book": { "type": "string" }, "book_thai": { "type": "string" }, "year": { "type": "integer" }, "office": { "type": "string" },
                  "columns": { "type": "array", "items": { "type": "string" } },
                  "lines": {
                    "type": "array",
                    "items": {
                      "type": "object",
                      "required": ["number", "state", "letter_number", "date", "from", "to", "subject", "withheld", "action", "note"],
                      "properties": {
                        "number": { "type": "integer" }, "state": { "type": "string" }, "letter": { "type": "string" },
                        "letter_number": { "type": "string" }, "date": { "type": "string" }, "from": { "type": "string" }, "to": { "type": "string" },
                        "subject": { "type": "string" }, "withheld": { "type": "boolean" }, "action": { "type": "string" }, "note": { "type": "string" },
                        "registered": { "type": "string", "format": "date" }, "time": { "type": "string" }
                      }
                    }
                  }
                }
              },
              "AuditEntry": {
                "type": "object",
                "required": ["time", "who", "letter", "secrecy", "via", "allowed"],
                "properties": {
                  "time": { "type": "integer", "description": "ms since 1970" },
                  "who": { "type": "string", "description": "user:NAME or token:NAME" },
                  "letter": { "type": "string" },
                  "secrecy": { "type": "string" },
                  "via": { "type": "string", "enum": ["page", "print", "api", "attachment"] },
                  "allowed": { "type": "boolean" }
                }
              },
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
                  "envelopes_received": { "type": "integer" },
                  "withheld": {
                    "type": "array",
                    "description": "Authors the peer did not deliver in its latest settled session though signed head claims made before it say their envelopes exist (absent when none)",
                    "items": {
                      "type": "object",
                      "required": ["space", "author", "held", "claimed", "behind", "claimant", "claim_time", "detected_at"],
                      "properties": {
                        "space": { "type": "string" },
                        "author": { "type": "string" },
                        "held": { "type": "integer" },
                        "claimed": { "type": "integer" },
                        "behind": { "type": "integer" },
                        "claimant": { "type": "string" },
                        "claim_time": { "type": "integer", "description": "ms since 1970, the claimant's clock" },
                        "detected_at": { "type": "integer", "description": "ms since 1970" }
                      }
                    }
                  }
                }
              }
            }
          }
        }

        """#
}

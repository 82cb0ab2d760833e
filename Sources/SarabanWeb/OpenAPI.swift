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
            "/api/v1/letters/{id}/body": {
              "get": {
                "operationId": "getLetterBody",
                "summary": "The body as text and the copy to edit it from (`body_base`, for PATCH)",
                "parameters": [{ "$ref": "#/components/parameters/LetterID" }],
                "responses": {
                  "200": { "description": "The body", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Body" } } } },
                  "401": { "$ref": "#/components/responses/Unauthenticated" },
                  "403": { "$ref": "#/components/responses/Problem" },
                  "404": { "$ref": "#/components/responses/Problem" }
                }
              }
            },
            "/api/v1/letters/{id}/register": {
              "post": {
                "operationId": "registerLetter",
                "summary": "Give the letter its number from this office's register (draft → registered)",
                "parameters": [{ "$ref": "#/components/parameters/LetterID" }],
                "requestBody": { "required": false, "content": { "application/json": { "schema": { "type": "object", "additionalProperties": false } } } },
                "responses": {
                  "200": { "description": "Registered", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Registered" } } } },
                  "400": { "$ref": "#/components/responses/Problem" },
                  "401": { "$ref": "#/components/responses/Unauthenticated" },
                  "403": { "$ref": "#/components/responses/Problem" },
                  "404": { "$ref": "#/components/responses/Problem" },
                  "409": { "$ref": "#/components/responses/Problem" }
                }
              }
            },
            "/api/v1/letters/{id}/sign": {
              "post": {
                "operationId": "signLetter",
                "summary": "Sign as an officer, the officer's key unlocked by its passphrase (officer or head; never logged)",
                "description": "A wrong passphrase is a 403 (`wrong-passphrase`), signs nothing, and counts against the caller's login lock-out (429 after 20).",
                "parameters": [{ "$ref": "#/components/parameters/LetterID" }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/SignRequest" } } } },
                "responses": {
                  "200": { "description": "Signed", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Signed" } } } },
                  "400": { "$ref": "#/components/responses/Problem" },
                  "401": { "$ref": "#/components/responses/Unauthenticated" },
                  "403": { "$ref": "#/components/responses/Problem" },
                  "404": { "$ref": "#/components/responses/Problem" },
                  "409": { "$ref": "#/components/responses/Problem" },
                  "429": { "$ref": "#/components/responses/Problem" }
                }
              }
            },
            "/api/v1/letters/{id}/send": {
              "post": {
                "operationId": "sendLetter",
                "summary": "Register if needed and dispatch to offices of the directory (GET /api/v1/offices)",
                "parameters": [{ "$ref": "#/components/parameters/LetterID" }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/SendRequest" } } } },
                "responses": {
                  "200": { "description": "Sent", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Sent" } } } },
                  "400": { "$ref": "#/components/responses/Problem" },
                  "401": { "$ref": "#/components/responses/Unauthenticated" },
                  "403": { "$ref": "#/components/responses/Problem" },
                  "404": { "$ref": "#/components/responses/Problem" },
                  "409": { "$ref": "#/components/responses/Problem" }
                }
              }
            },
            "/api/v1/letters/{id}/route": {
              "post": {
                "operationId": "routeLetter",
                "summary": "Route the letter (เกษียน) to a person with an instruction and a due date (head)",
                "parameters": [{ "$ref": "#/components/parameters/LetterID" }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/RouteRequest" } } } },
                "responses": {
                  "204": { "description": "Routed" },
                  "400": { "$ref": "#/components/responses/Problem" },
                  "401": { "$ref": "#/components/responses/Unauthenticated" },
                  "403": { "$ref": "#/components/responses/Problem" },
                  "404": { "$ref": "#/components/responses/Problem" }
                }
              }
            },
            "/api/v1/offices": {
              "get": {
                "operationId": "listOffices",
                "summary": "The office directory (`saraban office list`): the offices letters can be sent to",
                "responses": {
                  "200": {
                    "description": "The offices",
                    "content": { "application/json": { "schema": { "type": "array", "items": { "$ref": "#/components/schemas/Office" } } } }
                  },
                  "401": { "$ref": "#/components/responses/Unauthenticated" }
                }
              }
            },
            "/api/v1/conflicts": {
              "get": {
                "operationId": "listConflicts",
                "summary": "Every kept conflict on a register or set field: each value, who wrote it, and the `keep` to resolve with",
                "responses": {
                  "200": {
                    "description": "The conflicts",
                    "content": { "application/json": { "schema": { "type": "array", "items": { "$ref": "#/components/schemas/Conflict" } } } }
                  },
                  "401": { "$ref": "#/components/responses/Unauthenticated" }
                }
              }
            },
            "/api/v1/conflicts/{id}/resolve": {
              "post": {
                "operationId": "resolveConflict",
                "summary": "Resolve one field's conflict of document {id}: keep the value of a change, or keep/drop a set element",
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" }, "description": "The document id" }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Resolve" } } } },
                "responses": {
                  "204": { "description": "Resolved" },
                  "400": { "$ref": "#/components/responses/Problem" },
                  "401": { "$ref": "#/components/responses/Unauthenticated" },
                  "403": { "$ref": "#/components/responses/Problem" },
                  "404": { "$ref": "#/components/responses/Problem" },
                  "409": { "$ref": "#/components/responses/Problem" }
                }
              }
            },
            "/api/v1/search": {
              "get": {
                "operationId": "search",
                "summary": "Letters (made here or received) by any substring of subject, number, sender or text, and a date range",
                "parameters": [
                  { "name": "q", "in": "query", "schema": { "type": "string", "maxLength": 200 }, "description": "Any substring (Thai needs no spaces)" },
                  { "name": "from", "in": "query", "schema": { "type": "string" }, "description": "A date as clerks write it (6/12/2569, 6 ธันวาคม 2569, 2026-12-06)" },
                  { "name": "to", "in": "query", "schema": { "type": "string" } },
                  { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } }
                ],
                "responses": {
                  "200": {
                    "description": "The letters found, newest first",
                    "content": { "application/json": { "schema": { "type": "array", "items": { "$ref": "#/components/schemas/Hit" } } } }
                  },
                  "400": { "$ref": "#/components/responses/Problem" },
                  "401": { "$ref": "#/components/responses/Unauthenticated" }
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
              "post": {
                "operationId": "createLetter",
                "summary": "A new draft letter of one of the six kinds (write scope; clerk, officer, head or admin)",
                "description": "Fields by English or Thai name (subject or เรื่อง); a value SarabanOffice refuses (a date that does not exist, an unknown urgency) is a 400 and nothing is stored; required fields left empty are listed in `issues` and block registration, not drafting. `number` and `status` come from the register.",
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/NewLetter" } } } },
                "responses": {
                  "201": { "description": "The draft", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Draft" } } } },
                  "400": { "$ref": "#/components/responses/Problem" },
                  "401": { "$ref": "#/components/responses/Unauthenticated" },
                  "403": { "$ref": "#/components/responses/Problem" },
                  "413": { "$ref": "#/components/responses/Problem" }
                }
              },
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
              "patch": {
                "operationId": "editLetter",
                "summary": "Edit a draft: fields, and the body as text edits from the copy it was loaded from",
                "description": "`body` with `body_base` (from GET /api/v1/letters/{id}/body): only what differs between that copy and `body` is changed, so words others saved meanwhile stay. Without `body_base` the body as it is now is replaced by the smallest edit.",
                "parameters": [{ "$ref": "#/components/parameters/LetterID" }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/LetterEdit" } } } },
                "responses": {
                  "200": { "description": "The letter now", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Draft" } } } },
                  "400": { "$ref": "#/components/responses/Problem" },
                  "401": { "$ref": "#/components/responses/Unauthenticated" },
                  "403": { "$ref": "#/components/responses/Problem" },
                  "404": { "$ref": "#/components/responses/Problem" },
                  "409": { "$ref": "#/components/responses/Problem" },
                  "413": { "$ref": "#/components/responses/Problem" }
                }
              },
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
              "Year": { "name": "year", "in": "query", "schema": { "type": "integer", "minimum": 2400, "maximum": 2800 }, "description": "Buddhist-Era register year (default: the current one)" },
              "LetterID": { "name": "id", "in": "path", "required": true, "schema": { "type": "string" }, "description": "The letter's document id (COUNTER-REPLICA)" }
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
                  "code": { "type": "string", "description": "Stable code: unauthenticated, session-expired, csrf, forbidden, read-only-token, invalid-token, not-found, invalid, invalid-utf8, too-large, locked-out, busy, conflict, stale-form, wrong-passphrase, not-cleared, no-conflict, refused…" },
                  "detail": { "type": "string", "description": "English" },
                  "detail_th": { "type": "string", "description": "Thai" }
                }
              },
              "NewLetter": {
                "type": "object",
                "additionalProperties": false,
                "required": ["kind"],
                "properties": {
                  "kind": { "type": "string", "description": "external, internal, stamped, directive, public-relations, record (or ภายนอก, ภายใน, ประทับตรา, สั่งการ, ประชาสัมพันธ์, หลักฐาน)" },
                  "fields": { "$ref": "#/components/schemas/LetterFields" }
                }
              },
              "LetterFields": {
                "type": "object",
                "description": "By English or Thai name: urgency, secrecy, subtype, agency, date, subject, salutation, to, from, reference, enclosures, body, closing, signer, position",
                "additionalProperties": { "type": "string" }
              },
              "LetterEdit": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                  "fields": { "$ref": "#/components/schemas/LetterFields" },
                  "body": { "type": "string" },
                  "body_base": { "type": "string" }
                }
              },
              "Draft": {
                "type": "object",
                "required": ["id", "kind", "status", "fields", "issues"],
                "properties": {
                  "id": { "type": "string" },
                  "kind": { "type": "string" },
                  "status": { "type": "string" },
                  "fields": { "type": "object", "additionalProperties": { "type": "string" } },
                  "issues": { "type": "object", "additionalProperties": { "type": "string" }, "description": "What SarabanOffice says of each field (English)" }
                }
              },
              "Body": {
                "type": "object",
                "required": ["id", "body", "body_base"],
                "properties": { "id": { "type": "string" }, "body": { "type": "string" }, "body_base": { "type": "string" } }
              },
              "Registered": {
                "type": "object",
                "required": ["id", "number", "book", "register_number", "year", "status"],
                "properties": {
                  "id": { "type": "string" },
                  "number": { "type": "string" },
                  "book": { "type": "string" },
                  "register_number": { "type": "integer" },
                  "year": { "type": "integer" },
                  "status": { "type": "string" }
                }
              },
              "SignRequest": {
                "type": "object",
                "additionalProperties": false,
                "required": ["officer", "passphrase"],
                "properties": { "officer": { "type": "string" }, "passphrase": { "type": "string", "format": "password" } }
              },
              "Signed": {
                "type": "object",
                "required": ["id", "officer", "position", "time"],
                "properties": {
                  "id": { "type": "string" },
                  "officer": { "type": "string" },
                  "position": { "type": "string" },
                  "time": { "type": "string", "format": "date-time" }
                }
              },
              "SendRequest": {
                "type": "object",
                "additionalProperties": false,
                "required": ["to"],
                "properties": { "to": { "type": "array", "items": { "type": "string" }, "description": "Office names, letter codes or node ids" } }
              },
              "Sent": {
                "type": "object",
                "required": ["id", "number", "status", "dispatches"],
                "properties": {
                  "id": { "type": "string" },
                  "number": { "type": "string" },
                  "status": { "type": "string" },
                  "dispatches": {
                    "type": "array",
                    "items": {
                      "type": "object",
                      "required": ["id", "offices", "existing"],
                      "properties": { "id": { "type": "string" }, "offices": { "type": "array", "items": { "type": "string" } }, "existing": { "type": "boolean" } }
                    }
                  }
                }
              },
              "RouteRequest": {
                "type": "object",
                "additionalProperties": false,
                "required": ["to"],
                "properties": { "to": { "type": "string" }, "note": { "type": "string" }, "due": { "type": "string", "description": "กำหนดเสร็จ, a date as clerks write it" } }
              },
              "Office": {
                "type": "object",
                "required": ["office", "code", "nodes"],
                "properties": { "office": { "type": "string" }, "code": { "type": "string" }, "nodes": { "type": "array", "items": { "type": "string" } } }
              },
              "Conflict": {
                "type": "object",
                "required": ["document", "title", "field", "values"],
                "properties": {
                  "document": { "type": "string" },
                  "title": { "type": "string" },
                  "field": { "type": "string" },
                  "values": {
                    "type": "array",
                    "items": {
                      "type": "object",
                      "required": ["value", "shown", "who", "keep"],
                      "properties": { "value": { "type": "string" }, "shown": { "type": "boolean" }, "who": { "type": "string" }, "keep": { "type": "string" } }
                    }
                  }
                }
              },
              "Resolve": {
                "type": "object",
                "additionalProperties": false,
                "required": ["field", "keep"],
                "properties": { "field": { "type": "string" }, "keep": { "type": "string", "description": "A change id (AUTHOR/SEQ) whose value stays, or keep:ELEMENT / drop:ELEMENT" } }
              },
              "Hit": {
                "type": "object",
                "required": ["id", "kind", "subject", "number", "sender"],
                "properties": {
                  "id": { "type": "string" },
                  "kind": { "type": "string", "enum": ["draft", "sent", "received"] },
                  "subject": { "type": "string" },
                  "number": { "type": "string" },
                  "sender": { "type": "string" },
                  "date": { "type": "string", "description": "yyyymmdd, Buddhist Era" }
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

import Foundation
import SarabanNode
@testable import SarabanWeb
import Testing

/// The OpenAPI document is kept in the repository (Docs/openapi.json), served as is, and names
/// exactly the routes under /api/v1: a route added without its description (or the reverse) fails here.
@Suite(.timeLimit(.minutes(3))) struct OpenAPITests {
    @Test func theRepositoryCopyIsTheServedDocument() throws {
        let file = try String(contentsOf: repositoryRoot.appendingPathComponent("Docs/openapi.json"), encoding: .utf8)
        #expect(file == OpenAPI.document, "regenerate it: swift run saraban dev openapi > Docs/openapi.json")
    }

    /// Every `$ref` names a component the document has. A second `parameters` object under
    /// `components` once replaced the first (JSON keeps one of two equal keys), and schemathesis
    /// refused six operations: "Unresolvable reference #/components/parameters/DocumentID".
    @Test func everyReferenceResolvesAndNoObjectRepeatsAKey() throws {
        let text = OpenAPI.document
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        var refs = Set<String>()
        var scanner = text[...]
        while let r = scanner.range(of: #""$ref": ""#) {
            let rest = scanner[r.upperBound...]
            guard let end = rest.firstIndex(of: "\"") else { break }
            refs.insert(String(rest[..<end]))
            scanner = rest[end...]
        }
        #expect(refs.count >= 5)
        for ref in refs {
            #expect(ref.hasPrefix("#/"), "\(ref)")
            var node: Any? = doc
            for part in ref.dropFirst(2).split(separator: "/") { node = (node as? [String: Any])?[String(part)] }
            #expect(node != nil, "unresolvable: \(ref)")
        }
        // No key twice among the components' members (the keys at that indentation).
        let lines = text.split(separator: "\n")
        guard let start = lines.firstIndex(where: { $0.contains(#""components": {"#) }) else { Issue.record("no components"); return }
        let indent = lines[start].prefix { $0 == " " }.count + 2
        var seen = Set<String>()
        for line in lines[(start + 1)...] {
            let lead = line.prefix { $0 == " " }.count
            if lead < indent { break }
            guard lead == indent, line.dropFirst(lead).first == "\"" else { continue }
            let key = String(line.dropFirst(lead + 1).prefix { $0 != "\"" })
            #expect(seen.insert(key).inserted, "components has \(key) twice")
        }
        #expect(seen.contains("parameters") && seen.contains("schemas"))
    }

    @Test func theDocumentNamesExactlyTheAPIRoutes() throws {
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(OpenAPI.document.utf8)) as? [String: Any])
        #expect(doc["openapi"] as? String == "3.1.0")
        let paths = try #require(doc["paths"] as? [String: [String: Any]])
        var documented = Set<String>()
        var operationIDs: [String] = []
        for (path, ops) in paths {
            for (method, op) in ops {
                documented.insert("\(method.uppercased()) \(path)")
                let op = try #require(op as? [String: Any])
                operationIDs.append(op["operationId"] as? String ?? "")
                let responses = try #require(op["responses"] as? [String: Any])
                #expect(responses["401"] != nil, "\(method) \(path) documents its 401")
            }
        }
        #expect(Set(operationIDs).count == operationIDs.count && !operationIDs.contains(""))
        let w = try WebNode()
        defer { Task { await w.stop() } }
        let routed = Set(
            w.app.router().routes.filter { "\($0.path)".hasPrefix("/api/v1/") }.map { "\($0.method.rawValue) \($0.path)" })
        #expect(routed.count >= 5)
        #expect(documented == routed, "documented only: \(documented.subtracting(routed)); routed only: \(routed.subtracting(documented))")
    }

    @Test func theServedDocumentNeedsATokenAndIsTheSame() async throws {
        let w = try WebNode()
        try await w.start()
        defer { Task { await w.stop() } }
        #expect(try await w.get("/api/v1/openapi.json").status == 401)
        let (_, token) = try w.app.accounts.createToken(name: "vendor-x", scope: .read)
        let r = try await w.get("/api/v1/openapi.json", headers: [("Authorization", "Bearer \(token)")])
        #expect(r.status == 200 && r.text == OpenAPI.document)
    }
}

import Testing
@testable import SarabanCore

/// `Change.touches(_:)` answers what `Change.documents.contains(_:)` does, without the list.
@Suite struct ChangeTouchesTests {
    private let author = ReplicaID(hi: 0xA11CE, lo: 1)
    private let other = ReplicaID(hi: 0xB0B, lo: 2)

    @Test func touchesAgreesWithTheDocumentList() {
        let existing = DocID(OpID(counter: 3, replica: other))
        let listed = DocID(OpID(counter: 4, replica: other))
        // Op ids 10, 11, 12: a creation (document 10), a set on another node's document, a second creation (12).
        let c = Change(
            author: author, seq: 5, startOp: 10, time: 0, deps: VersionVector(),
            ops: [
                .createDocument(kind: "letter"),
                .set(doc: existing, field: "เรื่อง", value: .string("ขอเชิญประชุม"), pred: []),
                .createDocument(kind: "receipt"),
                .listAppend(doc: listed, field: "log", value: "x"),
            ])
        let candidates = [
            DocID(OpID(counter: 10, replica: author)), DocID(OpID(counter: 12, replica: author)), existing, listed,
            DocID(OpID(counter: 11, replica: author)),  // the set's op id: no document
            DocID(OpID(counter: 10, replica: other)),  // the right counter of another replica
            DocID(OpID(counter: 13, replica: author)), DocID(OpID(counter: 3, replica: author)),
        ]
        for d in candidates {
            #expect(c.touches(d) == c.documents.contains(d), "document \(d)")
        }
        #expect(candidates.filter(c.touches).count == 4)
    }
}

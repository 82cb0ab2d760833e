extension Change {
    /// The operations that create or act on document `document`, with the ids they receive, in
    /// order (an operation's document is the one it names, or for a creation its own op id, as in
    /// ``documents``).
    public func operations(on document: DocID) -> [(id: OpID, op: Operation)] {
        identifiedOps.filter { ($0.op.document ?? DocID($0.id)) == document }
    }
}

// Placeholder until the crdt suite lands; owned by whoever implements it.
func crdtBench(_ args: [String]) throws -> Int32 {
    throw BenchError("the crdt suite is not implemented yet")
}

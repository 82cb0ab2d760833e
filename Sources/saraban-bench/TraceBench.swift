// Placeholder until the trace suite lands; owned by whoever implements it.
func traceBench(_ args: [String]) throws -> Int32 {
    throw BenchError("the trace suite is not implemented yet")
}

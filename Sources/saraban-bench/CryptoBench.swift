// Placeholder until the crypto suite lands; owned by whoever implements it.
func cryptoBench(_ args: [String]) throws -> Int32 {
    throw BenchError("the crypto suite is not implemented yet")
}

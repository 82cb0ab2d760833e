import Foundation

/// `run` on a thread of its own: a test that waits for a slow child (Argon2id at its real cost
/// takes seconds under load) then holds none of the few cooperative threads the other suites need.
func runOffThread(_ args: [String], shell: String? = nil, env: [String: String] = [:]) async throws -> Result {
    try await offThread { try run(args, shell: shell, env: env) }
}

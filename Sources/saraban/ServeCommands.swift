import ArgumentParser
import Foundation
import Logging
import SarabanCrypto
import SarabanNode
import SarabanRelayMetrics
#if canImport(Glibc)
import Glibc
#endif

// `saraban serve`, `saraban sync` and `saraban peer add|list`: the node on the network.

extension Saraban {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the node: listen for peers, gossip with configured peers, push local writes at once.",
            discussion: """
                Prints one line when ready: `serving NODE_ID on HOST:PORT (member|relay)` (port 0 picks a free
                port; the line names the real one). Logs go to stderr (level: $SARABAN_LOG_LEVEL, default info).
                SIGTERM or SIGINT stops it gracefully (exit 0). A write made with the CLI on the same data
                directory while it runs reaches connected peers within about a second.
                """)

        @OptionGroup var options: DataOptions
        @Option(help: ArgumentHelp("Listen on HOST:PORT instead of config.json's `listen`.", valueName: "HOST:PORT"))
        var listen: String?
        @Flag(help: "Run as a cloud relay: store and forward the carried spaces' envelopes without their keys.")
        var relay = false
        @Option(help: ArgumentHelp("Longest wait between redials of an unreachable peer.", valueName: "SECONDS"))
        var maxBackoff: Double = 30
        @Flag(
            name: .customLong("no-dial"),
            help: "Only listen: never dial the configured peers (a relay whose offices dial it).")
        var noDial = false
        @Option(
            help: ArgumentHelp(
                "With --relay: keep envelopes in PostgreSQL, shared by every relay process of the deployment "
                    + "(default: config.json `store`, else this node's own database).",
                valueName: "postgresql://USER@HOST/DB"))
        var store: String?
        @Option(
            help: ArgumentHelp(
                "With --relay: serve Prometheus /metrics and /ready on HOST:PORT (default: config.json `metrics`).",
                valueName: "HOST:PORT"))
        var metrics: String?

        func run() async throws {
            var serve = ServeOptions()
            if let listen {
                guard let address = PeerAddress(parsing: listen) else {
                    throw NodeError(.invalidArgument, "--listen \(listen.debugDescription) is not HOST:PORT (for example 0.0.0.0:7420)")
                }
                serve.listen = address
            }
            guard maxBackoff > 0 else { throw NodeError(.invalidArgument, "--max-backoff must be a positive number of seconds") }
            serve.maximumBackoff = .milliseconds(Int(maxBackoff * 1000))
            serve.minimumBackoff = min(serve.minimumBackoff, serve.maximumBackoff)
            serve.dial = !noDial
            guard relay || (store == nil && metrics == nil) else {
                throw NodeError(.invalidArgument, "--store and --metrics are for relays: add --relay (ใช้ได้กับรีเลย์เท่านั้น)")
            }
            let node = try options.openNode()
            defer { node.close() }
            let storage = try node.envelopeStorage(relay: relay)
            guard relay else {
                let daemon = try NodeDaemon(node: node, storage: storage, options: serve)
                try await daemon.run { ready in
                    Output.line("serving \(ready.nodeID.text) on \(ready.address) (\(ready.role))")
                }
                return
            }
            let metricsAddress = try (metrics ?? node.currentConfig().metrics).map { text throws(NodeError) in
                guard let a = PeerAddress(parsing: text) else {
                    throw NodeError(.invalidArgument, "--metrics \(text.debugDescription) is not HOST:PORT (for example 127.0.0.1:9420)")
                }
                return a
            }
            // The metrics backend must be in place before the relay creates its metrics.
            if metricsAddress != nil { _ = RelayMetricsEndpoint.registry }
            let relayStore = try await RelayStores.open(node, flag: store)
            let daemon: NodeDaemon
            do { daemon = try NodeDaemon(node: node, relay: relayStore, options: serve) } catch {
                await relayStore.close()
                throw error
            }
            var endpoint: Task<Void, any Error>?
            if let metricsAddress {
                let (bound, reported) = AsyncStream.makeStream(of: Int.self)
                endpoint = Task {
                    try await RelayMetricsEndpoint.run(
                        host: metricsAddress.host, port: metricsAddress.port, health: { daemon.health },
                        logger: Logger(label: "saraban.metrics")
                    ) { port in
                        reported.yield(port)
                        reported.finish()
                    }
                }
                var port: Int?
                for await p in bound { port = p }
                guard let port else {
                    await relayStore.close()
                    throw NodeError(.io, "cannot serve metrics on \(metricsAddress): the address may be in use")
                }
                Output.line("metrics on \(PeerAddress(host: metricsAddress.host, port: port))")
            }
            do {
                try await daemon.run { ready in
                    let kind = relayStore.kind == "sqlite" ? "" : ", \(relayStore.kind) store"
                    Output.line("serving \(ready.nodeID.text) on \(ready.address) (\(ready.role)\(kind))")
                }
            } catch {
                endpoint?.cancel()
                await relayStore.close()
                throw error
            }
            endpoint?.cancel()
            _ = try? await endpoint?.value
            await relayStore.close()
        }
    }

    struct Sync: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sync once with every configured peer (or one), then print a summary.",
            discussion: """
                PEER is a configured peer's name, node id (or a unique prefix) or HOST:PORT. Exits non-zero,
                naming the peer, when a peer was unreachable or the sync did not finish.
                """)

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Flag(help: "Sync as a relay (no keys).") var relay = false
        @Argument(help: "The peer to sync with (default: every configured peer).") var peer: String?

        func run() async throws {
            let node = try options.openNode()
            defer { node.close() }
            let settings = try node.syncSettings()
            let peers = try peer.map { q throws(NodeError) in [try settings.peer(matching: q)] } ?? settings.peers
            guard !peers.isEmpty else {
                throw NodeError(.invalidArgument, "no peers configured; add one with `saraban peer add NODE_ID HOST:PORT`")
            }
            let storage = try node.envelopeStorage(relay: relay)
            let tty = isatty(STDERR_FILENO) == 1 && !output.json
            let started = Date()
            let results = try await node.syncOnce(storage: storage, peers: peers) { p in
                guard tty else { return }
                let line = "\r\u{1B}[Ksyncing with \(p.peer): \(p.changesPeerLacks) changes to send, \(p.changesWeLack) to receive"
                FileHandle.standardError.write(Data(line.utf8))
            }
            if tty { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            let failed = results.filter { !$0.synced }
            if output.json {
                try Output.json(results)
            } else {
                for r in results {
                    var line = "\(r.peer) (\(r.address)): "
                    if r.synced {
                        line += "synced \(r.sharedSpaces) space\(r.sharedSpaces == 1 ? "" : "s"); "
                    } else {
                        line += "FAILED: \(r.error ?? "did not finish"); "
                    }
                    line += "sent \(r.envelopesSent) envelopes (\(r.changesSent) changes, \(Output.bytes(Int64(r.bytesSent)))), "
                    line += "received \(r.envelopesReceived) envelopes (\(r.changesReceived) changes, "
                    line += "\(Output.bytes(Int64(r.bytesReceived))))"
                    if r.attachmentsOffered > 0 {
                        line += ", relay confirmed holding \(r.attachmentsConfirmed) of \(r.attachmentsOffered) attachments offered "
                        line += "(\(r.attachmentChunksSent) chunks sent)"
                    }
                    line += " in \(String(format: "%.2f", r.seconds)) s"
                    Output.line(line)
                }
                let total = Date().timeIntervalSince(started)
                Output.line(
                    "\(results.count - failed.count) of \(results.count) peer\(results.count == 1 ? "" : "s") synced in "
                        + String(format: "%.2f", total) + " s")
            }
            if !failed.isEmpty {
                throw NodeError(
                    .unreachable,
                    "could not sync with " + failed.map { "\($0.peer) (\($0.address)): \($0.error ?? "did not finish")" }
                        .joined(separator: "; "))
            }
        }
    }

    struct Peer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add and list the peers this node dials and trusts.", subcommands: [Add.self, List.self])
    }
}

extension Saraban.Peer {
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a peer (or update the one with this node id) in config.json.",
            discussion: "Example: saraban peer add sb… 10.0.0.2:7420 --name อบต.หนองบัว")

        @OptionGroup var options: DataOptions
        @Argument(help: "The peer's node id (`saraban id` on the peer).") var nodeID: String
        @Argument(help: "Where the peer listens, HOST:PORT.") var address: String
        @Option(help: "A name to show and to use with `saraban sync NAME`.") var name: String?

        func run() async throws {
            let node = try options.openNode()
            defer { node.close() }
            let isNew = try node.addPeer(nodeID: nodeID, address: address, name: name)
            Output.note("\(isNew ? "added" : "updated") peer \(name ?? nodeID) at \(address)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the configured peers: address, last contact and lag in changes each way.")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption

        func run() async throws {
            let node = try options.openNode()
            defer { node.close() }
            let settings = try node.syncSettings()
            let status = try await RelayStores.peerStatuses(node)
            struct Row: Encodable {
                var name: String?
                var node_id: String
                var address: String
                var last_contact: String?
                var last_synced: String?
                var last_error: String?
                var changes_peer_lacks: UInt64?
                var changes_we_lack: UInt64?
                var envelopes_sent: Int
                var envelopes_received: Int
            }
            let rows = settings.peers.map { p in
                let s = status[p.nodeID.text]
                return Row(
                    name: p.name, node_id: p.nodeID.text, address: p.address.description,
                    last_contact: s?.lastContact.map(Output.time), last_synced: s?.lastSynced.map(Output.time),
                    last_error: s?.lastError, changes_peer_lacks: s?.lastContact == nil ? nil : s?.changesPeerLacks,
                    changes_we_lack: s?.lastContact == nil ? nil : s?.changesWeLack,
                    envelopes_sent: s?.envelopesSent ?? 0, envelopes_received: s?.envelopesReceived ?? 0)
            }
            if output.json {
                try Output.json(rows)
                return
            }
            if rows.isEmpty {
                Output.line("no peers; add one with `saraban peer add NODE_ID HOST:PORT [--name NAME]`")
                return
            }
            for r in rows {
                var line = "\(r.name ?? "-")  \(r.node_id)  \(r.address)  "
                if let c = r.last_contact {
                    line += "last contact \(c), they lack \(r.changes_peer_lacks ?? 0), we lack \(r.changes_we_lack ?? 0)"
                } else {
                    line += "never contacted"
                }
                if let e = r.last_error { line += "  (last error: \(e))" }
                Output.line(line)
            }
        }
    }
}

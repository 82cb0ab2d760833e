import ArgumentParser
import Foundation
import Logging
import SarabanCrypto
import SarabanNode
import SarabanRelayMetrics
import SarabanWeb
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
                SIGTERM or SIGINT stops it gracefully (exit 0), saying where each peer stood. A write made with the
                CLI on the same data directory while it runs reaches connected peers within about a second; a space
                joined or created meanwhile is synced too. One daemon per data directory: a second one exits 75.
                A port in use exits 69.
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
        @OptionGroup var web: WebServeOptions

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
            try await options.withNode { node in
                let storage = try node.envelopeStorage(relay: relay)
                let webMetrics = WebMetrics()
                guard relay else {
                    let daemon = try NodeDaemon(node: node, storage: storage, options: serve, onEvent: { webMetrics.record($0) })
                    let web = try web.services(node: node, daemon: daemon, relay: false, metrics: webMetrics)
                    try await daemon.run(services: web) { ready in
                        Output.line("serving \(ready.nodeID.text) on \(ready.address) (\(ready.role))")
                    }
                    Self.sayWhereItStopped(node)
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
                do {
                    daemon = try NodeDaemon(node: node, relay: relayStore, options: serve, onEvent: { webMetrics.record($0) })
                } catch {
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
                    let web = try web.services(node: node, daemon: daemon, relay: true, metrics: webMetrics)
                    try await daemon.run(services: web) { ready in
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
                Self.sayWhereItStopped(node)
            }
        }

        /// After a SIGTERM or SIGINT: the sessions said bye; per configured peer, how far apart the
        /// two nodes were at the last contact; and that nothing is lost.
        static func sayWhereItStopped(_ node: Node) {
            Output.note("serve stopped: open sessions said bye and closed.")
            let status = (try? node.peerStatuses()) ?? [:]
            for p in (try? node.syncSettings().peers) ?? [] {
                let s = status[p.nodeID.text]
                var line = "  \(p.label) (\(p.address)): "
                if let at = s?.lastContact {
                    let lacks = s?.changesPeerLacks ?? 0
                    let weLack = s?.changesWeLack ?? 0
                    line += lacks == 0 && weLack == 0
                        ? "in sync at the last contact (\(Output.time(at)))"
                        : "at the last contact (\(Output.time(at))) it lacked \(lacks) of our changes and we \(weLack) of its"
                } else {
                    line += "never contacted"
                    if let e = s?.lastError { line += " (\(e))" }
                }
                Output.note(line)
            }
            Output.note(
                "nothing is lost: every change written or received is stored in \(node.dataDirectory.path); what a peer "
                    + "lacks goes at the next contact (`saraban serve` again, or `saraban sync`).")
        }
    }

    struct Sync: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sync once with every configured peer (or one), then print a summary.",
            discussion: """
                PEER is a configured peer's name, node id (or a unique prefix) or HOST:PORT. Exits 69, naming the
                peer, what failed and what to try, when a peer was unreachable or the sync did not finish. Ctrl-C
                stops it, saying where it stopped (nothing is lost): exit 130 (143 for SIGTERM).
                """)

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Flag(help: "Sync as a relay (no keys).") var relay = false
        @Argument(help: "The peer to sync with (default: every configured peer).") var peer: String?

        func run() async throws {
            try await options.withNode { node in
                let settings = try node.syncSettings()
                let peers = try peer.map { q throws(NodeError) in [try settings.peer(matching: q)] } ?? settings.peers
                guard !peers.isEmpty else {
                    throw NodeError(.invalidArgument, "no peers configured; add one with `saraban peer add NODE_ID HOST:PORT`")
                }
                let storage = try node.envelopeStorage(relay: relay)
                let tty = isatty(STDERR_FILENO) == 1 && !output.json
                let started = Date()
                let lags = LatestProgress()
                let interruption = Interruption()
                let results = try await interruption.run {
                    try await node.syncOnce(storage: storage, peers: peers) { p in
                        lags.record(p)
                        guard tty else { return }
                        let line = "\r\u{1B}[Ksyncing with \(p.peer): \(p.changesPeerLacks) changes to send, \(p.changesWeLack) to receive"
                        FileHandle.standardError.write(Data(line.utf8))
                    }
                }
                if tty { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
                if let signal = interruption.signal {
                    // Where it stopped, per peer, and that nothing is lost.
                    Output.note("sync interrupted by \(Interruption.name(signal)); open sessions said bye.")
                    for r in results where !r.synced {
                        var line = "  \(r.peer) (\(r.address)): stopped after receiving \(r.changesReceived) changes "
                            + "(\(r.envelopesReceived) envelopes, stored) and sending \(r.changesSent)"
                        if let lag = lags[r.peer] {
                            line += "; \(lag.changesWeLack) changes still to receive and \(lag.changesPeerLacks) to send"
                        }
                        Output.note(line)
                    }
                    for r in results where r.synced { Output.note("  \(r.peer) (\(r.address)): synced before the interruption") }
                    Output.note(
                        "nothing is lost: what was received is stored (each batch in one transaction, nothing half-applied) "
                            + "and local data was not touched; run `saraban sync` again to go on from here.")
                    throw ExitCode(Interruption.exitStatus(signal))
                }
                let failed = results.filter { !$0.synced }
                if output.json {
                    try Output.json(results)
                } else {
                    for r in results {
                        var line = "\(r.peer) (\(r.address)): "
                        if r.synced {
                            line += "synced \(r.sharedSpaces) space\(r.sharedSpaces == 1 ? "" : "s"); "
                        } else {
                            line += "FAILED; "
                        }
                        line += "sent \(r.envelopesSent) envelopes (\(r.changesSent) changes, \(Output.bytes(Int64(r.bytesSent)))), "
                        line += "received \(r.envelopesReceived) envelopes (\(r.changesReceived) changes, "
                        line += "\(Output.bytes(Int64(r.bytesReceived))))"
                        if r.attachmentsOffered > 0 {
                            line += ", relay confirmed holding \(r.attachmentsConfirmed) of \(r.attachmentsOffered) attachments offered "
                            line += "(\(r.attachmentChunksSent) chunks sent)"
                        }
                        line += " in \(String(format: "%.2f", r.seconds)) s"
                        if !r.synced { line += "\n  \(r.error ?? "the session did not finish")" }
                        for g in r.gaps {
                            line += "\n  no longer held by this relay (retention), and missing here: changes \(g.from)…\(g.to) of author "
                                + "\(g.author.prefix(16))… in space \(g.space); sync with a member of the space, or merge the relay "
                                + "operator's archive with `saraban doc merge FILE` (รีเลย์ไม่เก็บช่วงนี้แล้ว)"
                        }
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
                        "could not sync with \(failed.count) of \(results.count) peer\(results.count == 1 ? "" : "s"): "
                            + failed.map { $0.error ?? "\($0.peer) (\($0.address)): the session did not finish" }
                            .joined(separator: "\n"))
                }
            }
        }
    }

    /// The latest progress line of each peer of a one-shot sync (what it still lacked each way).
    final class LatestProgress: @unchecked Sendable {
        private let lock = NSLock()
        private var latest: [String: OneShotProgress] = [:]

        func record(_ p: OneShotProgress) { lock.withLock { latest[p.peer] = p } }
        subscript(peer: String) -> OneShotProgress? { lock.withLock { latest[peer] } }
    }

    struct Peer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add, remove and list the peers this node dials and trusts.",
            subcommands: [Add.self, Remove.self, List.self])
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
            try options.withNode { node in
                let isNew = try node.addPeer(nodeID: nodeID, address: address, name: name)
                Output.note("\(isNew ? "added" : "updated") peer \(name ?? nodeID) at \(address)")
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a peer from config.json: this node stops dialling and trusting it.",
            discussion: """
                PEER is the peer's node id (or a unique prefix), its name or its HOST:PORT. A node that is still a
                member of a space this node carries may still connect (remove it from the space with
                `saraban space remove`). A running `saraban serve` picks the change up within seconds.
                """)

        @OptionGroup var options: DataOptions
        @Argument(help: "The peer to remove: node id (or a unique prefix), name or HOST:PORT.") var peer: String

        func run() async throws {
            try options.withNode { node in
                let removed = try node.removePeer(matching: peer)
                var note = "removed peer \(removed.name.map { "\($0) (\(removed.nodeID.text))" } ?? removed.nodeID.text) "
                note += "at \(removed.address)"
                if try node.envelopeStorage(relay: node.role == .relay).memberNodeIDs().contains(removed.nodeID) {
                    note += "; it is still a member of a space carried here, so it may still connect: "
                    note += "`saraban space remove SPACE \(removed.nodeID.text)` to stop that"
                }
                Output.note(note)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the configured peers: address, last contact and lag in changes each way.")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption

        func run() async throws {
            try await options.withNode { node in
                // A relay on PostgreSQL keeps its peers' status there.
                let rows = try node.peerList(statuses: try await RelayStores.peerStatuses(node))
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
}

// swift-tools-version:6.1
//
// Saraban: an offline-first e-Office node. Targets are split by what they may touch:
//   SarabanCore       pure CRDTs and changes, standard library only (no `import` at all)
//   SarabanOffice     the e-Saraban domain over the core: letters, registers, Thai dates (pure)
//   CSodium           system library: libsodium through pkg-config
//   SarabanCrypto     the only importer of CSodium
//   CSQLiteTuning     C: the process-wide sqlite3_config call Swift cannot make (variadic)
//   SarabanFeed       what a space's feed is, written once: SpaceID, FeedVector, limits, the envelope
//                     payload codec, receive refusals (pure: Core + Crypto)
//   SarabanStorage    GRDB on SQLite: change log, materialised documents, spaces, envelopes, migrations
//   SarabanSync       sans-IO sync state machine and wire codec (no sockets, no clocks)
//   SarabanTransport  SwiftNIO TCP framing under the Noise session
//   SarabanNode       the node: config, identity, services, high-level operations
//   SarabanRelayPostgres  the relay store on PostgreSQL (postgres-nio), kept apart so the rest stays free of it
//   SarabanRelayMetrics   Prometheus `/metrics` and `/ready` of a relay over Hummingbird
//   SarabanFleet      simulated offices (real keys, sealed envelopes, Noise sessions) and relay processes,
//                     for `saraban-bench fleet` and the relay fault tests
//   SarabanWeb        the clerks' web app and JSON API (Hummingbird), a service of `saraban serve`;
//                     the only target that links Hummingbird, so the pure modules stay free of it
//   saraban           the one executable: CLI and daemon (`saraban serve`)
//   saraban-bench     release-build benchmarks
//   SarabanSim        deterministic simulator of real nodes (library) and `saraban-sim` (its runner)
//   CSimDisk          C: the simulator's disk (an SQLite VFS shim for crashes and power loss)
//   SarabanTestSupport test support (Tests/SarabanTestSupport): TempDir, eventually, Locked, FaultProxy,
//                     the Noise vector runner; only test targets depend on it, no product links it
//   CPowerLoss        test support (Tests/CPowerLoss): libSarabanPowerLoss.so, preloaded into `saraban`
//                     processes by PowerLossTests to keep each database file as of its last fsync; never linked
import PackageDescription

let package = Package(
    name: "Saraban",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "saraban", targets: ["saraban"]),
        .executable(name: "saraban-bench", targets: ["saraban-bench"]),
        .executable(name: "saraban-sim", targets: ["saraban-sim"]),
        .library(name: "SarabanCore", targets: ["SarabanCore"]),
        // Test support, never linked: LD_PRELOADed into `saraban` processes by PowerLossTests.
        .library(name: "SarabanPowerLoss", type: .dynamic, targets: ["CPowerLoss"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // The web app (SarabanWeb only). Hummingbird without its default traits: no swift-configuration.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        .target(name: "SarabanCore"),
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"]), .brew(["libsodium"])]
        ),
        .target(name: "SarabanCrypto", dependencies: ["CSodium"]),
        .target(name: "CSQLiteTuning", linkerSettings: [.linkedLibrary("sqlite3")]),
        .target(
            name: "SarabanStorage",
            dependencies: [
                "SarabanCore", "SarabanCrypto", "SarabanFeed", "CSQLiteTuning",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "SarabanFeed", dependencies: ["SarabanCore", "SarabanCrypto"]),
        .target(name: "SarabanSync", dependencies: ["SarabanCore", "SarabanCrypto", "SarabanFeed"]),
        .target(
            name: "SarabanTransport",
            dependencies: [
                "SarabanSync", "SarabanCrypto",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "SarabanNode",
            dependencies: [
                "SarabanCore", "SarabanCrypto", "SarabanFeed", "SarabanStorage", "SarabanSync", "SarabanTransport", "SarabanOffice",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        // The relay's store on PostgreSQL: many relay processes on one database (Docs/RELAY.md).
        .target(
            name: "SarabanRelayPostgres",
            dependencies: [
                "SarabanNode", "SarabanCrypto", "SarabanFeed", "SarabanSync",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Simulated offices against real relay processes (saraban-bench fleet, relay fault tests).
        .target(
            name: "SarabanFleet",
            dependencies: [
                "SarabanCore", "SarabanCrypto", "SarabanSync", "SarabanTransport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // A relay's Prometheus `/metrics` and `/ready` endpoint.
        .target(
            name: "SarabanRelayMetrics",
            dependencies: [
                "SarabanNode",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "SarabanWeb",
            dependencies: [
                "SarabanNode", "SarabanCore", "SarabanCrypto", "SarabanOffice", "SarabanStorage", "SarabanSync",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "saraban",
            dependencies: [
                "SarabanNode", "SarabanCore", "SarabanCrypto", "SarabanOffice", "SarabanStorage", "SarabanSync",
                "SarabanRelayPostgres", "SarabanRelayMetrics",
                "SarabanWeb",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "saraban-bench",
            dependencies: [
                "SarabanCore", "SarabanCrypto", "SarabanStorage", "SarabanNode", "SarabanSync", "SarabanTransport",
                "SarabanOffice", "SarabanRelayPostgres", "SarabanFleet", .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The e-Saraban domain: letters, registers, Thai dates (pure, standard library + core).
        .target(name: "SarabanOffice", dependencies: ["SarabanCore"]),
        .testTarget(name: "SarabanOfficeTests", dependencies: ["SarabanOffice", "SarabanCore"]),
        // The deterministic simulator: real nodes (Node, Store, SQLite), a relay and a faulty
        // network in one process; CSimDisk crashes their disks and cuts their power.
        .target(name: "CSimDisk", linkerSettings: [.linkedLibrary("sqlite3")]),
        .target(
            name: "SarabanSim",
            dependencies: [
                "SarabanCore", "SarabanCrypto", "SarabanFeed", "SarabanSync", "SarabanOffice", "SarabanStorage", "SarabanNode",
                "CSimDisk", .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(name: "saraban-sim", dependencies: ["SarabanSim"]),
        .testTarget(name: "SarabanCoreTests", dependencies: ["SarabanCore"]),
        .testTarget(
            name: "SarabanSimTests",
            dependencies: ["SarabanSim", "SarabanSync", "SarabanCore", "SarabanCrypto", "SarabanFeed", "SarabanStorage", "SarabanNode"]),
        .testTarget(
            name: "SarabanTransportTests",
            dependencies: [
                "SarabanTransport", "SarabanSync", "SarabanCrypto", "SarabanCore", "SarabanTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "SarabanCryptoTests", dependencies: ["SarabanCrypto", "SarabanTestSupport"]),
        .testTarget(name: "SarabanSyncTests", dependencies: ["SarabanSync", "SarabanCore", "SarabanCrypto"]),
        .testTarget(name: "SarabanFeedTests", dependencies: ["SarabanFeed", "SarabanCore", "SarabanCrypto"]),
        .testTarget(
            name: "SarabanStorageTests",
            dependencies: ["SarabanStorage", "SarabanCore", "SarabanCrypto", "SarabanFeed", "SarabanTestSupport"]),
        .testTarget(
            name: "SarabanNodeTests",
            dependencies: [
                "SarabanNode", "SarabanCore", "SarabanCrypto", "SarabanStorage", "SarabanSync", "SarabanOffice",
                "SarabanTestSupport",
            ]),
        // SarabanCrypto: the officer tests read a sealed key file by its documented layout.
        .testTarget(name: "SarabanCLITests", dependencies: ["saraban", "SarabanCrypto", "SarabanTestSupport"]),
        // The web app over real sockets (a small HTTP client of its own: no HummingbirdTesting, which
        // would build swift-nio-ssl and async-http-client).
        .testTarget(
            name: "SarabanWebTests",
            dependencies: [
                "SarabanWeb", "SarabanNode", "SarabanCore", "SarabanCrypto", "SarabanOffice", "saraban",
                "SarabanTestSupport",
            ]),
        // Shared by the test targets only (no product or production target may depend on it).
        .target(
            name: "SarabanTestSupport",
            dependencies: [
                "SarabanCore", "SarabanCrypto", "SarabanFleet",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Tests/SarabanTestSupport"
        ),
        // Keeps each watched file as of its last fsync, to model a power cut (Docs/TESTING.md).
        .target(name: "CPowerLoss", path: "Tests/CPowerLoss"),
        // Nodes syncing over loopback: in-process daemons, FaultProxy links and real `saraban serve` processes.
        .testTarget(
            name: "SarabanIntegrationTests",
            dependencies: [
                "SarabanNode", "SarabanTransport", "SarabanSync", "SarabanCrypto", "SarabanCore",
                "SarabanStorage", "SarabanTestSupport", .product(name: "NIOCore", package: "swift-nio"),
                // CrashTests: PRAGMA integrity_check and a write-lock probe on the nodes' databases.
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // The relay store suite, run against SQLite and (with SARABAN_TEST_POSTGRES) PostgreSQL; relay faults.
        .testTarget(
            name: "SarabanRelayTests",
            dependencies: [
                "SarabanNode", "SarabanRelayPostgres", "SarabanFleet", "SarabanTransport", "SarabanSync", "SarabanCrypto",
                "SarabanCore", "SarabanStorage", "SarabanTestSupport", .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
    ]
)

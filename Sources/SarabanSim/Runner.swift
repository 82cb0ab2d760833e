/// Runs a range of seeds and reports, for `saraban-sim` and the test suite.
public struct SeedRunner {
    public var start: UInt64
    public var count: Int
    public var members: Int?
    public var steps: Int?
    public var plantedBug: PlantedBug?
    /// Every fault at once and often (`saraban-sim --chaos`).
    public var chaos = false
    /// One line per event on stderr (``SimConfig/trace``).
    public var trace = false
    /// Renew stale sessions (``SimConfig/renewSessions``); false: as the daemon does today.
    public var renewSessions = true
    /// Power loss among the crashes (``SimConfig/powerLoss``; `saraban-sim --no-power-loss` turns it off).
    public var powerLoss = true

    public init(start: UInt64, count: Int, members: Int? = nil, steps: Int? = nil, plantedBug: PlantedBug? = nil) {
        self.start = start
        self.count = count
        self.members = members
        self.steps = steps
        self.plantedBug = plantedBug
    }

    /// Runs every seed; `report` sees each result as it finishes. Returns the failed results.
    @discardableResult
    public func run(_ report: (SimResult) -> Void = { _ in }) -> [SimResult] {
        var failed: [SimResult] = []
        for i in 0..<count {
            var config = SimConfig.derived(
                seed: start &+ UInt64(i), members: members, steps: steps, chaos: chaos, powerLoss: powerLoss)
            config.plantedBug = plantedBug
            config.trace = trace
            config.renewSessions = renewSessions
            let r = Simulation(config).run()
            if !r.passed { failed.append(r) }
            report(r)
        }
        return failed
    }
}

extension SeedRunner {
    /// Every result, passed or not.
    public func runAll() -> [SimResult] {
        var all: [SimResult] = []
        run { all.append($0) }
        return all
    }
}

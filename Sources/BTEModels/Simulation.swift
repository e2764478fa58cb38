import RealModule

/// xoshiro256** seeded through SplitMix64: the same stream for the same seed on every machine,
/// so a simulation is repeatable from its seed.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    var s: (UInt64, UInt64, UInt64, UInt64)
    var spareNormal: Double?

    public init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    public mutating func next() -> UInt64 {
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }

    @inline(__always) func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in (0, 1): 53 random bits, never 0.
    public mutating func uniform() -> Double { (Double(next() >> 11) + 0.5) / 9_007_199_254_740_992 }

    /// Standard normal by Box–Muller, both values of each pair used.
    public mutating func normal() -> Double {
        if let spare = spareNormal {
            spareNormal = nil
            return spare
        }
        let radius = (-2 * Double.log(uniform())).squareRoot()
        let angle = 2 * Double.pi * uniform()
        spareNormal = radius * Double.sin(angle)
        return radius * Double.cos(angle)
    }
}

/// What to simulate from a fitted model: the state distribution on the first day, and each
/// day's controls and disturbances.
public struct SimulationPlan: Sendable {
    public var startMean: [Double]
    public var startCovariance: Matrix
    /// One entry a day; its count is the horizon.
    public var controls: [[Double]]
    public var disturbances: [[Double]]
    public var scenarios: Int
    public var seed: UInt64
    /// y in the KPIs' own units = offset + scale · y (the model runs on standardized KPIs).
    public var observationOffset: [Double]
    public var observationScale: [Double]
    /// Each KPI's possible values in its units (a share can't leave [0, 1], a count can't go
    /// below 0): a linear Gaussian model's draws that leave them are set to the nearest end,
    /// and how often that happened is reported. Unbounded unless set.
    public var observationRanges: [ClosedRange<Double>]?

    public init(
        startMean: [Double], startCovariance: Matrix, controls: [[Double]], disturbances: [[Double]],
        scenarios: Int, seed: UInt64, observationOffset: [Double], observationScale: [Double]
    ) {
        self.startMean = startMean
        self.startCovariance = startCovariance
        self.controls = controls
        self.disturbances = disturbances
        self.scenarios = scenarios
        self.seed = seed
        self.observationOffset = observationOffset
        self.observationScale = observationScale
    }

    public var horizon: Int { controls.count }
}

/// Each KPI's trajectory over the horizon: the scenarios' mean and their 80 % and 95 % bands.
public struct KPITrajectory: Sendable, Equatable {
    public var mean: [Double]
    public var p2_5: [Double]
    public var p10: [Double]
    public var p90: [Double]
    public var p97_5: [Double]
}

public struct SimulationResult: Sendable {
    public var trajectories: [KPITrajectory]
    /// scenarios × days × KPIs, in the KPIs' units: what guardrails are evaluated on.
    public var samples: [[[Double]]]
    /// Per KPI, the share of scenario-days whose draw left the KPI's possible range and was set
    /// to its nearest end (0 without ranges).
    public var clampedShare: [Double]
}

public enum Simulator {
    /// Monte Carlo: each scenario draws its start state and every day's process and observation
    /// noise, and runs the plan through the dynamics.
    public static func run(_ p: StateSpaceParameters, _ plan: SimulationPlan) throws(ModelError) -> SimulationResult {
        let h = plan.horizon
        guard h > 0, h <= 366 else { throw ModelError(.invalidInput, "the horizon must be 1 to 366 days") }
        guard plan.scenarios > 0, plan.scenarios <= 100_000 else {
            throw ModelError(.invalidInput, "scenarios must be 1 to 100,000")
        }
        guard plan.disturbances.count == h, plan.controls.allSatisfy({ $0.count == p.nu }),
            plan.disturbances.allSatisfy({ $0.count == p.nd }), plan.startMean.count == p.nx,
            plan.observationOffset.count == p.ny, plan.observationScale.count == p.ny,
            plan.observationRanges.map({ $0.count == p.ny }) ?? true
        else { throw ModelError(.invalidInput, "the plan's shapes do not match the model") }
        guard (plan.controls + plan.disturbances).allSatisfy({ $0.allSatisfy(\.isFinite) }) else {
            throw ModelError(.invalidInput, "a control or disturbance is not a finite number")
        }
        let start = try Cholesky(ExpectationMaximization.positiveDefinite(plan.startCovariance))
        let processNoise = try Cholesky(ExpectationMaximization.positiveDefinite(p.q))
        let observationNoise = try Cholesky(ExpectationMaximization.positiveDefinite(p.r))
        // The deterministic part of each day's step is the same in every scenario.
        let drift = (0..<h).map { KalmanFilter.add(p.b.times(plan.controls[$0]), p.e.times(plan.disturbances[$0])) }
        let feedthrough = (0..<h).map { p.d.times(plan.controls[$0]) }
        var rng = SeededGenerator(seed: plan.seed)
        var samples: [[[Double]]] = []
        var clamped = [Int](repeating: 0, count: p.ny)
        samples.reserveCapacity(plan.scenarios)
        for _ in 0..<plan.scenarios {
            var x = KalmanFilter.add(plan.startMean, start.lowerTimes(normals(p.nx, &rng)))
            var path: [[Double]] = []
            path.reserveCapacity(h)
            for k in 0..<h {
                let noise = observationNoise.lowerTimes(normals(p.ny, &rng))
                let y = KalmanFilter.add(p.c.times(x), feedthrough[k], noise)
                var values = (0..<p.ny).map { plan.observationOffset[$0] + plan.observationScale[$0] * y[$0] }
                if let ranges = plan.observationRanges {
                    for i in 0..<p.ny where !ranges[i].contains(values[i]) {
                        values[i] = min(max(values[i], ranges[i].lowerBound), ranges[i].upperBound)
                        clamped[i] += 1
                    }
                }
                path.append(values)
                x = KalmanFilter.add(p.a.times(x), drift[k], processNoise.lowerTimes(normals(p.nx, &rng)))
            }
            samples.append(path)
        }
        let trajectories = (0..<p.ny).map { kpi in
            var t = KPITrajectory(mean: [], p2_5: [], p10: [], p90: [], p97_5: [])
            for k in 0..<h {
                let values = samples.map { $0[k][kpi] }.sorted()
                t.mean.append(values.reduce(0, +) / Double(values.count))
                t.p2_5.append(quantile(values, 0.025))
                t.p10.append(quantile(values, 0.10))
                t.p90.append(quantile(values, 0.90))
                t.p97_5.append(quantile(values, 0.975))
            }
            return t
        }
        let cells = Double(plan.scenarios * h)
        return SimulationResult(
            trajectories: trajectories, samples: samples, clampedShare: clamped.map { Double($0) / cells })
    }

    static func normals(_ n: Int, _ rng: inout SeededGenerator) -> [Double] { (0..<n).map { _ in rng.normal() } }

    /// Linear interpolation between order statistics (the "type 7" quantile of R and NumPy).
    public static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        guard let first = sorted.first else { return .nan }
        guard sorted.count > 1 else { return first }
        let position = q * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down))
        let upper = min(lower + 1, sorted.count - 1)
        return sorted[lower] + (position - Double(lower)) * (sorted[upper] - sorted[lower])
    }
}

extension StateSpaceSeries {
    /// A series drawn from known parameters: controls uniform in [0, 1] each day, disturbances
    /// the day of the week and of a 30-day cycle, each scaled to [0, 1]. For validation and
    /// benchmarks, where the truth must be known.
    public static func sample(from p: StateSpaceParameters, days: Int, seed: UInt64) throws(ModelError)
        -> StateSpaceSeries
    {
        var rng = SeededGenerator(seed: seed)
        let q = try Cholesky(ExpectationMaximization.positiveDefinite(p.q))
        let r = try Cholesky(ExpectationMaximization.positiveDefinite(p.r))
        let start = try Cholesky(ExpectationMaximization.positiveDefinite(p.initialCovariance))
        var x = KalmanFilter.add(p.initialMean, start.lowerTimes(Simulator.normals(p.nx, &rng)))
        var series = StateSpaceSeries(y: [], u: [], d: [])
        for t in 0..<days {
            let u = (0..<p.nu).map { _ in rng.uniform() }
            let d =
                [Double(t % 7) / 6, Double(t % 30) / 29].prefix(p.nd) + [Double](repeating: 0, count: max(0, p.nd - 2))
            let y = KalmanFilter.add(p.c.times(x), p.d.times(u), r.lowerTimes(Simulator.normals(p.ny, &rng)))
            series.y.append(y)
            series.u.append(u)
            series.d.append(Array(d))
            x = KalmanFilter.add(
                p.a.times(x), KalmanFilter.add(p.b.times(u), p.e.times(Array(d))),
                q.lowerTimes(Simulator.normals(p.nx, &rng)))
        }
        return series
    }
}

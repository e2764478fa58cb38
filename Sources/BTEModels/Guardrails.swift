import RealModule

/// The three kinds of guardrail a plan is checked against: hard bounds (on the mean trajectory
/// and the controls), chance constraints (estimated from the scenarios), and soft penalties
/// folded into one Lagrangian cost.
public struct Guardrails: Sendable, Equatable {
    public struct Bound: Sendable, Equatable {
        public var kpi: Int
        public var lower: Double?
        public var upper: Double?
        public init(kpi: Int, lower: Double? = nil, upper: Double? = nil) {
            self.kpi = kpi
            self.lower = lower
            self.upper = upper
        }
    }
    /// P(y[kpi] ≥ threshold) ≥ probability, on every day of the horizon.
    public struct Chance: Sendable, Equatable {
        public var kpi: Int
        public var threshold: Double
        public var probability: Double
        public init(kpi: Int, threshold: Double, probability: Double) {
            self.kpi = kpi
            self.threshold = threshold
            self.probability = probability
        }
    }
    /// Cost = reward − λ_latency · Σ_days max(0, latency − cap) − λ_budget · Σ_weeks max(0, spend − budget),
    /// reward the mean of the reward KPI summed over the horizon, spend = Σ_days budgetᵀ u.
    public struct Penalties: Sendable, Equatable {
        public var rewardKPI: Int
        public var latencyKPI: Int
        public var latencyCap: Double
        public var latencyWeight: Double
        public var budgetCoefficients: [Double]
        public var weeklyBudget: Double
        public var budgetWeight: Double
        public init(
            rewardKPI: Int, latencyKPI: Int, latencyCap: Double, latencyWeight: Double, budgetCoefficients: [Double],
            weeklyBudget: Double, budgetWeight: Double
        ) {
            self.rewardKPI = rewardKPI
            self.latencyKPI = latencyKPI
            self.latencyCap = latencyCap
            self.latencyWeight = latencyWeight
            self.budgetCoefficients = budgetCoefficients
            self.weeklyBudget = weeklyBudget
            self.budgetWeight = budgetWeight
        }
    }

    public var kpiNames: [String]
    public var controlNames: [String]
    public var bounds: [Bound]
    public var controlLower: [Double]
    public var controlUpper: [Double]
    public var chance: [Chance]
    public var penalties: Penalties?

    public init(
        kpiNames: [String], controlNames: [String], bounds: [Bound], controlLower: [Double], controlUpper: [Double],
        chance: [Chance], penalties: Penalties?
    ) {
        self.kpiNames = kpiNames
        self.controlNames = controlNames
        self.bounds = bounds
        self.controlLower = controlLower
        self.controlUpper = controlUpper
        self.chance = chance
        self.penalties = penalties
    }
}

public struct GuardrailReport: Sendable, Equatable {
    public struct Violation: Sendable, Equatable {
        public var constraint: String
        public var day: Int
        public var value: Double
        public var limit: Double
        /// Share of scenarios beyond the limit that day (controls: 1).
        public var scenarioShare: Double
    }
    public struct ChanceResult: Sendable, Equatable {
        public var kpi: String
        public var threshold: Double
        public var required: Double
        /// The worst day's estimate and its 95 % Wilson interval over the scenarios.
        public var worstDay: Int
        public var probability: Double
        public var lower95: Double
        public var upper95: Double
        public var satisfied: Bool
        /// Satisfied even at the interval's lower end.
        public var confident: Bool
    }
    public struct Cost: Sendable, Equatable {
        public var reward: Double
        public var latencyPenalty: Double
        public var budgetPenalty: Double
        public var total: Double
    }
    public var hardViolations: [Violation]
    public var chance: [ChanceResult]
    public var cost: Cost?
    public var passes: Bool { hardViolations.isEmpty && chance.allSatisfy(\.satisfied) }
}

extension Guardrails {
    public func evaluate(controls: [[Double]], result: SimulationResult) -> GuardrailReport {
        var violations: [GuardrailReport.Violation] = []
        for (k, u) in controls.enumerated() {
            for (i, value) in u.enumerated() {
                if i < controlLower.count, value < controlLower[i] {
                    violations.append(
                        .init(
                            constraint: "\(controlNames[i]) ≥", day: k, value: value, limit: controlLower[i],
                            scenarioShare: 1))
                }
                if i < controlUpper.count, value > controlUpper[i] {
                    violations.append(
                        .init(
                            constraint: "\(controlNames[i]) ≤", day: k, value: value, limit: controlUpper[i],
                            scenarioShare: 1))
                }
            }
        }
        let scenarios = Double(max(result.samples.count, 1))
        for bound in bounds {
            let mean = result.trajectories[bound.kpi].mean
            for (k, value) in mean.enumerated() {
                if let upper = bound.upper, value > upper {
                    let share = Double(result.samples.filter { $0[k][bound.kpi] > upper }.count) / scenarios
                    violations.append(
                        .init(
                            constraint: "\(kpiNames[bound.kpi]) ≤", day: k, value: value, limit: upper,
                            scenarioShare: share))
                }
                if let lower = bound.lower, value < lower {
                    let share = Double(result.samples.filter { $0[k][bound.kpi] < lower }.count) / scenarios
                    violations.append(
                        .init(
                            constraint: "\(kpiNames[bound.kpi]) ≥", day: k, value: value, limit: lower,
                            scenarioShare: share))
                }
            }
        }
        let chanceResults = chance.map { c -> GuardrailReport.ChanceResult in
            let days = result.trajectories[c.kpi].mean.count
            var worst = (day: 0, probability: 1.0)
            for k in 0..<days {
                let p = Double(result.samples.filter { $0[k][c.kpi] >= c.threshold }.count) / scenarios
                if p < worst.probability { worst = (k, p) }
            }
            let (lower, upper) = Self.wilson(worst.probability, n: scenarios)
            return .init(
                kpi: kpiNames[c.kpi], threshold: c.threshold, required: c.probability, worstDay: worst.day,
                probability: worst.probability, lower95: lower, upper95: upper,
                satisfied: worst.probability >= c.probability, confident: lower >= c.probability)
        }
        let cost = penalties.map { p -> GuardrailReport.Cost in
            let reward = result.trajectories[p.rewardKPI].mean.reduce(0, +)
            let latency = result.trajectories[p.latencyKPI].mean.reduce(0) { $0 + max(0, $1 - p.latencyCap) }
            var budget = 0.0
            for week in stride(from: 0, to: controls.count, by: 7) {
                let spend = controls[week..<min(week + 7, controls.count)].reduce(0) { total, u in
                    total + zip(u, p.budgetCoefficients).reduce(0) { $0 + $1.0 * $1.1 }
                }
                budget += max(0, spend - p.weeklyBudget)
            }
            let latencyPenalty = p.latencyWeight * latency
            let budgetPenalty = p.budgetWeight * budget
            return .init(
                reward: reward, latencyPenalty: latencyPenalty, budgetPenalty: budgetPenalty,
                total: reward - latencyPenalty - budgetPenalty)
        }
        return GuardrailReport(hardViolations: violations, chance: chanceResults, cost: cost)
    }

    /// Wilson score interval at 95 %.
    static func wilson(_ p: Double, n: Double) -> (Double, Double) {
        let z = Normal.z975
        let denominator = 1 + z * z / n
        let centre = (p + z * z / (2 * n)) / denominator
        let half = z * (p * (1 - p) / n + z * z / (4 * n * n)).squareRoot() / denominator
        return (max(0, centre - half), min(1, centre + half))
    }
}

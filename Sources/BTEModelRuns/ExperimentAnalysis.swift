import BTEDomain
import BTEModels
import BTEStore

/// An experiment read from its `experiment.assigned` events: the uplift of the treatment by the
/// DR learner (overall and per segment), the naive difference beside it, sequential tests over
/// the users in the order they were assigned, and the global holdout kept out of it.
public struct ExperimentRequest: Sendable {
    public var workspaceID: String
    public var experimentID: String
    /// active_days, revenue_usd or converted (an order or a won deal).
    public var metric = "revenue_usd"
    public var windowDays = 14
    public var lookbackDays = 28
    /// The last day read; a user counts once their window has ended by then.
    public var toDay: Int
    /// none or device_type.
    public var segmentBy = "none"
    public var holdoutShare = 0.05
    public var alpha = 0.05
    public var spending = AlphaSpending.obrienFleming
    /// The users the experiment plans to reach: the information fraction of a look is its users
    /// over these (default: the users analysed, so the last look spends all of α).
    public var plannedUsers: Int?
    public var looks = 5
    /// τ² of the mSPRT's mixture, relative to the metric's variance.
    public var mixingVariance = 1.0
    public var seed: UInt64 = 1

    public static let metrics = ["active_days", "revenue_usd", "converted"]
    public static let segmentings = ["none", "device_type"]

    public init(workspaceID: String, experimentID: String, toDay: Int) {
        self.workspaceID = workspaceID
        self.experimentID = experimentID
        self.toDay = toDay
    }
}

extension ModelRuns {
    public func analyzeExperiment(_ r: ExperimentRequest) throws -> JSONValue {
        guard ExperimentRequest.metrics.contains(r.metric) else {
            throw ModelError(.invalidInput, "the metric is \(ExperimentRequest.metrics.joined(separator: ", "))")
        }
        guard ExperimentRequest.segmentings.contains(r.segmentBy) else {
            throw ModelError(.invalidInput, "segments are by none or device_type")
        }
        guard (1...365).contains(r.windowDays), (1...365).contains(r.lookbackDays), (1...100).contains(r.looks),
            (0...0.5).contains(r.holdoutShare), r.alpha > 0, r.alpha < 1, r.mixingVariance > 0,
            r.mixingVariance.isFinite
        else {
            throw ModelError(
                .invalidInput,
                "window and lookback 1 to 365 days, 1 to 100 looks, holdout share 0 to 0.5, α in (0, 1), "
                    + "mixing variance > 0")
        }
        let workspace = r.workspaceID.lowercased()
        let all = try store.experimentUnits(
            workspaceID: workspace, experimentID: r.experimentID, toDay: r.toDay, windowDays: r.windowDays,
            lookbackDays: r.lookbackDays)
        guard !all.isEmpty else {
            throw ModelError(
                .insufficientData, "no experiment.assigned for experiment \(r.experimentID) in this workspace")
        }
        let conflicting = all.filter(\.conflicting).count
        let heldOut = all.filter {
            !$0.conflicting
                && Holdout.isHeldOut(
                    workspace: workspace, user: $0.userID, period: Holdout.quarter(ofDay: $0.day), share: r.holdoutShare
                )
        }
        let excluded = Set(heldOut.map(\.userID))
        let eligible = all.filter { !$0.conflicting && !excluded.contains($0.userID) }
        let matured = eligible.filter { $0.day + r.windowDays <= r.toDay }
        func outcome(_ u: ModelStore.ExperimentUnit) -> Double {
            switch r.metric {
            case "active_days": return Double(u.activeAfter)
            case "converted": return u.ordersAfter > 0 ? 1 : 0
            default: return u.revenueAfter
            }
        }
        let y = matured.map(outcome)
        let treated = matured.map { $0.arm == "treatment" }
        let x = matured.map { [Double($0.activeBefore), $0.revenueBefore] }
        let segments = r.segmentBy == "device_type" ? matured.map { $0.deviceType ?? "unknown" } : nil
        var learner = DRLearner()
        learner.seed = r.seed
        let dr = try learner.fit(features: x, treated: treated, outcomes: y, segments: segments)
        let naive = Self.difference(y, treated)

        // Sequential looks over the matured users in assignment order.
        let planned = max(r.plannedUsers ?? matured.count, 1)
        let sizes = (1...r.looks).map { k in
            max(1, Int((Double(matured.count) * Double(k) / Double(r.looks)).rounded()))
        }
        let fractions = sizes.map { min(1, Double($0) / Double(planned)) }
        let increments = r.spending.increments(alpha: r.alpha, fractions: fractions)
        var msprt: MixtureSPRT?
        var looks: [JSONValue] = []
        var stoppedAt: Int?
        for (k, n) in sizes.enumerated() {
            let d = Self.difference(Array(y.prefix(n)), Array(treated.prefix(n)))
            guard d.treated >= 2, d.control >= 2, d.pooledVariance > 0 else { continue }
            if msprt == nil {
                msprt = try MixtureSPRT(
                    variance: d.pooledVariance, mixingVariance: d.pooledVariance * r.mixingVariance)
            }
            let p = try msprt?.observe(n: min(d.treated, d.control), difference: d.difference) ?? 1
            let z = d.difference / d.standardError
            let pFixed = 2 * (1 - Normal.cdf(abs(z)))
            let reject = d.standardError > 0 && pFixed < increments[k]
            if reject, stoppedAt == nil { stoppedAt = k + 1 }
            looks.append(
                ModelJSON.object([
                    ("look", .number(String(k + 1))), ("users", .number(String(n))),
                    ("fraction", ModelJSON.number(fractions[k])), ("difference", ModelJSON.number(d.difference)),
                    ("z", ModelJSON.number(z)), ("p_value", ModelJSON.number(pFixed)),
                    ("alpha_spent", ModelJSON.number(r.spending.spent(alpha: r.alpha, fraction: fractions[k]))),
                    ("alpha_this_look", ModelJSON.number(increments[k])), ("reject", .bool(reject)),
                    ("msprt_p_value", ModelJSON.number(p)),
                ]))
        }
        let msprtP = msprt?.pValue ?? 1
        let share = r.holdoutShare
        return ModelJSON.object([
            ("kind", .string("experiment")), ("workspace_id", .string(workspace)),
            ("experiment_id", .string(r.experimentID.lowercased())), ("metric", .string(r.metric)),
            ("window_days", .number(String(r.windowDays))), ("through", .string(ModelJSON.date(r.toDay))),
            (
                "units",
                ModelJSON.object([
                    ("assigned", .number(String(all.count))), ("conflicting", .number(String(conflicting))),
                    ("held_out", .number(String(heldOut.count))),
                    ("pending", .number(String(eligible.count - matured.count))),
                    ("analysed", .number(String(matured.count))),
                    ("treatment", .number(String(treated.filter { $0 }.count))),
                    ("control", .number(String(treated.filter { !$0 }.count))),
                ])
            ),
            (
                "naive",
                ModelJSON.object([
                    ("difference", ModelJSON.number(naive.difference)),
                    ("lower95", ModelJSON.number(naive.difference - Normal.z975 * naive.standardError)),
                    ("upper95", ModelJSON.number(naive.difference + Normal.z975 * naive.standardError)),
                    ("treatment_mean", ModelJSON.number(naive.treatedMean)),
                    ("control_mean", ModelJSON.number(naive.controlMean)),
                ])
            ),
            (
                "uplift",
                ModelJSON.object([
                    ("overall", Self.json(dr.overall)), ("segments", .array(dr.segments.map(Self.json))),
                    ("effect_model", ModelJSON.numbers(dr.effectModel)),
                    ("features", .array(["active_days_before", "revenue_usd_before"].map { .string($0) })),
                ])
            ),
            (
                "sequential",
                ModelJSON.object([
                    ("alpha", ModelJSON.number(r.alpha)), ("spending", .string(r.spending.rawValue)),
                    ("planned_users", .number(String(planned))), ("looks", .array(looks)),
                    ("stopped_at_look", stoppedAt.map { .number(String($0)) } ?? .null),
                    ("msprt_p_value", ModelJSON.number(msprtP)), ("msprt_significant", .bool(msprtP < r.alpha)),
                ])
            ),
            (
                "holdout",
                ModelJSON.object([
                    ("share", ModelJSON.number(share)), ("refreshed", .string("quarterly")),
                    ("excluded", .number(String(heldOut.count))),
                ])
            ),
        ])
    }

    struct Difference {
        var difference: Double
        var standardError: Double
        var treatedMean: Double
        var controlMean: Double
        var treated: Int
        var control: Int
        var pooledVariance: Double
    }

    /// The difference of means (treatment − control) with its Welch standard error.
    static func difference(_ y: [Double], _ treated: [Bool]) -> Difference {
        let a = zip(y, treated).filter { $0.1 }.map(\.0)
        let b = zip(y, treated).filter { !$0.1 }.map(\.0)
        func moments(_ v: [Double]) -> (mean: Double, variance: Double) {
            guard !v.isEmpty else { return (.nan, .nan) }
            let mean = v.reduce(0, +) / Double(v.count)
            guard v.count > 1 else { return (mean, .nan) }
            return (mean, v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count - 1))
        }
        let (ma, va) = moments(a)
        let (mb, vb) = moments(b)
        let pooled =
            a.count > 1 && b.count > 1
            ? (va * Double(a.count - 1) + vb * Double(b.count - 1)) / Double(a.count + b.count - 2) : .nan
        return Difference(
            difference: ma - mb, standardError: (va / Double(a.count) + vb / Double(b.count)).squareRoot(),
            treatedMean: ma, controlMean: mb, treated: a.count, control: b.count, pooledVariance: pooled)
    }

    static func json(_ s: DRLearner.SegmentUplift) -> JSONValue {
        ModelJSON.object([
            ("segment", .string(s.segment)), ("units", .number(String(s.units))),
            ("uplift", ModelJSON.number(s.uplift)), ("standard_error", ModelJSON.number(s.standardError)),
            ("lower95", ModelJSON.number(s.lower95)), ("upper95", ModelJSON.number(s.upper95)),
        ])
    }

    /// The global holdout of a quarter: which of the workspace's active users it keeps out of
    /// experiments, and how they fared against everyone else (the policy's effect).
    public func holdout(workspaceID: String, share: Double, day: Int, user: String?) throws -> JSONValue {
        guard (0...0.5).contains(share) else { throw ModelError(.invalidInput, "the holdout share is 0 to 0.5") }
        let workspace = workspaceID.lowercased()
        let period = Holdout.quarter(ofDay: day)
        let (year, quarter) = (period / 4, period % 4)
        let start = ModelJSON.day(year: year, month: quarter * 3 + 1, day: 1)
        let next = ModelJSON.day(year: (period + 1) / 4, month: (period + 1) % 4 * 3 + 1, day: 1)
        var members: [(String, JSONValue)] = [
            ("kind", .string("holdout")), ("workspace_id", .string(workspace)),
            ("period", .string("\(year)-Q\(quarter + 1)")), ("share", ModelJSON.number(share)),
            ("from", .string(ModelJSON.date(start))), ("next_refresh", .string(ModelJSON.date(next))),
        ]
        if let user {
            members.append(("user_id", .string(user)))
            members.append(
                ("held_out", .bool(Holdout.isHeldOut(workspace: workspace, user: user, period: period, share: share))))
            return ModelJSON.object(members)
        }
        let users = try store.activeUsers(workspaceID: workspace, fromDay: start, toDay: min(day, next - 1))
        let held = users.map { Holdout.isHeldOut(workspace: workspace, user: $0.userID, period: period, share: share) }
        let days = Self.difference(users.map { Double($0.activeDays) }, held.map { !$0 })
        let revenue = Self.difference(users.map(\.revenue), held.map { !$0 })
        func evaluation(_ d: Difference) -> JSONValue {
            ModelJSON.object([
                ("exposed_mean", ModelJSON.number(d.treatedMean)), ("held_out_mean", ModelJSON.number(d.controlMean)),
                ("difference", ModelJSON.number(d.difference)),
                ("lower95", ModelJSON.number(d.difference - Normal.z975 * d.standardError)),
                ("upper95", ModelJSON.number(d.difference + Normal.z975 * d.standardError)),
            ])
        }
        members += [
            ("through", .string(ModelJSON.date(min(day, next - 1)))),
            ("active_users", .number(String(users.count))),
            ("held_out_users", .number(String(held.filter { $0 }.count))),
            ("active_days_per_user", evaluation(days)), ("revenue_usd_per_user", evaluation(revenue)),
        ]
        return ModelJSON.object(members)
    }
}

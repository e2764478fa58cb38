import BTEDomain
import BTEModels
import BTEStore
import Dispatch

/// `bte models`: fits from the logs' daily KPIs, simulations and forecasts from a fitted run,
/// each recorded in the models' tables.
public struct ModelRuns {
    let store: ModelStore

    public init(store: ModelStore) { self.store = store }

    public struct FitRequest: Sendable {
        public var workspaceID: String
        public var model: String
        public var segment: String?
        /// The last day fitted (days since 1970-01-01), usually yesterday, and how many days back.
        public var toDay: Int
        public var days: Int
        public var stateDimension = 4
        public var kpis = KPISeries.kpiNames
        public var controls = KPISeries.controlNames
        public var disturbances = ["day_of_week", "monthly_cycle"]
        public var options = EMOptions()
        /// RC retention: days since first seen that are fitted.
        public var retentionDays = 90
        /// RLS forgetting factor of the online control effects.
        public var forgetting = 0.99

        public init(workspaceID: String, model: String, segment: String?, toDay: Int, days: Int) {
            self.workspaceID = workspaceID
            self.model = model
            self.segment = segment
            self.toDay = toDay
            self.days = days
        }
    }

    public struct Recorded: Sendable {
        public var runID: String
        /// The record as published and printed.
        public var record: JSONValue
    }

    public static let models = ["rc_retention", "state_space"]

    public func fit(_ request: FitRequest) throws -> Recorded {
        let workspace = request.workspaceID.lowercased()
        var filter: ModelStore.SegmentFilter?
        if let name = request.segment {
            guard let found = try store.segment(workspaceID: workspace, name: name) else {
                throw ModelError(.invalidInput, "workspace \(workspace) has no segment named \(name)")
            }
            filter = found
        }
        let fromDay = request.toDay - request.days + 1
        let (params, fit, hyperparams): (JSONValue, JSONValue, JSONValue)
        switch request.model {
        case "state_space":
            (params, fit, hyperparams) = try fitStateSpace(
                request, workspace: workspace, fromDay: fromDay, filter: filter)
        case "rc_retention":
            (params, fit, hyperparams) = try fitRetention(
                request, workspace: workspace, fromDay: fromDay, filter: filter)
        default:
            throw ModelError(.invalidInput, "--model is \(Self.models.joined(separator: " or ")), not \(request.model)")
        }
        let runID = try store.recordEstimate(
            workspaceID: workspace, segment: request.segment, modelType: request.model,
            hyperparams: hyperparams.canonicalString(), params: params.canonicalString(), fit: fit.canonicalString())
        let record = ModelJSON.object([
            ("kind", .string("estimate")), ("run_id", .string(runID)), ("workspace_id", .string(workspace)),
            ("model_type", .string(request.model)), ("segment", request.segment.map { .string($0) } ?? .null),
            ("from", .string(ModelJSON.date(fromDay))), ("to", .string(ModelJSON.date(request.toDay))),
            ("params", params), ("fit", fit),
        ])
        return Recorded(runID: runID, record: record)
    }

    func fitStateSpace(_ r: FitRequest, workspace: String, fromDay: Int, filter: ModelStore.SegmentFilter?) throws
        -> (JSONValue, JSONValue, JSONValue)
    {
        guard r.kpis.allSatisfy(KPISeries.kpiNames.contains), !r.kpis.isEmpty,
            r.controls.allSatisfy(KPISeries.controlNames.contains),
            r.disturbances.allSatisfy(KPISeries.disturbanceNames.contains), (1...12).contains(r.stateDimension)
        else {
            throw ModelError(.invalidInput, "unknown KPI, control or disturbance, or a state dimension outside 1…12")
        }
        let rows = try store.dailyKPIs(workspaceID: workspace, fromDay: fromDay, toDay: r.toDay, segment: filter)
        let (changes, incidents) = try store.controlsAndIncidents(workspaceID: workspace, toDay: r.toDay)
        let days = rows.map(\.day)
        let u = KPISeries.controls(days: days, names: r.controls, changes: changes)
        let d = KPISeries.disturbances(days: days, names: r.disturbances, incidents: incidents)
        let raw = KPISeries.series(rows: rows, kpis: r.kpis, controls: u, disturbances: d)
        let standardization = Standardization(raw, width: r.kpis.count)
        let series = standardization.apply(raw)
        let start = ExpectationMaximization.initialParameters(
            nx: r.stateDimension, nu: r.controls.count, ny: r.kpis.count, nd: r.disturbances.count, series: series)
        let result = try ExpectationMaximization.fit(series, from: start, options: r.options)
        let p = result.parameters
        let filtered = result.filtered
        guard let lastMean = filtered.filteredMeans.last, let lastCovariance = filtered.filteredCovariances.last,
            let lastU = u.last, let lastD = d.last
        else { throw ModelError(.insufficientData, "no days to fit") }
        let nextMean = KalmanFilter.add(p.a.times(lastMean), p.b.times(lastU), p.e.times(lastD))
        let nextCovariance = (p.a * lastCovariance * p.a.transposed + p.q).symmetrized
        var fitted = FittedStateSpace(
            parameters: p, standardization: standardization, kpis: r.kpis, controls: r.controls,
            disturbances: r.disturbances, lastDay: r.toDay, lastControls: lastU, nextMean: nextMean,
            nextCovariance: nextCovariance)
        fitted.controlRangesSeen = r.controls.indices.map { c in
            let values = u.map { $0[c] }
            return (values.min() ?? lastU[c])...(values.max() ?? lastU[c])
        }
        let diagnostics = result.diagnostics
        // Online control effects: per KPI, y ≈ θ₀ + θᵀu by recursive least squares, each day
        // weighing λ times the day after it, so recent days dominate.
        var effects: [(String, JSONValue)] = []
        for (k, kpi) in r.kpis.enumerated() {
            var rls = try RecursiveLeastSquares(dimension: r.controls.count + 1, forgetting: r.forgetting)
            for (t, y) in raw.y.enumerated() {
                guard let y else { continue }
                try rls.update(x: [1] + u[t], r: y[k])
            }
            effects.append(
                (
                    kpi,
                    ModelJSON.object(
                        [("intercept", ModelJSON.number(rls.theta[0]))]
                            + r.controls.indices.map {
                                (r.controls[$0], ModelJSON.number(rls.theta[$0 + 1]))
                            })
                ))
        }
        let fit = ModelJSON.object([
            ("online_control_effects", ModelJSON.object(effects)),
            (
                "rmse",
                ModelJSON.object(
                    r.kpis.indices.map {
                        (r.kpis[$0], ModelJSON.number(diagnostics.rmse[$0] * standardization.scales[$0]))
                    })
            ),
            ("r2", ModelJSON.object(r.kpis.indices.map { (r.kpis[$0], ModelJSON.number(diagnostics.r2[$0])) })),
            ("log_likelihood", ModelJSON.number(diagnostics.logLikelihood)),
            ("iterations", .number(String(result.iterations.count))), ("converged", .bool(result.converged)),
            ("log_likelihood_by_iteration", ModelJSON.numbers(result.iterations.map(\.logLikelihood))),
            ("parameter_change_by_iteration", ModelJSON.numbers(result.iterations.map(\.parameterChange))),
            ("days", .number(String(rows.count))), ("observed_days", .number(String(diagnostics.observedDays))),
        ])
        let hyperparams = ModelJSON.object([
            ("nx", .number(String(r.stateDimension))), ("kpis", .array(r.kpis.map { .string($0) })),
            ("controls", .array(r.controls.map { .string($0) })),
            ("disturbances", .array(r.disturbances.map { .string($0) })), ("ridge", ModelJSON.number(r.options.ridge)),
            ("tolerance", ModelJSON.number(r.options.tolerance)),
            ("max_iterations", .number(String(r.options.maxIterations))), ("days", .number(String(r.days))),
            ("forgetting", ModelJSON.number(r.forgetting)),
        ])
        return (fitted.json, fit, hyperparams)
    }

    func fitRetention(_ r: FitRequest, workspace: String, fromDay: Int, filter: ModelStore.SegmentFilter?) throws
        -> (JSONValue, JSONValue, JSONValue)
    {
        let curve = try store.retentionCurve(
            workspaceID: workspace, fromDay: fromDay, toDay: r.toDay, maxDays: r.retentionDays, segment: filter
        ).filter { $0.eligible > 0 }
        let result = try RCRetention.fit(
            days: curve.map { Double($0.day) }, retention: curve.map { Double($0.retained) / Double($0.eligible) },
            weights: curve.map { Double($0.eligible) })
        let params = ModelJSON.object([
            ("R0", ModelJSON.number(result.r0)), ("R_inf", ModelJSON.number(result.rInfinity)),
            ("RC", ModelJSON.number(result.rc)), ("R0_se", ModelJSON.number(result.r0StandardError)),
            ("R_inf_se", ModelJSON.number(result.rInfinityStandardError)),
            ("RC_se", ModelJSON.number(result.rcStandardError)), ("reading", .string(result.reading)),
            (
                "curve",
                .array(
                    curve.map { point in
                        ModelJSON.object([
                            ("t", .number(String(point.day))), ("retained", .number(String(point.retained))),
                            ("eligible", .number(String(point.eligible))),
                        ])
                    })
            ),
        ])
        let fit = ModelJSON.object([
            ("rmse", ModelJSON.number(result.rmse)), ("r2", ModelJSON.number(result.r2)),
            ("iterations", .number(String(result.iterations))), ("points", .number(String(result.points))),
        ])
        let hyperparams = ModelJSON.object([
            ("days", .number(String(r.days))), ("retention_days", .number(String(r.retentionDays))),
        ])
        return (params, fit, hyperparams)
    }

    public struct SimulateRequest: Sendable {
        public var runID: String
        public var horizon: Int
        /// Day by day, what changes (a day without an entry keeps the day before's); nil: hold
        /// the last fitted day's controls (a forecast).
        public var plan: [[String: Double]]?
        public var scenarios = 1_000
        public var seed: UInt64 = 1
        public var guardrails = GuardrailSettings()
        /// When set, the run must be this workspace's.
        public var workspaceID: String?

        public init(runID: String, horizon: Int, plan: [[String: Double]]?) {
            self.runID = runID
            self.horizon = horizon
            self.plan = plan
        }
    }

    /// The seed's guardrails by default: latency ≤ 250 ms, P(retention_d7 ≥ 0.24) ≥ 0.9, the
    /// controls' ranges, and the Lagrangian cost with a weekly budget of 3,000.
    /// Simulated paths are kept whole for their bands: scenarios × days is capped so one request
    /// stays within tens of MB.
    public static let maxScenarioDays = 1_000_000

    static func checkScenarioDays(_ scenarios: Int, _ horizon: Int) throws {
        let (cells, overflow) = scenarios.multipliedReportingOverflow(by: horizon)
        guard !overflow, scenarios > 0, cells <= maxScenarioDays else {
            throw ModelError(
                .invalidInput, "scenarios × horizon is at most 1,000,000 (\(scenarios) × \(horizon) asked)")
        }
    }

    public struct GuardrailSettings: Sendable, Equatable {
        public var latencyMax = 250.0
        public var retentionMin = 0.24
        public var retentionProbability = 0.9
        public var weeklyBudget = 3_000.0
        /// USD a day per unit of each control (none costs anything unless given).
        public var budgetCoefficients: [String: Double] = [:]
        public var latencyWeight = 1.0
        public var budgetWeight = 1.0
        public init() {}
    }

    /// A recorded state_space run and its fitted model.
    /// The run, if it exists and (when `workspace` is given) is that workspace's: another
    /// workspace's run is "no such run", so runs can't be discovered across workspaces.
    func stateSpaceRun(_ id: String, workspace: String? = nil) throws -> (ModelStore.EstimateRun, FittedStateSpace) {
        guard let run = try store.estimateRun(id: id), workspace.map({ $0.lowercased() == run.workspaceID }) ?? true
        else { throw ModelError(.notFound, "no estimate run \(id)") }
        guard run.modelType == "state_space" else {
            throw ModelError(.invalidInput, "run \(run.runID) is \(run.modelType); this needs a state_space run")
        }
        do {
            return (run, try FittedStateSpace(json: try JSONParser.parse(Array(run.params.utf8))))
        } catch let error as ModelError {
            throw error
        } catch {
            throw ModelError(.invalidInput, "run \(run.runID)'s params are not JSON")
        }
    }

    public func simulate(_ request: SimulateRequest) throws -> Recorded {
        let started = DispatchTime.now().uptimeNanoseconds
        let (run, fitted) = try stateSpaceRun(request.runID, workspace: request.workspaceID)
        guard (1...366).contains(request.horizon) else { throw ModelError(.invalidInput, "--horizon is 1 to 366 days") }
        try Self.checkScenarioDays(request.scenarios, request.horizon)
        var current = Dictionary(uniqueKeysWithValues: zip(fitted.controls, fitted.lastControls))
        var controls: [[Double]] = []
        for k in 0..<request.horizon {
            if let plan = request.plan, k < plan.count {
                for (name, value) in plan[k] {
                    guard fitted.controls.contains(name) else {
                        throw ModelError(
                            .invalidInput, "the run has no control \(name) (\(fitted.controls.joined(separator: ", ")))"
                        )
                    }
                    guard value.isFinite else {
                        throw ModelError(.invalidInput, "\(name) on day \(k) is not a finite number")
                    }
                    current[name] = value
                }
            }
            controls.append(fitted.controls.map { current[$0] ?? 0 })
        }
        let (days, disturbances) = fitted.calendar(horizon: request.horizon)
        var plan = SimulationPlan(
            startMean: fitted.nextMean, startCovariance: fitted.nextCovariance, controls: controls,
            disturbances: disturbances, scenarios: request.scenarios, seed: request.seed,
            observationOffset: fitted.standardization.offsets, observationScale: fitted.standardization.scales)
        plan.observationRanges = fitted.kpis.map(KPISeries.possibleRange)
        let result = try Simulator.run(fitted.parameters, plan)
        let report = Self.guardrails(request.guardrails, fitted: fitted).evaluate(controls: controls, result: result)
        let kind = request.plan == nil ? "forecast" : "simulation"
        var body: [(String, JSONValue)] = [
            ("kind", .string(kind)), ("estimate_run_id", .string(run.runID)),
            ("workspace_id", .string(run.workspaceID)),
            ("horizon", .number(String(request.horizon))), ("scenarios", .number(String(request.scenarios))),
            ("seed", .number(String(request.seed))), ("days", .array(days.map { .string(ModelJSON.date($0)) })),
            (
                "controls",
                ModelJSON.object(
                    fitted.controls.indices.map { i in (fitted.controls[i], ModelJSON.numbers(controls.map { $0[i] })) }
                )
            ),
            (
                "kpis",
                ModelJSON.object(
                    fitted.kpis.indices.map { i in
                        let t = result.trajectories[i]
                        return (
                            fitted.kpis[i],
                            ModelJSON.object([
                                ("mean", ModelJSON.numbers(t.mean)), ("p2_5", ModelJSON.numbers(t.p2_5)),
                                ("p10", ModelJSON.numbers(t.p10)),
                                ("p90", ModelJSON.numbers(t.p90)), ("p97_5", ModelJSON.numbers(t.p97_5)),
                                ("clamped_share", ModelJSON.number(result.clampedShare[i])),
                            ])
                        )
                    })
            ),
            ("guardrails", Self.json(report)),
        ]
        let requestJSON = ModelJSON.object([
            ("run_id", .string(run.runID)), ("horizon", .number(String(request.horizon))),
            ("scenarios", .number(String(request.scenarios))), ("seed", .number(String(request.seed))),
            (
                "plan",
                request.plan.map { plan in
                    .array(
                        plan.map { day in
                            ModelJSON.object(
                                day.sorted { $0.key < $1.key }.map { ($0.key, ModelJSON.number($0.value)) })
                        })
                } ?? .null
            ),
        ])
        let milliseconds = Int((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000)
        let resultJSON = ModelJSON.object(body)
        let runID = try store.recordSimulation(
            workspaceID: run.workspaceID, estimateRunID: run.runID, request: requestJSON.canonicalString(),
            result: resultJSON.canonicalString(), status: "completed", durationMs: milliseconds)
        body.insert(("run_id", .string(runID)), at: 1)
        body.append(("duration_ms", .number(String(milliseconds))))
        return Recorded(runID: runID, record: ModelJSON.object(body))
    }

    static func guardrails(_ s: GuardrailSettings, fitted: FittedStateSpace) -> Guardrails {
        let latency = fitted.kpis.firstIndex(of: "latency_p95_ms")
        let retention = fitted.kpis.firstIndex(of: "retention_d7")
        let revenue = fitted.kpis.firstIndex(of: "revenue_usd")
        let ranges = Dictionary(uniqueKeysWithValues: Schemas.controlRanges.map { ($0.name, $0.range) })
        return Guardrails(
            kpiNames: fitted.kpis, controlNames: fitted.controls,
            bounds: latency.map { [Guardrails.Bound(kpi: $0, upper: s.latencyMax)] } ?? [],
            controlLower: fitted.controls.map { ranges[$0]?.lowerBound ?? -.infinity },
            controlUpper: fitted.controls.map { ranges[$0]?.upperBound ?? .infinity },
            chance: retention.map {
                [Guardrails.Chance(kpi: $0, threshold: s.retentionMin, probability: s.retentionProbability)]
            } ?? [],
            penalties: revenue.map { revenueIndex in
                Guardrails.Penalties(
                    rewardKPI: revenueIndex, latencyKPI: latency ?? revenueIndex,
                    latencyCap: latency == nil ? .infinity : s.latencyMax, latencyWeight: s.latencyWeight,
                    budgetCoefficients: fitted.controls.map { s.budgetCoefficients[$0] ?? 0 },
                    weeklyBudget: s.weeklyBudget, budgetWeight: s.budgetWeight)
            })
    }

    static func json(_ report: GuardrailReport) -> JSONValue {
        ModelJSON.object([
            ("passes", .bool(report.passes)),
            (
                "hard_violations",
                .array(
                    report.hardViolations.map { v in
                        ModelJSON.object([
                            ("constraint", .string(v.constraint)), ("day", .number(String(v.day))),
                            ("value", ModelJSON.number(v.value)),
                            ("limit", ModelJSON.number(v.limit)), ("scenario_share", ModelJSON.number(v.scenarioShare)),
                        ])
                    })
            ),
            (
                "chance",
                .array(
                    report.chance.map { c in
                        ModelJSON.object([
                            ("kpi", .string(c.kpi)), ("threshold", ModelJSON.number(c.threshold)),
                            ("required_probability", ModelJSON.number(c.required)),
                            ("worst_day", .number(String(c.worstDay))),
                            ("probability", ModelJSON.number(c.probability)), ("lower95", ModelJSON.number(c.lower95)),
                            ("upper95", ModelJSON.number(c.upper95)), ("satisfied", .bool(c.satisfied)),
                            ("confident", .bool(c.confident)),
                        ])
                    })
            ),
            (
                "cost",
                report.cost.map { c in
                    ModelJSON.object([
                        ("reward", ModelJSON.number(c.reward)), ("latency_penalty", ModelJSON.number(c.latencyPenalty)),
                        ("budget_penalty", ModelJSON.number(c.budgetPenalty)), ("total", ModelJSON.number(c.total)),
                    ])
                } ?? .null
            ),
        ])
    }
}

extension ModelRuns {
    /// What `recommend` optimizes: KPI targets (KPI units) and weights, control costs and
    /// bounds, the latency cap and the weekly budget.
    public struct RecommendSettings: Sendable, Equatable {
        public var targets: [String: Double] = [:]
        /// Per KPI, on standardized errors (1 for each targeted KPI unless given).
        public var kpiWeights: [String: Double] = [:]
        /// Per control (0.01 unless given).
        public var controlWeights: [String: Double] = [:]
        public var controlBounds: [String: ClosedRange<Double>] = [:]
        public var latencyMax: Double? = 250
        public var weeklyBudget: Double? = 3_000
        public var budgetCoefficients: [String: Double] = [:]
        public init() {}
    }

    public struct RecommendRequest: Sendable {
        public var runID: String
        public var horizon: Int
        public var settings: RecommendSettings
        public var scenarios = 1_000
        public var seed: UInt64 = 1
        /// When set, the run must be this workspace's.
        public var workspaceID: String?
        public init(runID: String, horizon: Int, settings: RecommendSettings) {
            self.runID = runID
            self.horizon = horizon
            self.settings = settings
        }
    }

    public func recommend(_ request: RecommendRequest) throws -> Recorded {
        let started = DispatchTime.now().uptimeNanoseconds
        let (run, fitted) = try stateSpaceRun(request.runID, workspace: request.workspaceID)
        guard (1...90).contains(request.horizon) else { throw ModelError(.invalidInput, "the horizon is 1 to 90 days") }
        try Self.checkScenarioDays(request.scenarios, request.horizon)
        let s = request.settings
        guard !s.targets.isEmpty else { throw ModelError(.invalidInput, "the constraints name no KPI target") }
        for name in s.targets.keys where !fitted.kpis.contains(name) {
            throw ModelError(.invalidInput, "the run has no KPI \(name) (\(fitted.kpis.joined(separator: ", ")))")
        }
        for name in Set(s.controlWeights.keys).union(s.controlBounds.keys).union(s.budgetCoefficients.keys)
        where !fitted.controls.contains(name) {
            throw ModelError(
                .invalidInput, "the run has no control \(name) (\(fitted.controls.joined(separator: ", ")))")
        }
        let std = fitted.standardization
        let ranges = Dictionary(uniqueKeysWithValues: Schemas.controlRanges.map { ($0.name, $0.range) })
        let (days, disturbances) = fitted.calendar(horizon: request.horizon)
        var limits: [(kpi: Int, limit: Double)] = []
        if let cap = s.latencyMax, let index = fitted.kpis.firstIndex(of: "latency_p95_ms") {
            limits.append((index, (cap - std.offsets[index]) / std.scales[index]))
        }
        // The plan stays within the values each control took in the fitted days: the model has
        // not seen what others do (a control that never changed is held at its value).
        var lower = fitted.controls.map { (s.controlBounds[$0] ?? ranges[$0] ?? 0...1).lowerBound }
        var upper = fitted.controls.map { (s.controlBounds[$0] ?? ranges[$0] ?? 0...1).upperBound }
        if let seen = fitted.controlRangesSeen {
            for c in fitted.controls.indices {
                let low = max(lower[c], seen[c].lowerBound)
                let high = min(upper[c], seen[c].upperBound)
                guard low <= high else {
                    throw ModelError(
                        .invalidInput,
                        "\(fitted.controls[c])'s bounds leave the values it took in the fitted days "
                            + "(\(seen[c].lowerBound) to \(seen[c].upperBound))")
                }
                (lower[c], upper[c]) = (low, high)
            }
        }
        let problem = MPCProblem(
            parameters: fitted.parameters, startMean: fitted.nextMean,
            disturbances: disturbances,
            targets: fitted.kpis.indices.map { i in
                s.targets[fitted.kpis[i]].map { ($0 - std.offsets[i]) / std.scales[i] } ?? 0
            },
            kpiWeights: fitted.kpis.map { s.targets[$0] == nil ? 0 : (s.kpiWeights[$0] ?? 1) },
            controlWeights: fitted.controls.map { s.controlWeights[$0] ?? 0.01 },
            controlLower: lower, controlUpper: upper, outputLimits: limits,
            budgetCoefficients: fitted.controls.map { s.budgetCoefficients[$0] ?? 0 },
            weeklyBudget: s.weeklyBudget, kpiNames: fitted.kpis, controlNames: fitted.controls)
        let solveStart = DispatchTime.now().uptimeNanoseconds
        var plan = try ModelPredictiveControl.solve(problem)
        // ADMM meets the bounds to its tolerance; the plan published meets them exactly.
        plan.controls = plan.controls.map { day in
            day.indices.map { c in min(max(day[c], lower[c]), upper[c]) }
        }
        let solveMs = Double(DispatchTime.now().uptimeNanoseconds - solveStart) / 1e6
        var simulationPlan = SimulationPlan(
            startMean: fitted.nextMean, startCovariance: fitted.nextCovariance, controls: plan.controls,
            disturbances: problem.disturbances, scenarios: request.scenarios, seed: request.seed,
            observationOffset: std.offsets, observationScale: std.scales)
        let possible = fitted.kpis.map(KPISeries.possibleRange)
        simulationPlan.observationRanges = possible
        let simulation = try Simulator.run(fitted.parameters, simulationPlan)
        // The plan's own guardrails: its latency cap and budget, and the default retention chance.
        var railSettings = GuardrailSettings()
        railSettings.latencyMax = s.latencyMax ?? .infinity
        railSettings.weeklyBudget = s.weeklyBudget ?? .infinity
        railSettings.budgetCoefficients = s.budgetCoefficients
        let report = Self.guardrails(railSettings, fitted: fitted).evaluate(
            controls: plan.controls, result: simulation)
        let n = fitted.controls.count
        var body: [(String, JSONValue)] = [
            ("kind", .string("recommendation")), ("estimate_run_id", .string(run.runID)),
            ("workspace_id", .string(run.workspaceID)), ("horizon", .number(String(request.horizon))),
            ("days", .array(days.map { .string(ModelJSON.date($0)) })),
            (
                "plan",
                ModelJSON.object(
                    (0..<n).map { c in (fitted.controls[c], ModelJSON.numbers(plan.controls.map { $0[c] })) })
            ),
            (
                "predicted",
                ModelJSON.object(
                    fitted.kpis.indices.map { i in
                        let t = simulation.trajectories[i]
                        return (
                            fitted.kpis[i],
                            ModelJSON.object([
                                (
                                    "expected",
                                    ModelJSON.numbers(
                                        plan.predicted.map {
                                            min(
                                                max(std.offsets[i] + std.scales[i] * $0[i], possible[i].lowerBound),
                                                possible[i].upperBound)
                                        })
                                ),
                                ("mean", ModelJSON.numbers(t.mean)), ("p10", ModelJSON.numbers(t.p10)),
                                ("p90", ModelJSON.numbers(t.p90)),
                                ("p2_5", ModelJSON.numbers(t.p2_5)), ("p97_5", ModelJSON.numbers(t.p97_5)),
                                ("clamped_share", ModelJSON.number(simulation.clampedShare[i])),
                            ])
                        )
                    })
            ),
            (
                "control_ranges",
                ModelJSON.object(
                    fitted.controls.indices.map { c in (fitted.controls[c], ModelJSON.numbers([lower[c], upper[c]])) })
            ),
            ("guardrails", Self.json(report)),
            ("active_constraints", .array(plan.activeConstraints.map { .string($0) })),
            (
                "solver",
                ModelJSON.object([
                    ("iterations", .number(String(plan.solution.iterations))),
                    ("primal_residual", ModelJSON.number(plan.solution.primalResidual)),
                    ("dual_residual", ModelJSON.number(plan.solution.dualResidual)),
                    ("solve_ms", ModelJSON.number(solveMs)),
                ])
            ),
        ]
        let requestJSON = ModelJSON.object([
            ("run_id", .string(run.runID)), ("horizon", .number(String(request.horizon))),
            ("kind", .string("recommend")),
            (
                "targets",
                ModelJSON.object(s.targets.sorted { $0.key < $1.key }.map { ($0.key, ModelJSON.number($0.value)) })
            ),
        ])
        let milliseconds = Int((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000)
        let runID = try store.recordSimulation(
            workspaceID: run.workspaceID, estimateRunID: run.runID, request: requestJSON.canonicalString(),
            result: ModelJSON.object(body).canonicalString(), status: "completed", durationMs: milliseconds)
        body.insert(("run_id", .string(runID)), at: 1)
        body.append(("duration_ms", .number(String(milliseconds))))
        return Recorded(runID: runID, record: ModelJSON.object(body))
    }
}

extension ModelRuns {
    public struct BanditRequest: Sendable {
        public var workspaceID: String
        public var bandit: String
        public var runID: String
        /// Each action: the controls it sets (the others keep the run's last values).
        public var actions: [[String: Double]]
        public var horizon = 7
        public var scenarios = 500
        public var seed: UInt64 = 1
        public var noiseVariance = 1.0
        public var guardrails = GuardrailSettings()

        public init(workspaceID: String, bandit: String, runID: String, actions: [[String: Double]]) {
            self.workspaceID = workspaceID
            self.bandit = bandit
            self.runID = runID
            self.actions = actions
        }
    }

    /// Constrained Thompson sampling over the actions: the context of an action is
    /// [1, its controls, the predicted next-day daily_active_users and latency_p95_ms
    /// (standardized)]; an action whose simulated week breaks a guardrail is skipped. The draw
    /// is seeded by --seed and the log's length, so a replay of the log decides the same.
    public func banditChoose(_ request: BanditRequest) throws -> JSONValue {
        let (run, fitted) = try stateSpaceRun(request.runID, workspace: request.workspaceID)
        guard !request.actions.isEmpty, request.actions.count <= 1_000 else {
            throw ModelError(.invalidInput, "1 to 1,000 actions")
        }
        let workspace = request.workspaceID.lowercased()
        let last = Dictionary(uniqueKeysWithValues: zip(fitted.controls, fitted.lastControls))
        var controls: [[Double]] = []
        for action in request.actions {
            for (name, value) in action where !fitted.controls.contains(name) || !value.isFinite {
                throw ModelError(.invalidInput, "action sets \(name), not a finite control of the run")
            }
            controls.append(fitted.controls.map { action[$0] ?? last[$0] ?? 0 })
        }
        let predicted = KalmanFilter.add(
            fitted.parameters.c.times(fitted.nextMean), fitted.parameters.d.times(fitted.lastControls))
        let state = ["daily_active_users", "latency_p95_ms"].map { name in
            fitted.kpis.firstIndex(of: name).map { predicted[$0] } ?? 0
        }
        let contexts = controls.map { [1] + $0 + state }
        let log = try store.banditLog(workspaceID: workspace, bandit: request.bandit)
        let posterior = try BanditLog.posterior(
            log, dimension: contexts[0].count, priorVariance: 1, noiseVariance: request.noiseVariance)
        var rng = SeededGenerator(seed: request.seed &+ UInt64(log.count))
        let (_, disturbances) = fitted.calendar(horizon: request.horizon)
        let rails = Self.guardrails(request.guardrails, fitted: fitted)
        var reports: [Int: GuardrailReport] = [:]
        let decision = try ConstrainedThompson.choose(posterior: posterior, contexts: contexts, rng: &rng) { action in
            let plan = Array(repeating: controls[action], count: request.horizon)
            var simulationPlan = SimulationPlan(
                startMean: fitted.nextMean, startCovariance: fitted.nextCovariance, controls: plan,
                disturbances: disturbances, scenarios: request.scenarios, seed: request.seed,
                observationOffset: fitted.standardization.offsets,
                observationScale: fitted.standardization.scales)
            simulationPlan.observationRanges = fitted.kpis.map(KPISeries.possibleRange)
            let result = try Simulator.run(fitted.parameters, simulationPlan)
            let report = rails.evaluate(controls: plan, result: result)
            reports[action] = report
            return report.passes
        }
        guard let decision else {
            throw ModelError(.invalidInput, "every action breaks a guardrail over the next \(request.horizon) days")
        }
        let detail = ModelJSON.object([
            ("estimate_run_id", .string(run.runID)), ("sampled_reward", ModelJSON.number(decision.sampledReward)),
            ("rejected", .array(decision.rejected.map { JSONValue.number(String($0)) })),
        ])
        let id = try store.recordDecision(
            workspaceID: workspace, bandit: request.bandit, action: decision.action, context: contexts[decision.action],
            detail: detail.canonicalString())
        let rejected: [JSONValue] = decision.rejected.map { JSONValue.number(String($0)) }
        let chosen: [(String, JSONValue)] = fitted.controls.indices.map {
            (fitted.controls[$0], ModelJSON.number(controls[decision.action][$0]))
        }
        let rewards = log.filter { entry in
            if case .reward = entry { return true }
            return false
        }.count
        let fields: [(String, JSONValue)] = [
            ("kind", .string("bandit_decision")), ("decision_id", .string(id)), ("workspace_id", .string(workspace)),
            ("bandit", .string(request.bandit)), ("action", .number(String(decision.action))),
            ("controls", ModelJSON.object(chosen)), ("sampled_reward", ModelJSON.number(decision.sampledReward)),
            ("rejected_by_guardrails", .array(rejected)), ("rewards_so_far", .number(String(rewards))),
        ]
        return ModelJSON.object(fields)
    }
}

import ArgumentParser
import BTECLI
import BTEDomain
import BTEModels
import BTEOperations
import BTEStore
import BTEWorker
import Foundation
import Kafka

struct ModelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "KPI models: fit from the logs, simulate and forecast, list runs and segments.",
        discussion: """
            Reads the logs as role bte_models (--database-url: a member of it; bte_ingest is), records \
            every run in bte.model_configs, bte.estimate_runs and bte.simulation_runs, and publishes it \
            to bte.model-runs.v1.
            """,
        subcommands: [
            Fit.self, Simulate.self, Forecast.self, Recommend.self, Bandit.self, Experiment.self, Holdout.self,
            Runs.self,
            Segments.self,
        ])

    static let topic = "bte.model-runs.v1"

    /// Records the run's JSON on the models topic (key: the workspace), acknowledged.
    static func publish(_ record: JSONValue, workspace: String, options: ConnectionOptions) async throws {
        let brokers = try options.resolvedBrokers()
        let properties = try options.resolvedKafkaProperties()
        let topic = options.topicPrefix + Self.topic
        let bytes = record.canonicalBytes()
        do {
            try await onThread("models-publish") {
                let producer = try KafkaProducer(
                    configuration: KafkaProducerConfiguration(
                        client: KafkaClientConfiguration(brokers: brokers, properties: properties)))
                try producer.send([KafkaOutgoingMessage(topic: topic, key: Array(workspace.utf8), value: bytes)])
            }
        } catch {
            var id = "the run"
            if case .string(let runID)? = record["run_id"] ?? record["decision_id"] { id = "run \(runID)" }
            throw CLIError("\(id) is recorded in PostgreSQL but was not published to \(topic): \(error)")
        }
    }

    static func output(_ record: JSONValue, format: String, table: () -> String) {
        print(format == "json" ? record.prettyString().trimmingCharacters(in: .newlines) : table())
    }

    static func checkFormat(_ format: String) throws {
        guard format == "table" || format == "json" else { throw CLIError("--format is table or json") }
    }

    /// A JSON number, for reading records back into tables.
    static func number(_ v: JSONValue?) -> Double? {
        if case .number(let t)? = v { return Double(t) }
        return nil
    }

    static func numbers(_ v: JSONValue?) -> [Double] {
        if case .array(let items)? = v { return items.map { number($0) ?? .nan } }
        return []
    }

    static func fixed(_ x: Double?, _ digits: Int = 3) -> String {
        guard let x, x.isFinite else { return "-" }
        return String(format: "%.\(digits)f", x)
    }

    struct Fit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fit rc_retention or state_space to a workspace's daily KPIs.",
            discussion: """
                state_space: EM over the daily KPIs (daily_active_users, retention_d7, revenue_usd, \
                latency_p95_ms), controls from control.changed and the calendar's disturbances. rc_retention: \
                R(t) = R∞ + (R0 − R∞)·e^(−t/RC) over the cohorts first seen in the window. See docs/models.md.
                """)
        @OptionGroup var options: ConnectionOptions
        @Option(help: "The workspace (UUID).") var workspace: String
        @Option(help: "rc_retention or state_space.") var model: String
        @Option(help: "A segment of the workspace (bte models segments).") var segment: String?
        @Option(help: "Days fitted, ending yesterday (or --until): 365, 365d, 52w.") var since = "365d"
        @Option(help: "The last day fitted (YYYY-MM-DD, UTC); default yesterday.") var until: String?
        @Option(help: "State dimension (state_space).") var nx = 4
        @Option(help: "Disturbances (comma-separated): day_of_week, monthly_cycle, outage_flag.")
        var disturbances = "day_of_week,monthly_cycle"
        @Option(help: "Ridge λ relative to the regressors' scale (state_space).") var ridge = 1e-6
        @Option(help: "EM iterations at most (state_space).") var maxIterations = EMOptions().maxIterations
        @Option(help: "RLS forgetting factor of the online control effects, in (0, 1] (state_space).")
        var forgetting = 0.99
        @Option(help: "table or json.") var format = "table"
        @Flag(help: "Record the run without publishing it to bte.model-runs.v1.") var noPublish = false

        func run() async throws {
            try await guarded {
                try ModelsCommand.checkFormat(format)
                guard let workspaceID = canonicalUUID(workspace) else { throw CLIError("--workspace must be a UUID") }
                guard ModelRuns.models.contains(model) else {
                    throw CLIError("--model is rc_retention or state_space, not \(model)")
                }
                guard let days = ModelRequests.days(since), ModelRequests.sinceRange.contains(days) else {
                    throw CLIError("--since is 14 to 3,660 days (e.g. 90, 90d or 13w), not \(since)")
                }
                guard maxIterations > 0, ridge >= 0, ridge.isFinite else {
                    throw CLIError("--max-iterations must be positive and --ridge non-negative")
                }
                var toDay = ModelRequests.yesterday()
                if let until {
                    guard let day = ModelJSON.day(until) else { throw CLIError("--until must be YYYY-MM-DD") }
                    toDay = day
                }
                var request = ModelRuns.FitRequest(
                    workspaceID: workspaceID, model: model, segment: segment, toDay: toDay, days: days)
                request.stateDimension = nx
                request.disturbances = disturbances.split(separator: ",").map {
                    $0.trimmingCharacters(in: .whitespaces)
                }
                request.options.ridge = ridge
                request.options.maxIterations = maxIterations
                guard forgetting > 0, forgetting <= 1 else { throw CLIError("--forgetting is in (0, 1]") }
                request.forgetting = forgetting
                let url = try options.resolvedDatabaseURL()
                let fitRequest = request
                let recorded = try await onThread("models") {
                    try ModelRuns(store: try ModelStore(url: url)).fit(fitRequest)
                }
                if !noPublish {
                    try await ModelsCommand.publish(recorded.record, workspace: workspaceID, options: options)
                }
                ModelsCommand.output(recorded.record, format: format) { Self.table(recorded) }
            }
        }

        static func table(_ recorded: ModelRuns.Recorded) -> String {
            let r = recorded.record
            var lines = ["estimate run \(recorded.runID)"]
            if case .string(let type)? = r["model_type"] { lines[0] += " (\(type))" }
            if case .string(let from)? = r["from"], case .string(let to)? = r["to"] {
                lines.append("days \(from) … \(to)")
            }
            let params = r["params"]
            let fit = r["fit"]
            let number = ModelsCommand.number
            if let rc = number(params?["RC"]) {
                lines.append(
                    "R0 \(fixed(number(params?["R0"]), 4)) ± \(fixed(number(params?["R0_se"]), 4))   "
                        + "R∞ \(fixed(number(params?["R_inf"]), 4)) ± \(fixed(number(params?["R_inf_se"]), 4))   "
                        + "RC \(fixed(rc, 2)) ± \(fixed(number(params?["RC_se"]), 2)) days")
                if case .string(let reading)? = params?["reading"] { lines.append(reading) }
                lines.append("fit: RMSE \(fixed(number(fit?["rmse"]), 4)), R² \(fixed(number(fit?["r2"]), 4))")
            } else {
                lines.append(
                    "EM: \(NumberText.whole(fit?["iterations"])) iterations, "
                        + "\(fit?["converged"] == .bool(true) ? "converged" : "not converged"), "
                        + "log-likelihood \(fixed(number(fit?["log_likelihood"]), 2)), "
                        + "\(NumberText.whole(fit?["observed_days"])) observed days")
                if case .object(let rmse)? = fit?["rmse"] {
                    lines.append("kpi                 one-step RMSE        R²")
                    for (kpi, value) in rmse {
                        lines.append(
                            kpi.padding(toLength: 20, withPad: " ", startingAt: 0)
                                + fixed(number(value), 4).padding(toLength: 21, withPad: " ", startingAt: 0)
                                + fixed(number(fit?["r2"]?[kpi]), 4))
                    }
                }
            }
            return lines.joined(separator: "\n")
        }
    }

    struct SimulationOptions: ParsableArguments {
        @Option(help: "An estimate run (state_space).") var run: String
        @Option(help: "Days ahead.") var horizon = 28
        @Option(help: "Monte Carlo scenarios.") var scenarios = 1_000
        @Option(help: "Random seed: the same seed gives the same numbers.") var seed: UInt64 = 1
        @Option(help: "Guardrails JSON file (docs/models.md); default the seed's.") var guardrails: String?
        @Option(help: "table or json.") var format = "table"
        @Flag(help: "Record the run without publishing it to bte.model-runs.v1.") var noPublish = false
    }

    static func simulate(
        _ s: SimulationOptions, plan: [[String: Double]]?, options: ConnectionOptions
    ) async throws {
        try checkFormat(s.format)
        guard canonicalUUID(s.run) != nil else { throw CLIError("--run must be a run id (UUID)") }
        guard (1...366).contains(s.horizon) else { throw CLIError("--horizon is 1 to 366 days") }
        guard (1...100_000).contains(s.scenarios) else { throw CLIError("--scenarios is 1 to 100,000") }
        var request = ModelRuns.SimulateRequest(runID: s.run, horizon: s.horizon, plan: plan)
        request.scenarios = s.scenarios
        request.seed = s.seed
        if let path = s.guardrails { request.guardrails = try guardrailSettings(path) }
        let url = try options.resolvedDatabaseURL()
        let simulateRequest = request
        let recorded = try await onThread("models") {
            try ModelRuns(store: try ModelStore(url: url)).simulate(simulateRequest)
        }
        if !s.noPublish, case .string(let workspace)? = recorded.record["workspace_id"] {
            try await publish(recorded.record, workspace: workspace, options: options)
        }
        output(recorded.record, format: s.format) { simulationTable(recorded) }
    }

    static func readJSON(_ path: String, what: String) throws -> JSONValue {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError("can't read \(what) \(path)")
        }
        do {
            return try JSONParser.parse(Array(data))
        } catch {
            throw CLIError("\(what) \(path) is not JSON: \(error)")
        }
    }

    /// `{"controls": [{"rollout_pct": 0.5}, {}, {"promo_voltage": 0.2}]}` (day by day; a day
    /// keeps the day before's controls but for what it names) or `{"controls": {…}}` (from day 0).
    static func plan(_ path: String) throws -> [[String: Double]] {
        guard let controls = try readJSON(path, what: "controls file")["controls"] else {
            throw CLIError("the controls file needs \"controls\": an object or an array of day objects")
        }
        return try ModelRequests.plan(controls)
    }

    static func guardrailSettings(_ path: String) throws -> ModelRuns.GuardrailSettings {
        try ModelRequests.guardrails(try readJSON(path, what: "guardrails file"))
    }

    static func simulationTable(_ recorded: ModelRuns.Recorded) -> String {
        let r = recorded.record
        var kind = "simulation"
        if case .string(let k)? = r["kind"] { kind = k }
        var lines = ["\(kind) run \(recorded.runID)"]
        if case .array(let days)? = r["days"], case .string(let first)? = days.first,
            case .string(let last)? = days.last
        {
            lines.append("days \(first) … \(last), \(NumberText.whole(r["scenarios"])) scenarios")
        }
        lines.append("kpi                 day 1 mean [80 %]            last day mean [80 %]        [95 %]")
        if case .object(let kpis)? = r["kpis"] {
            for (kpi, t) in kpis {
                let mean = numbers(t["mean"])
                let p10 = numbers(t["p10"])
                let p90 = numbers(t["p90"])
                let lo = numbers(t["p2_5"])
                let hi = numbers(t["p97_5"])
                guard let m0 = mean.first, let mL = mean.last else { continue }
                lines.append(
                    kpi.padding(toLength: 20, withPad: " ", startingAt: 0)
                        + "\(fixed(m0, 2)) [\(fixed(p10.first, 2)), \(fixed(p90.first, 2))]".padding(
                            toLength: 29, withPad: " ", startingAt: 0)
                        + "\(fixed(mL, 2)) [\(fixed(p10.last, 2)), \(fixed(p90.last, 2))]".padding(
                            toLength: 28, withPad: " ", startingAt: 0)
                        + "[\(fixed(lo.last, 2)), \(fixed(hi.last, 2))]")
            }
        }
        if case .object(let kpis)? = r["kpis"] { lines += clampedLines(kpis) }
        lines += guardrailLines(r["guardrails"])
        return lines.joined(separator: "\n")
    }

    /// Where draws left a KPI's possible range (and were set to its nearest end), in words.
    static func clampedLines(_ kpis: [(key: String, value: JSONValue)]) -> [String] {
        kpis.compactMap { kpi, t in
            guard let share = number(t["clamped_share"]), share > 0 else { return nil }
            let range = KPISeries.possibleRange(of: kpi)
            let bounds = range.upperBound < .greatestFiniteMagnitude ? "[0, 1]" : "0 or more"
            return "kept in range: \(kpi) is \(bounds); "
                + "\(fixed(share * 100, 1)) % of scenario-days were set to the nearest end"
        }
    }

    /// The guardrails' verdict and each constraint's reading.
    static func guardrailLines(_ g: JSONValue?) -> [String] {
        var lines: [String] = []
        lines.append("guardrails: \(g?["passes"] == .bool(true) ? "pass" : "violated")")
        if case .array(let violations)? = g?["hard_violations"] {
            for v in violations.prefix(5) {
                if case .string(let c)? = v["constraint"] {
                    // Days count from 1 here; the record's from 0.
                    let day = NumberText.integer(v["day"]).map { $0 < Int.max ? String($0 + 1) : "-" } ?? "-"
                    lines.append(
                        "  hard: \(c) \(fixed(number(v["limit"]), 2)) broken on day \(day) "
                            + "(mean \(fixed(number(v["value"]), 2)))")
                }
            }
            if violations.count > 5 { lines.append("  … \(violations.count - 5) more") }
        }
        if case .array(let chance)? = g?["chance"] {
            for c in chance {
                if case .string(let kpi)? = c["kpi"] {
                    lines.append(
                        "  chance: P(\(kpi) ≥ \(fixed(number(c["threshold"]), 2))) = "
                            + "\(fixed(number(c["probability"]), 3)) "
                            + "[\(fixed(number(c["lower95"]), 3)), \(fixed(number(c["upper95"]), 3))] "
                            + "on its worst day, "
                            + "required \(fixed(number(c["required_probability"]), 2))")
                }
            }
        }
        if let total = number(g?["cost"]?["total"]) {
            lines.append(
                "  cost: reward \(fixed(number(g?["cost"]?["reward"]), 2)) "
                    + "− latency \(fixed(number(g?["cost"]?["latency_penalty"]), 2)) "
                    + "− budget \(fixed(number(g?["cost"]?["budget_penalty"]), 2)) = \(fixed(total, 2))")
        }
        return lines
    }

    struct Simulate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Simulate a fitted state_space run under a control plan: mean KPIs, 80/95 % bands, guardrails.")
        @OptionGroup var options: ConnectionOptions
        @OptionGroup var simulation: SimulationOptions
        @Option(help: "Control plan JSON file: {\"controls\": [{day 0}, {day 1}, …]}; default: hold the last controls.")
        var controls: String?

        func run() async throws {
            try await guarded {
                try await ModelsCommand.simulate(
                    simulation, plan: try controls.map(ModelsCommand.plan) ?? [], options: options)
            }
        }
    }

    struct Forecast: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Forecast a fitted state_space run with its last controls held: mean KPIs, bands, guardrails.")
        @OptionGroup var options: ConnectionOptions
        @OptionGroup var simulation: SimulationOptions

        func run() async throws {
            try await guarded { try await ModelsCommand.simulate(simulation, plan: nil, options: options) }
        }
    }

    struct Recommend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Recommend a control plan by MPC: track KPI targets within bounds, the latency cap and the budget.",
            discussion: """
                --constraints FILE: {"targets": {"daily_active_users": 900}, "kpi_weights": {…}, \
                "control_weights": {…}, "control_bounds": {"rollout_pct": [0, 0.8]}, "latency_max": 250, \
                "weekly_budget": 3000, "budget_coefficients": {"promo_voltage": 400}}. See docs/models.md.
                """)
        @OptionGroup var options: ConnectionOptions
        @Option(help: "An estimate run (state_space).") var run: String
        @Option(help: "Days ahead.") var horizon = 14
        @Option(help: "Constraints JSON file.") var constraints: String
        @Option(help: "Scenarios for the plan's bands.") var scenarios = 1_000
        @Option(help: "Random seed of the bands.") var seed: UInt64 = 1
        @Option(help: "table or json.") var format = "table"
        @Flag(help: "Record the run without publishing it to bte.model-runs.v1.") var noPublish = false

        func run() async throws {
            try await guarded {
                try ModelsCommand.checkFormat(format)
                guard canonicalUUID(run) != nil else { throw CLIError("--run must be a run id (UUID)") }
                guard (1...90).contains(horizon) else { throw CLIError("--horizon is 1 to 90 days") }
                guard (1...100_000).contains(scenarios) else { throw CLIError("--scenarios is 1 to 100,000") }
                var request = ModelRuns.RecommendRequest(
                    runID: run, horizon: horizon, settings: try Self.settings(constraints))
                request.scenarios = scenarios
                request.seed = seed
                let url = try options.resolvedDatabaseURL()
                let recommendRequest = request
                let recorded = try await onThread("models") {
                    try ModelRuns(store: try ModelStore(url: url)).recommend(recommendRequest)
                }
                if !noPublish, case .string(let workspace)? = recorded.record["workspace_id"] {
                    try await ModelsCommand.publish(recorded.record, workspace: workspace, options: options)
                }
                ModelsCommand.output(recorded.record, format: format) { Self.table(recorded) }
            }
        }

        static func settings(_ path: String) throws -> ModelRuns.RecommendSettings {
            try ModelRequests.constraints(try ModelsCommand.readJSON(path, what: "constraints file"))
        }

        static func table(_ recorded: ModelRuns.Recorded) -> String {
            let r = recorded.record
            let numbers = ModelsCommand.numbers
            var lines = ["recommendation run \(recorded.runID)"]
            if case .object(let plan)? = r["plan"] {
                lines.append("control             day 1     day 7     last day")
                for (name, values) in plan {
                    let v = numbers(values)
                    lines.append(
                        name.padding(toLength: 20, withPad: " ", startingAt: 0)
                            + fixed(v.first, 3).padding(toLength: 10, withPad: " ", startingAt: 0)
                            + fixed(v.count >= 7 ? v[6] : v.last, 3).padding(toLength: 10, withPad: " ", startingAt: 0)
                            + fixed(v.last, 3))
                }
            }
            if case .object(let ranges)? = r["control_ranges"] {
                let held = ranges.compactMap { name, range -> String? in
                    let bounds = numbers(range)
                    guard bounds.count == 2, bounds[0] == bounds[1] else { return nil }
                    return "\(name) \(fixed(bounds[0], 3))"
                }
                if !held.isEmpty {
                    lines.append("held where the fitted days kept them: \(held.joined(separator: ", "))")
                }
            }
            if case .object(let predicted)? = r["predicted"] {
                lines.append("kpi                 expected last day [80 %]")
                for (name, t) in predicted {
                    lines.append(
                        name.padding(toLength: 20, withPad: " ", startingAt: 0)
                            + "\(fixed(numbers(t["expected"]).last, 2)) [\(fixed(numbers(t["p10"]).last, 2)), "
                            + "\(fixed(numbers(t["p90"]).last, 2))]")
                }
                lines += ModelsCommand.clampedLines(predicted)
            }
            if case .array(let active)? = r["active_constraints"] {
                lines.append("active constraints: \(active.isEmpty ? "none" : "\(active.count)")")
                for case .string(let a) in active.prefix(6) { lines.append("  \(a)") }
            }
            lines += ModelsCommand.guardrailLines(r["guardrails"])
            // The time is in the record (solver.solve_ms); the table shows what a rerun repeats.
            lines.append("solved in \(NumberText.whole(r["solver"]?["iterations"])) iterations")
            return lines.joined(separator: "\n")
        }
    }

    struct Bandit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Constrained Thompson sampling over control actions, kept as an append-only log.",
            subcommands: [Choose.self, Reward.self])

        struct Choose: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Choose an action: the best sampled one whose simulated week keeps the guardrails.",
                discussion: """
                    --actions FILE: {"actions": [{"rollout_pct": 0.5}, {"promo_voltage": 0.3}, …]}, each the \
                    controls it sets. Prints the decision id to reward later.
                    """)
            @OptionGroup var options: ConnectionOptions
            @Option(help: "The workspace (UUID).") var workspace: String
            @Option(help: "The bandit's name (its log).") var bandit: String
            @Option(help: "A state_space estimate run (context and guardrails).") var run: String
            @Option(help: "Actions JSON file.") var actions: String
            @Option(help: "Days each action is simulated for the guardrails.") var horizon = 7
            @Option(help: "Random seed (combined with the log's length).") var seed: UInt64 = 1
            @Option(help: "Guardrails JSON file; default the seed's.") var guardrails: String?

            func run() async throws {
                try await guarded {
                    guard let workspaceID = canonicalUUID(workspace) else {
                        throw CLIError("--workspace must be a UUID")
                    }
                    guard canonicalUUID(run) != nil else { throw CLIError("--run must be a run id (UUID)") }
                    guard !bandit.isEmpty, bandit.count <= 200 else {
                        throw CLIError("--bandit is 1 to 200 characters")
                    }
                    guard (1...90).contains(horizon) else { throw CLIError("--horizon is 1 to 90 days") }
                    guard case .array(let items)? = try ModelsCommand.readJSON(actions, what: "actions file")["actions"]
                    else { throw CLIError("the actions file needs \"actions\": an array of objects") }
                    let parsed = try items.map { try ModelRequests.finiteObject($0, "action") }
                    var request = ModelRuns.BanditRequest(
                        workspaceID: workspaceID, bandit: bandit, runID: run, actions: parsed)
                    request.horizon = horizon
                    request.seed = seed
                    if let path = guardrails { request.guardrails = try ModelsCommand.guardrailSettings(path) }
                    let url = try options.resolvedDatabaseURL()
                    let banditRequest = request
                    let decision = try await onThread("models") {
                        try ModelRuns(store: try ModelStore(url: url)).banditChoose(banditRequest)
                    }
                    print(decision.prettyString().trimmingCharacters(in: .newlines))
                }
            }
        }

        struct Reward: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Record the reward that followed a decision.")
            @OptionGroup var options: ConnectionOptions
            @Option(help: "The decision's id.") var decision: String
            @Option(help: "The observed reward.") var reward: Double

            func run() async throws {
                try await guarded {
                    guard reward.isFinite else { throw CLIError("--reward must be a finite number") }
                    let url = try options.resolvedDatabaseURL()
                    let (id, value) = (decision, reward)
                    let owner = try await onThread("models") {
                        try ModelStore(url: url).recordReward(decisionID: id, reward: value)
                    }
                    print("reward \(value) recorded for decision \(id) of bandit \(owner.bandit)")
                }
            }
        }
    }

    struct Experiment: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Analyse an experiment from its experiment.assigned events: DR uplift, sequential tests, holdout.",
            discussion: """
                Each user's first assignment counts once their --window has ended by --until; users assigned \
                to both arms and users in the quarter's global holdout are left out (and counted). Uplift by \
                the doubly robust learner over the users' activity and revenue in the --lookback before \
                their assignment; looks in assignment order with --spending and an always-valid mSPRT \
                p-value. See docs/models.md.
                """)
        @OptionGroup var options: ConnectionOptions
        @Option(help: "The workspace (UUID).") var workspace: String
        @Option(help: "The experiment: the entity_id of its experiment.assigned events.") var experiment: String
        @Option(help: "active_days, revenue_usd or converted.") var metric = "revenue_usd"
        @Option(help: "Days after the assignment the metric covers.") var window = 14
        @Option(help: "Days before the assignment the features cover.") var lookback = 28
        @Option(help: "The last day read (YYYY-MM-DD, UTC); default yesterday.") var until: String?
        @Option(help: "Uplift per segment: none or device_type.") var segmentBy = "none"
        @Option(help: "Share of users in the global holdout, 0 to 0.5 (0: none).") var holdoutShare = 0.05
        @Option(help: "Type I error over all looks.") var alpha = 0.05
        @Option(help: "Alpha spending: obrien_fleming, pocock or linear.") var spending = "obrien_fleming"
        @Option(help: "Users the experiment plans to reach; default the users analysed.") var plannedUsers: Int?
        @Option(help: "Equally spaced looks over the users analysed.") var looks = 5
        @Option(help: "Seed of the cross-fitting folds.") var seed: UInt64 = 1
        @Option(help: "table or json.") var format = "table"

        func run() async throws {
            try await guarded {
                try ModelsCommand.checkFormat(format)
                guard let workspaceID = canonicalUUID(workspace) else { throw CLIError("--workspace must be a UUID") }
                guard let experimentID = canonicalUUID(experiment) else {
                    throw CLIError("--experiment must be a UUID (the events' entity_id)")
                }
                guard let spent = AlphaSpending(rawValue: spending) else {
                    throw CLIError("--spending is obrien_fleming, pocock or linear")
                }
                if let plannedUsers, plannedUsers < 1 { throw CLIError("--planned-users must be positive") }
                var request = ExperimentRequest(
                    workspaceID: workspaceID, experimentID: experimentID, toDay: ModelRequests.yesterday())
                if let until {
                    guard let day = ModelJSON.day(until) else { throw CLIError("--until must be YYYY-MM-DD") }
                    request.toDay = day
                }
                request.metric = metric
                request.windowDays = window
                request.lookbackDays = lookback
                request.segmentBy = segmentBy
                request.holdoutShare = holdoutShare
                request.alpha = alpha
                request.spending = spent
                request.plannedUsers = plannedUsers
                request.looks = looks
                request.seed = seed
                let url = try options.resolvedDatabaseURL()
                let settled = request
                let result = try await onThread("models") {
                    try ModelRuns(store: try ModelStore(url: url)).analyzeExperiment(settled)
                }
                ModelsCommand.output(result, format: format) { Self.table(result) }
            }
        }

        static func table(_ r: JSONValue) -> String {
            let number = ModelsCommand.number
            let units = r["units"]
            func count(_ key: String) -> String { NumberText.whole(units?[key]) }
            var lines = [
                "experiment \(r["experiment_id"].flatMap { if case .string(let s) = $0 { s } else { nil } } ?? "")",
                "users: \(count("assigned")) assigned, \(count("analysed")) analysed (\(count("treatment")) treatment, "
                    + "\(count("control")) control), \(count("pending")) pending, \(count("held_out")) held out, "
                    + "\(count("conflicting")) in both arms",
            ]
            let naive = r["naive"]
            lines.append(
                "naive difference   \(fixed(number(naive?["difference"]), 4)) "
                    + "[\(fixed(number(naive?["lower95"]), 4)), \(fixed(number(naive?["upper95"]), 4))]")
            let overall = r["uplift"]?["overall"]
            lines.append(
                "DR uplift          \(fixed(number(overall?["uplift"]), 4)) "
                    + "[\(fixed(number(overall?["lower95"]), 4)), \(fixed(number(overall?["upper95"]), 4))]")
            if case .array(let segments)? = r["uplift"]?["segments"], segments.count > 1 {
                for s in segments {
                    if case .string(let name)? = s["segment"] {
                        lines.append(
                            "  \(name.padding(toLength: 17, withPad: " ", startingAt: 0))"
                                + "\(fixed(number(s["uplift"]), 4)) [\(fixed(number(s["lower95"]), 4)), "
                                + "\(fixed(number(s["upper95"]), 4))]  \(NumberText.whole(s["units"])) users"
                        )
                    }
                }
            }
            let sequential = r["sequential"]
            if case .array(let looks)? = sequential?["looks"] {
                lines.append("look  users   z        p        α this look  mSPRT p")
                for look in looks {
                    lines.append(
                        "\(NumberText.whole(look["look"]))".padding(
                            toLength: 6, withPad: " ", startingAt: 0)
                            + "\(NumberText.whole(look["users"]))".padding(
                                toLength: 8, withPad: " ", startingAt: 0)
                            + fixed(number(look["z"]), 3).padding(toLength: 9, withPad: " ", startingAt: 0)
                            + fixed(number(look["p_value"]), 4).padding(toLength: 9, withPad: " ", startingAt: 0)
                            + fixed(number(look["alpha_this_look"]), 4).padding(
                                toLength: 13, withPad: " ", startingAt: 0)
                            + fixed(number(look["msprt_p_value"]), 4)
                            + (look["reject"] == .bool(true) ? "  reject" : ""))
                }
            }
            lines.append(
                "always-valid p (mSPRT) \(fixed(number(sequential?["msprt_p_value"]), 4)): "
                    + (sequential?["msprt_significant"] == .bool(true) ? "significant" : "not significant"))
            return lines.joined(separator: "\n")
        }
    }

    struct Holdout: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The global holdout: whether a user is in it, or how held-out users fared against the rest.",
            discussion: """
                A stable share of users (FNV-1a of workspace, quarter and user) that experiments leave out; \
                a new draw each quarter. Without --user: the quarter's active users, held out or not, \
                and the difference in active days and revenue per user between the two groups.
                """)
        @OptionGroup var options: ConnectionOptions
        @Option(help: "The workspace (UUID).") var workspace: String
        @Option(help: "Share of users held out, 0 to 0.5.") var share = 0.05
        @Option(help: "A day of the quarter (YYYY-MM-DD, UTC); default yesterday.") var day: String?
        @Option(help: "Only whether this user is held out.") var user: String?

        func run() async throws {
            try await guarded {
                guard let workspaceID = canonicalUUID(workspace) else { throw CLIError("--workspace must be a UUID") }
                var when = ModelRequests.yesterday()
                if let day {
                    guard let parsed = ModelJSON.day(day) else { throw CLIError("--day must be YYYY-MM-DD") }
                    when = parsed
                }
                let url = try options.resolvedDatabaseURL()
                // User ids are hashed as stored: a UUID in its lowercase form.
                let (fraction, who, at) = (share, user.map { canonicalUUID($0) ?? $0 }, when)
                let result = try await onThread("models") {
                    try ModelRuns(store: try ModelStore(url: url)).holdout(
                        workspaceID: workspaceID, share: fraction, day: at, user: who)
                }
                print(result.prettyString().trimmingCharacters(in: .newlines))
            }
        }
    }

    struct Runs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Estimate and simulation runs, newest first.")
        @OptionGroup var options: ConnectionOptions
        @Option(help: "Only this workspace's runs.") var workspace: String?
        @Option(help: "At most this many.") var limit = 20
        @Option(help: "table or json.") var format = "table"

        func run() async throws {
            try await guarded {
                try ModelsCommand.checkFormat(format)
                if let workspace, canonicalUUID(workspace) == nil { throw CLIError("--workspace must be a UUID") }
                guard (1...10_000).contains(limit) else { throw CLIError("--limit is 1 to 10,000") }
                let url = try options.resolvedDatabaseURL()
                let workspaceID = workspace.flatMap(canonicalUUID)
                let count = limit
                let runs = try await onThread("models") {
                    try ModelStore(url: url).runs(workspaceID: workspaceID, limit: count)
                }
                let json = JSONValue.array(
                    runs.map { r in
                        ModelJSON.object([
                            ("kind", .string(r.kind)), ("run_id", .string(r.runID)),
                            ("workspace_id", .string(r.workspaceID)),
                            ("model_type", .string(r.modelType)), ("summary", .string(r.summary)),
                            ("created_at", .string(r.createdAt)),
                        ])
                    })
                ModelsCommand.output(json, format: format) {
                    (["kind        run_id                                model_type    summary"]
                        + runs.map {
                            $0.kind.padding(toLength: 12, withPad: " ", startingAt: 0) + $0.runID + "  "
                                + $0.modelType.padding(toLength: 14, withPad: " ", startingAt: 0) + $0.summary
                        }).joined(separator: "\n")
                }
            }
        }
    }

    struct Segments: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Segments: named filters over a workspace's users that restrict the KPIs.",
            subcommands: [Create.self, List.self])

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Create a segment: --filter '{\"user_ids\": […]}' or '{\"device_types\": [\"ios\"]}'.")
            @OptionGroup var options: ConnectionOptions
            @Option(help: "The workspace (UUID).") var workspace: String
            @Option(help: "The segment's name.") var name: String
            @Option(help: "JSON filter: user_ids and/or device_types.") var filter: String

            func run() async throws {
                try await guarded {
                    guard let workspaceID = canonicalUUID(workspace) else {
                        throw CLIError("--workspace must be a UUID")
                    }
                    guard !name.isEmpty, name.count <= 200 else { throw CLIError("--name is 1 to 200 characters") }
                    let parsed = try ModelStore.SegmentFilter(json: filter)
                    let url = try options.resolvedDatabaseURL()
                    let segmentName = name
                    let id = try await onThread("models") {
                        try ModelStore(url: url).createSegment(
                            workspaceID: workspaceID, name: segmentName, filter: parsed)
                    }
                    print("segment \(segmentName) (\(id)): \(parsed.json)")
                }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "A workspace's segments.")
            @OptionGroup var options: ConnectionOptions
            @Option(help: "The workspace (UUID).") var workspace: String

            func run() async throws {
                try await guarded {
                    guard let workspaceID = canonicalUUID(workspace) else {
                        throw CLIError("--workspace must be a UUID")
                    }
                    let url = try options.resolvedDatabaseURL()
                    let segments = try await onThread("models") {
                        try ModelStore(url: url).segments(workspaceID: workspaceID)
                    }
                    for s in segments { print("\(s.name)  \(s.filter)  \(s.createdAt)") }
                }
            }
        }
    }
}

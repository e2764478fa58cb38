import ArgumentParser
import BTECLI
import BTEDomain
import BTEModelRuns
import BTEModels
import BTEOperations
import BTEStore
import BTEWorker
import Foundation
import Kafka

extension ModelsCommand {
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
}

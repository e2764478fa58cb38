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
}

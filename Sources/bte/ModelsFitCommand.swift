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
}

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
}

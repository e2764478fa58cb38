import ArgumentParser
import BTECLI
import BTECompute
import BTEDomain
import BTEOperations
import BTEStore
import BTEWorker
import Foundation

struct InsightsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "insights", abstract: "Insight quality from users' feedback.",
        subcommands: [Stats.self, Deliveries.self])

    struct Deliveries: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Per insight type: in-context deliveries, suppressions by reason, and what users did with them.",
            discussion: """
                Over the delivery decisions since --since: impression rate = impressions ÷ delivered, click \
                rate = clicks ÷ impressions, action rate = acted ÷ delivered, positive rate = useful ÷ \
                (useful + not_useful), dismiss rate = dismissed ÷ impressions (fatigue); wow moments per \
                user-week = deliveries marked useful or acted ÷ users delivered to ÷ weeks (seed 003's \
                target is 3). Feedback counts when it names its delivery_id.
                """)
        @Option(help: "libpq URI of a reader (env BTE_READER_DATABASE_URL).") var readerDatabaseURL: String?
        @Option(help: "90m, 36h, 7d, 2w, P7D or an RFC 3339 time with its zone.") var since = "7d"
        @Option(help: "Only this workspace's deliveries.") var workspace: String?

        func run() async throws {
            try await guarded {
                let nowMilliseconds = Int64(Date().timeIntervalSince1970 * 1000)
                let from = try parseSince(since, nowMilliseconds: nowMilliseconds)
                if let workspace, canonicalUUID(workspace) == nil { throw CLIError("--workspace must be a UUID") }
                let url = try Setting.reader.resolve(readerDatabaseURL)
                let workspaceID = workspace.flatMap(canonicalUUID)
                let (stats, suppressions, users) = try await onThread("insights") {
                    try ProjectionReader(url: url).deliveryStats(
                        since: from, workspaceID: workspaceID, types: InsightType.allCases.map(\.rawValue))
                }
                // At least a day, so a short window does not inflate the weekly rate.
                let days = max(1, Double(nowMilliseconds * 1000 - from.microseconds) / 86_400_000_000)
                print(Self.json(stats, suppressions: suppressions, users: users, weeks: days / 7, since: from))
            }
        }

        static func json(
            _ stats: [ProjectionReader.DeliveryStats], suppressions: [(reason: String, count: Int)], users: Int,
            weeks: Double, since: Timestamp
        ) -> String {
            func ratio(_ a: Int, _ b: Int) -> String { b == 0 ? "null" : String(format: "%.4f", Double(a) / Double(b)) }
            let items = stats.map { s in
                "{\"insight_type\":\(JSONValue.quoted(s.insightType)),\"delivered\":\(s.delivered),"
                    + "\"control\":\(s.control),\"suppressed\":\(s.suppressed),\"impressions\":\(s.impressions),"
                    + "\"clicks\":\(s.clicks),\"acted\":\(s.acted),\"useful\":\(s.useful),"
                    + "\"not_useful\":\(s.notUseful),"
                    + "\"dismissed\":\(s.dismissed),\"impression_rate\":\(ratio(s.impressions, s.delivered)),"
                    + "\"click_rate\":\(ratio(s.clicks, s.impressions)),\"action_rate\":\(ratio(s.acted, s.delivered)),"
                    + "\"positive_rate\":\(ratio(s.useful, s.useful + s.notUseful)),"
                    + "\"dismiss_rate\":\(ratio(s.dismissed, s.impressions))}"
            }
            let wow = stats.reduce(0) { $0 + $1.wow }
            let perUserWeek =
                users == 0 || weeks <= 0 ? "null" : String(format: "%.4f", Double(wow) / Double(users) / weeks)
            let reasons = suppressions.map { "{\"reason\":\(JSONValue.quoted($0.reason)),\"count\":\($0.count)}" }
            return "{\"since\":\(JSONValue.quoted(since.rfc3339)),\"users\":\(users),\"wow_moments\":\(wow),"
                + "\"wow_moments_per_user_week\":\(perUserWeek),\"insight_types\":[\(items.joined(separator: ","))],"
                + "\"suppressions\":[\(reasons.joined(separator: ","))]}"
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Per insight type: delivered, acted on, positive-feedback rate and action rate.",
            discussion: """
                Over the insights stored with as_of at or after --since: the positive-feedback rate is \
                useful ÷ (useful + not_useful) over each user's latest opinion of each insight; the action \
                rate is the insights at least one user marked acted ÷ the insights delivered.
                """)
        @Option(help: "libpq URI of a reader (env BTE_READER_DATABASE_URL).") var readerDatabaseURL: String?
        @Option(help: "90m, 36h, 7d, 2w, P7D or an RFC 3339 time with its zone.") var since = "30d"
        @Option(help: "Only this workspace's insights.") var workspace: String?
        @Option(help: "table or json.") var format = "table"

        func run() async throws {
            try await guarded {
                guard format == "table" || format == "json" else { throw CLIError("--format is table or json") }
                let from = try parseSince(since, nowMilliseconds: Int64(Date().timeIntervalSince1970 * 1000))
                if let workspace, canonicalUUID(workspace) == nil { throw CLIError("--workspace must be a UUID") }
                let url = try Setting.reader.resolve(readerDatabaseURL)
                let workspaceID = workspace.flatMap(canonicalUUID)
                let stats = try await onThread("insights") {
                    try ProjectionReader(url: url).feedbackStats(
                        since: from, workspaceID: workspaceID, types: InsightType.allCases.map(\.rawValue))
                }
                print(format == "json" ? Self.json(stats, since: from) : Self.table(stats, since: from))
            }
        }

        static func rate(_ value: Double?) -> String { value.map { String(format: "%.4f", $0) } ?? "null" }

        static func table(_ stats: [ProjectionReader.FeedbackStats], since: Timestamp) -> String {
            func percent(_ value: Double?) -> String { value.map { String(format: "%.1f%%", $0 * 100) } ?? "-" }
            var lines = ["insights since \(since.rfc3339)"]
            let header = ["insight_type", "delivered", "acted", "useful", "not_useful", "positive_rate", "action_rate"]
            var rows = [header]
            for s in stats {
                rows.append([
                    s.insightType, String(s.delivered), String(s.acted), String(s.useful), String(s.notUseful),
                    percent(s.positiveFeedbackRate), percent(s.actionRate),
                ])
            }
            let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
            for row in rows {
                lines.append(
                    row.enumerated().map {
                        $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0)
                    }
                    .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
            }
            return lines.joined(separator: "\n")
        }

        static func json(_ stats: [ProjectionReader.FeedbackStats], since: Timestamp) -> String {
            let items = stats.map { s in
                "{\"insight_type\":\(JSONValue.quoted(s.insightType)),\"delivered\":\(s.delivered),"
                    + "\"acted\":\(s.acted),\"useful\":\(s.useful),\"not_useful\":\(s.notUseful),"
                    + "\"positive_feedback_rate\":\(rate(s.positiveFeedbackRate)),"
                    + "\"action_rate\":\(rate(s.actionRate))}"
            }
            return "{\"since\":\(JSONValue.quoted(since.rfc3339)),\"insight_types\":[\(items.joined(separator: ","))]}"
        }
    }
}

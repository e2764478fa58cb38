import ArgumentParser
import BTECLI
import BTECompute
import BTEStore
import BTEWorker
import Foundation

struct ThresholdsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "thresholds", abstract: "Show or change the thresholds (an audited, append-only log).",
        subcommands: [List.self, Set.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Current thresholds and their version (read-only).")
        @Option(help: "libpq URI of a reader (env BTE_READER_DATABASE_URL).") var readerDatabaseURL: String?

        func run() async throws {
            try await guarded {
                let url = try Setting.reader.resolve(readerDatabaseURL)
                let (version, entries) = try await onThread("thresholds") {
                    try ThresholdStore(url: url).current()
                }
                print("thresholds_version \(version)")
                for entry in entries {
                    print(
                        "\(entry.key)\t\(formatNumber(entry.value))\t"
                            + "by \(entry.changedBy) at \(entry.changedAt): \(entry.reason)"
                    )
                }
            }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Append a change (needs a bte_admin member's database URL).")
        @Argument(help: "Threshold key, e.g. hesitation.expected_views.") var key: String
        @Argument(help: "New value (positive).") var value: Double
        @Option(help: "Who changes it (an admin id).") var by: String
        @Option(help: "Why.") var reason: String
        @Option(help: "libpq URI of an admin (env BTE_DATABASE_URL).") var databaseURL: String?

        func run() async throws {
            try await guarded {
                let url = try Setting.database.resolve(databaseURL)
                let (key, value, by, reason) = (key, value, by, reason)
                let version = try await onThread("thresholds") {
                    try ThresholdStore(url: url)
                        .set(key: key, value: value, by: by, reason: reason)
                }
                print("\(key) = \(formatNumber(value)) (thresholds_version \(version))")
            }
        }
    }
}

import ArgumentParser
import BTECLI
import BTECompute
import BTEDomain
import BTEStore
import BTEWorker
import Foundation

struct ThresholdsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "thresholds", abstract: "Show or change the thresholds (an audited, append-only log).",
        subcommands: [List.self, Set.self, Unset.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Current thresholds and their version (read-only).")
        @Option(help: "libpq URI of a reader (env BTE_READER_DATABASE_URL).") var readerDatabaseURL: String?
        @Option(help: "Only this workspace's own values (by default every workspace's are listed).")
        var workspace: String?

        func run() async throws {
            try await guarded {
                let url = try Setting.reader.resolve(readerDatabaseURL)
                if let workspace, canonicalUUID(workspace) == nil {
                    throw CLIError("--workspace is a workspace id (a UUID)")
                }
                let workspace = workspace.flatMap(canonicalUUID)
                let (current, overrides) = try await onThread("thresholds") {
                    let store = try ThresholdStore(url: url)
                    return (try store.current(), try store.overrides(workspaceID: workspace))
                }
                print("thresholds_version \(current.version)")
                func line(_ entry: ThresholdEntry, _ prefix: String = "") -> String {
                    "\(prefix)\(entry.key)\t\(formatNumber(entry.value))\t"
                        + "by \(entry.changedBy) at \(entry.changedAt): \(entry.reason)"
                }
                if workspace == nil {
                    for entry in current.entries { print(line(entry)) }
                }
                for (id, entries) in overrides.sorted(by: { $0.key < $1.key }) {
                    for entry in entries { print(line(entry, "workspace \(id)\t")) }
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
        @Option(help: "One workspace's own value (delivery.* thresholds only); by default every workspace's.")
        var workspace: String?
        @Option(help: "libpq URI of an admin (env BTE_DATABASE_URL).") var databaseURL: String?

        func run() async throws {
            try await guarded {
                let url = try Setting.database.resolve(databaseURL)
                let (key, value, workspace, by, reason) = (key, value, workspace, by, reason)
                let version = try await onThread("thresholds") {
                    try ThresholdStore(url: url)
                        .set(key: key, value: value, workspaceID: workspace, by: by, reason: reason)
                }
                let scope = workspace.map { " for workspace \($0.lowercased())" } ?? ""
                print("\(key) = \(formatNumber(value))\(scope) (thresholds_version \(version))")
            }
        }
    }

    struct Unset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "End a workspace's own value: it has the shared one again (appended like any change).")
        @Argument(help: "Threshold key, e.g. delivery.max_per_day.") var key: String
        @Option(help: "The workspace.") var workspace: String
        @Option(help: "Who changes it (an admin id).") var by: String
        @Option(help: "Why.") var reason: String
        @Option(help: "libpq URI of an admin (env BTE_DATABASE_URL).") var databaseURL: String?

        func run() async throws {
            try await guarded {
                let url = try Setting.database.resolve(databaseURL)
                let (key, workspace, by, reason) = (key, workspace, by, reason)
                let version = try await onThread("thresholds") {
                    try ThresholdStore(url: url).unset(key: key, workspaceID: workspace, by: by, reason: reason)
                }
                print(
                    "\(key) for workspace \(workspace.lowercased()): the shared value (thresholds_version \(version))")
            }
        }
    }
}

import ArgumentParser
import BTECLI
import BTEOperations
import BTEWorker
import Foundation

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Move a consumer group's offsets to re-process (or skip) messages; a dry run unless --execute.",
        discussion: """
            GROUP is bte-ingest (offsets in PostgreSQL: re-ingested messages are duplicates, stored once), \
            bte-projector (offsets in Kafka: re-published outputs are byte-identical) or another group name. \
            Give exactly one target. --execute refuses while the group has live members.
            """)
    @Argument(help: "The consumer group.") var group: String
    @Flag(help: "Each partition's first offset.") var toEarliest = false
    @Flag(help: "Each partition's end (skip everything not yet processed).") var toLatest = false
    @Option(help: "This offset in every partition (kept within the partition's bounds).") var toOffset: Int64?
    @Option(help: "The first message at or after this instant: RFC 3339 with Z or an explicit offset.")
    var toDatetime: String?
    @Option(help: "The first message at or after now minus this: 90m, 36h, 7d, 2w, P7D, PT36H.")
    var byDuration: String?
    @Option(parsing: .unconditional, help: "Move each partition by ±N messages.") var shiftBy: String?
    @Option(help: "Only this topic (NAME or NAME:P,P…); repeatable. Default: the topics the group consumes.")
    var topic: [String] = []
    @Flag(help: "Apply the plan (default: print it and change nothing).") var execute = false
    @Option(help: "Who asks (recorded with the replay; default $USER; --execute needs one).") var by: String?
    @Option(help: "Why (recorded with the replay; --execute needs it).") var why: String?
    @Option(help: "table or json.") var format = "table"
    @OptionGroup var options: ConnectionOptions

    func target() throws -> ReplayTarget {
        var targets: [ReplayTarget] = []
        if toEarliest { targets.append(.earliest) }
        if toLatest { targets.append(.latest) }
        if let toOffset { targets.append(.offset(toOffset)) }
        if let toDatetime { targets.append(try .datetime(toDatetime)) }
        if let byDuration { targets.append(try .duration(byDuration)) }
        if let shiftBy {
            let digits = shiftBy.hasPrefix("+") ? String(shiftBy.dropFirst()) : shiftBy
            guard let by = Int64(digits) else {
                throw CLIError("--shift-by takes ±N, like -500 or +20; not \(shiftBy)")
            }
            targets.append(.shift(by))
        }
        guard targets.count == 1 else {
            throw CLIError(
                "give exactly one target: --to-earliest, --to-latest, --to-offset N, --to-datetime T, "
                    + "--by-duration D or --shift-by ±N")
        }
        return targets[0]
    }

    func run() async throws {
        try await guarded {
            guard format == "table" || format == "json" else { throw CLIError("--format is table or json") }
            var configuration = Replay.Configuration(
                brokers: try options.resolvedBrokers(), databaseURL: try options.resolvedDatabaseURL(), group: group,
                target: try target())
            configuration.kafkaProperties = try options.resolvedKafkaProperties()
            configuration.topicPrefix = options.topicPrefix
            configuration.topics = topic.isEmpty ? nil : try topic.map { try TopicSelection(parsing: $0) }
            let by = (self.by ?? ProcessInfo.processInfo.environment["USER"] ?? "").trimmingCharacters(in: .whitespaces)
            let why = (self.why ?? "").trimmingCharacters(in: .whitespaces)
            // bte.replay_log is permanent: an executed replay says who asked and why.
            if execute {
                guard !by.isEmpty else {
                    throw CLIError("--execute needs --by NAME (or $USER): it is kept in bte.replay_log")
                }
                guard !why.isEmpty else { throw CLIError("--execute needs --why TEXT: it is kept in bte.replay_log") }
            }
            configuration.by = by.isEmpty ? "unknown" : by
            configuration.why = why
            let replay = Replay(configuration: configuration)
            let execute = self.execute
            let plan = try await onThread("replay") { execute ? try replay.execute() : try replay.plan() }
            print(format == "json" ? plan.json() : plan.table())
        }
    }
}

import ArgumentParser
import BTECLI
import BTECompute
import BTEDomain
import BTEOperations
import BTEProjection
import BTEWorker
import Foundation

struct SweepCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract:
            "Recompute and publish the signals of every workspace active in the 30 days before --as-of (read-only); "
            + "with --every, at every tick of a schedule.")
    @Option(help: "Kafka bootstrap servers (env BTE_KAFKA_BROKERS).") var brokers: String?
    @Option(help: "libpq URI of a reader (env BTE_READER_DATABASE_URL).") var readerDatabaseURL: String?
    @Option(help: "Event time to compute as of (RFC 3339).") var asOf: String?
    @Option(
        help: """
            Sweep at every tick of this interval (15m, 1h, 1d; a minute to 366 days; ticks are multiples of it \
            since the epoch, as_of = the tick), as a service until SIGTERM.
            """)
    var every: String?
    @Flag(help: "With --every: sweep the latest tick once and exit (for a CronJob on the same schedule).")
    var once = false
    @Option(help: "Prefix for every topic name; empty in production.") var topicPrefix = ""
    @Option(help: "Log level (env BTE_LOG_LEVEL).") var logLevel: String?
    @Option(help: "Log format: text, or json for one JSON object a line (env BTE_LOG_FORMAT).") var logFormat: String?
    @Option(help: "Print the signals of this many workspaces.") var show = 0
    @OptionGroup var kafka: KafkaOptions
    @OptionGroup var observability: ObservabilityOptions

    func run() async throws {
        try await guarded {
            // A flag's fault: a usage error, as the command's other checks.
            let interval = try every.map { text in
                do { return try sweepInterval(text) } catch let error as OperationsError {
                    throw CLIError(error.message)
                }
            }
            guard (asOf == nil) != (interval == nil) else {
                throw CLIError("give --as-of T for one sweep, or --every INTERVAL for a schedule (not both)")
            }
            guard !once || interval != nil else { throw CLIError("--once goes with --every") }
            ProcessMetrics.bootstrap()
            let brokers = try Setting.brokers.resolve(brokers)
            let reader = try Setting.reader.resolve(readerDatabaseURL)
            var options = ConnectionOptions()
            options.logLevel = logLevel
            options.logFormat = logFormat
            let logger = try options.makeLogger("bte.sweep")
            var sweep = Sweep(brokers: brokers, readerURL: reader, logger: logger)
            sweep.topicPrefix = topicPrefix
            sweep.kafkaProperties = try kafka.resolve()
            if let interval {
                var schedule = ScheduledSweep(sweep: sweep, everyMilliseconds: interval)
                if once {
                    let job = schedule
                    let (tick, result) = try await onThread("sweep") { try job.runLatestTick() }
                    print(
                        "sweep as of \(tick): \(result.workspaces) workspaces, \(result.signals) signals, "
                            + "\(result.insights.count) insights, \(result.vectors.count) behavioral vectors")
                    return
                }
                let readiness = Readiness()
                schedule.readiness = readiness
                let job = schedule
                let service = WorkerService("sweep") { stop in job.run(stop: stop) }
                try await runServices([service], readiness: readiness, observability: observability, logger: logger)
                return
            }
            guard let asOf, let instant = Timestamp(rfc3339: asOf) else {
                throw CLIError("--as-of is not an RFC 3339 timestamp with a zone: \(asOf ?? "")")
            }
            let job = sweep
            let result = try await onThread("sweep") { try job.run(asOf: instant) }
            print(
                "sweep as of \(instant): \(result.workspaces) workspaces, "
                    + "\(result.signals) signals to \(sweep.signalsTopic), "
                    + "\(result.insights.count) insights to \(sweep.insightsTopic), "
                    + "\(result.vectors.count) behavioral vectors (thresholds_version \(result.thresholdsVersion))"
            )
            for message in result.vectors.prefix(show) {
                guard
                    let vector = (try? JSONSerialization.jsonObject(with: Data(message.value ?? []))) as? [String: Any]
                else { continue }
                let engagement = (vector["engagement_metrics"] as? [String: Any])?["engagement_score"] as? Double ?? 0
                let preferences = vector["user_preferences"] as? [String: Any] ?? [:]
                print(
                    "  user \(vector["user_id"] as? String ?? "?"): \(vector["expertise_level"] as? String ?? "?"), "
                        + "\(vector["total_interactions"] as? Int ?? 0) interactions in "
                        + "\(vector["total_sessions"] as? Int ?? 0) sessions, "
                        + "engagement \(String(format: "%.2f", engagement)), "
                        + "layout \(preferences["layout_preference"] as? String ?? "?"), "
                        + "density \(preferences["data_density"] as? String ?? "?")"
                )
            }
            let byWorkspace = Dictionary(grouping: result.records, by: \.workspaceID)
            // Show workspaces with insights first: they make the better example.
            let withInsights = Set(result.insights.map(\.workspaceID))
            let order = byWorkspace.keys.sorted {
                (withInsights.contains($0) ? 0 : 1, $0) < (withInsights.contains($1) ? 0 : 1, $1)
            }
            for workspace in order.prefix(show) {
                print("  workspace \(workspace)")
                for insight in result.insights where insight.workspaceID == workspace {
                    print("    [\(insight.insight.priority.rawValue)] \(insight.insight.message)")
                }
                for record in byWorkspace[workspace] ?? [] {
                    let value = NumberText.signal(record.signal.value)
                    let typeColumn = record.signal.type.rawValue.padding(toLength: 26, withPad: " ", startingAt: 0)
                    print("    \(typeColumn) \(value)\(record.signal.label.map { " (\($0))" } ?? "")")
                }
            }
        }
    }
}

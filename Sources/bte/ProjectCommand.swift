import ArgumentParser
import BTECLI
import BTEDomain
import BTEProjection
import BTEWorker
import Foundation

struct ProjectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "project",
        abstract:
            "Consume the business and interaction topics (group bte-projector) "
            + "and publish signals and behavioral vectors for what a batch touches (read-only)."
    )
    @Option(help: "Kafka bootstrap servers (env BTE_KAFKA_BROKERS).") var brokers: String?
    @Option(help: "libpq URI of a reader (env BTE_READER_DATABASE_URL).") var readerDatabaseURL: String?
    @Option(help: "Prefix for every topic name; empty in production.") var topicPrefix = ""
    @Option(help: "Consumer group.") var group = "bte-projector"
    @Option(help: "The ingest group whose stored offsets mark what is durable.") var ingestGroup = "bte-ingest"
    @Option(help: "Consumer group session timeout in milliseconds (env BTE_KAFKA_SESSION_TIMEOUT_MS).")
    var sessionTimeoutMs: Int?
    @Option(help: "Largest batch, in messages.") var maxBatchMessages = 5_000
    @Option(help: "Largest accepted message in bytes: the same as bte ingest's, so nothing stored is skipped.")
    var maxMessageBytes = ValidationLimits().maxMessageBytes
    @Option(help: "Static group membership id, unique per member (env BTE_INSTANCE_ID).") var instanceID: String?
    @Option(help: "Workspaces whose partial aggregates are kept in memory (least recently used beyond it are rebuilt).")
    var maxStateWorkspaces = 10_000
    @Option(help: "Users whose interactions of the window are kept in memory (as --max-state-workspaces).")
    var maxStateUsers = 200_000
    @Flag(help: "Exit 0 once every assigned partition is caught up.") var untilIdle = false
    @Flag(
        help: "Carry each input message's W3C traceparent header to the records it causes (env BTE_TRACE_CONTEXT=1).")
    var traceContext = false
    @Option(help: "Log level (env BTE_LOG_LEVEL).") var logLevel: String?
    @Option(help: "Log format: text, or json for one JSON object a line (env BTE_LOG_FORMAT).") var logFormat: String?
    @OptionGroup var kafka: KafkaOptions
    @OptionGroup var observability: ObservabilityOptions

    func run() async throws {
        try await guarded {
            ProcessMetrics.bootstrap()
            let brokers = try Setting.brokers.resolve(brokers)
            let reader = try Setting.reader.resolve(readerDatabaseURL)
            var configuration = Projector.Configuration(brokers: brokers, readerURL: reader)
            configuration.topicPrefix = topicPrefix
            configuration.group = group
            configuration.kafkaProperties = try kafka.resolve()
            configuration.ingestGroup = ingestGroup
            configuration.untilIdle = untilIdle
            guard maxBatchMessages > 0 else { throw CLIError("--max-batch-messages must be at least 1") }
            configuration.maxBatchMessages = maxBatchMessages
            guard maxStateWorkspaces > 0, maxStateUsers > 0 else {
                throw CLIError("--max-state-workspaces and --max-state-users must be at least 1")
            }
            configuration.maxStateWorkspaces = maxStateWorkspaces
            configuration.maxStateUsers = maxStateUsers
            configuration.traceContext =
                traceContext
                || ["1", "true", "on"].contains(ProcessInfo.processInfo.environment["BTE_TRACE_CONTEXT"] ?? "")
            configuration.limits.maxMessageBytes = maxMessageBytes
            configuration.instanceID = Setting.text(instanceID, variable: "BTE_INSTANCE_ID")
            configuration.sessionTimeoutMilliseconds = try Setting.integer(
                sessionTimeoutMs, variable: "BTE_KAFKA_SESSION_TIMEOUT_MS", default: 45_000)
            let logger = try LoggingBootstrap.logger("bte.project", level: logLevel, format: logFormat)
            let readiness = Readiness()
            configuration.readiness = readiness
            let config = configuration
            let project = WorkerService("project") { stop in
                try Projector(configuration: config, logger: logger).run(stop: stop)
            } finished: { summary in
                print(
                    "projected \(summary.consumed) messages in \(summary.batches) batches: "
                        + "\(summary.signals) signals for \(summary.workspaces) workspace updates, "
                        + "\(summary.vectors) behavioral vectors for \(summary.users) user updates, "
                        + "\(summary.insights) insights"
                )
            }
            try await runServices([project], readiness: readiness, observability: observability, logger: logger)
        }
    }
}

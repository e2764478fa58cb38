import ArgumentParser
import BTECLI
import BTEDomain
import BTEIngest
import BTEWorker
import Foundation

struct Ingest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Consume the input topics and append them, exactly once, to the PostgreSQL logs.")
    @OptionGroup var options: ConnectionOptions
    @Flag(help: "Exit 0 once every assigned partition is caught up.") var untilIdle = false
    @Option(help: "Consumer group.") var group = "bte-ingest"
    @Option(help: "Largest batch in messages.") var batchSize = 10_000
    @Option(help: "Largest batch in bytes of keys and values.") var batchBytes = IngestConfiguration
        .defaultMaxBatchBytes
    @Option(help: "Static group membership id, unique per member (env BTE_INSTANCE_ID).") var instanceID: String?
    @Option(help: "Parallel writers (PostgreSQL connections); partitions are spread over them.") var writers = 2
    @Option(help: "Batches each writer may have queued.") var writerQueue = 4
    @Option(help: "Longest wait for a batch to fill, in milliseconds.") var batchWaitMs = 250
    @Option(help: "Milliseconds after its first message when a batch is written if no fetched message is waiting.")
    var lingerMs = 5
    @Option(help: "Consumer group session timeout in milliseconds (env BTE_KAFKA_SESSION_TIMEOUT_MS).")
    var sessionTimeoutMs: Int?
    @Option(help: "Largest accepted message in bytes.") var maxMessageBytes = ValidationLimits().maxMessageBytes
    @Flag(help: "Print a summary when done.") var summary = false
    @OptionGroup var observability: ObservabilityOptions

    func run() async throws {
        try await guarded {
            ProcessMetrics.bootstrap()
            var configuration = IngestConfiguration(
                brokers: try options.resolvedBrokers(), databaseURL: try options.resolvedDatabaseURL())
            configuration.group = group
            configuration.kafkaProperties = try options.resolvedKafkaProperties()
            configuration.topicPrefix = options.topicPrefix
            configuration.maxBatchMessages = batchSize
            guard batchBytes > 0 else { throw CLIError("--batch-bytes must be positive") }
            configuration.maxBatchBytes = batchBytes
            configuration.instanceID = Setting.text(instanceID, variable: "BTE_INSTANCE_ID")
            configuration.writers = writers
            guard writerQueue > 0 else { throw CLIError("--writer-queue must be positive") }
            configuration.batchesQueuedPerWriter = writerQueue
            // An hour at most: the worker turns these into nanoseconds of a deadline.
            guard (0...3_600_000).contains(batchWaitMs) else { throw CLIError("--batch-wait-ms is 0 to 3,600,000") }
            configuration.maxBatchWaitMilliseconds = batchWaitMs
            guard (0...3_600_000).contains(lingerMs) else { throw CLIError("--linger-ms is 0 to 3,600,000") }
            configuration.lingerMilliseconds = lingerMs
            configuration.untilIdle = untilIdle
            configuration.limits.maxMessageBytes = maxMessageBytes
            configuration.sessionTimeoutMilliseconds = try Setting.integer(
                sessionTimeoutMs, variable: "BTE_KAFKA_SESSION_TIMEOUT_MS",
                default: configuration.sessionTimeoutMilliseconds)
            let logger = try options.makeLogger("bte.ingest")
            let readiness = Readiness()
            configuration.readiness = readiness
            let config = configuration
            let printSummary = summary
            let ingest = WorkerService("ingest") { stop in
                try IngestWorker(configuration: config, logger: logger).run(stop: stop)
            } finished: { result in
                if printSummary { print(result.render()) }
            }
            try await runServices([ingest], readiness: readiness, observability: observability, logger: logger)
        }
    }
}

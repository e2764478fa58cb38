import ArgumentParser
import BTECLI
import BTEIngest
import BTEStore
import BTEWorker
import Foundation

struct SinkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sink",
        abstract: "Copy the output topics, exactly once, into the tables the HTTP API reads.",
        subcommands: [Run.self, Retention.self], defaultSubcommand: Run.self)

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Consume the signals, vectors and insights topics into bte.signal_values, "
                + "bte.behavioral_vectors + bte.bv_history and bte.insights (group bte-sink).")
        @OptionGroup var options: ConnectionOptions
        @Flag(help: "Exit 0 once every assigned partition is caught up.") var untilIdle = false
        @Option(help: "Consumer group.") var group = "bte-sink"
        @Option(help: "Largest batch in messages.") var batchSize = 5_000
        @Option(help: "Longest wait for a batch to fill, in milliseconds.") var batchWaitMs = 100
        @Option(help: "Static group membership id, unique per member (env BTE_INSTANCE_ID).") var instanceID: String?
        @Option(help: "Consumer group session timeout in milliseconds (env BTE_KAFKA_SESSION_TIMEOUT_MS).")
        var sessionTimeoutMs: Int?
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
                guard batchSize > 0 else { throw CLIError("--batch-size must be positive") }
                configuration.maxBatchMessages = batchSize
                // An hour at most: the worker turns it into nanoseconds of a deadline.
                guard (1...3_600_000).contains(batchWaitMs) else {
                    throw CLIError("--batch-wait-ms is 1 to 3,600,000")
                }
                configuration.maxBatchWaitMilliseconds = batchWaitMs
                configuration.instanceID = Setting.text(instanceID, variable: "BTE_INSTANCE_ID")
                configuration.untilIdle = untilIdle
                configuration.sessionTimeoutMilliseconds = try Setting.integer(
                    sessionTimeoutMs, variable: "BTE_KAFKA_SESSION_TIMEOUT_MS",
                    default: configuration.sessionTimeoutMilliseconds)
                let logger = try options.makeLogger("bte.sink")
                let readiness = Readiness()
                configuration.readiness = readiness
                let config = configuration
                let printSummary = summary
                let sink = WorkerService("sink") { stop in
                    try SinkWorker(configuration: config, logger: logger).run(stop: stop)
                } finished: { result in
                    if printSummary { print(result.render()) }
                }
                try await runServices([sink], readiness: readiness, observability: observability, logger: logger)
            }
        }
    }

    struct Retention: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Drop the bte.signal_values partitions older than the months kept (dry run by default).")
        @OptionGroup var options: ConnectionOptions
        @Option(help: "Months kept, the current one included.") var keepMonths = 18
        @Flag(help: "Drop them; without it only lists them.") var execute = false

        func run() async throws {
            try await guarded {
                guard keepMonths >= 1 else { throw CLIError("--keep-months must be at least 1") }
                let store = try SinkStore(url: try options.resolvedDatabaseURL(), holdsGroupLock: false)
                let names = try store.retention(keepMonths: keepMonths, execute: execute)
                let verb = execute ? "dropped" : "would drop"
                if names.isEmpty {
                    print("no signal partition is older than \(keepMonths) months")
                } else {
                    print("\(verb) \(names.count) partition(s): \(names.joined(separator: ", "))")
                    if !execute { print("dry run: add --execute to drop them") }
                }
            }
        }
    }
}

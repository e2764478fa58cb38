import ArgumentParser
import BTEDomain
import BTEPipeline
import BTEStore
import Dispatch
import Foundation
import Kafka
import Logging
import Postgres

@main
struct BTECommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bte",
        abstract: "Behavioral Telemetry Engine: Kafka → immutable PostgreSQL logs → behavioral signals.",
        subcommands: [Migrate.self, Topics.self, Ingest.self, Generate.self, Bench.self, ThresholdsCommand.self, SweepCommand.self, ProjectCommand.self, IntentsCommand.self])

    /// Runs a command body and turns any error into one line on stderr and exit code 1.
    static func guarded(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as ExitCode {
            throw error
        } catch let error as ValidationError {
            throw error
        } catch {
            FileHandle.standardError.write(Data("bte: error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

struct ConnectionOptions: ParsableArguments {
    @Option(help: "Kafka bootstrap servers (env BTE_KAFKA_BROKERS).")
    var brokers: String?

    @Option(help: "libpq URI of PostgreSQL (env BTE_DATABASE_URL).")
    var databaseURL: String?

    @Option(help: "Prefix for every topic name; empty in production.")
    var topicPrefix: String = ""

    @Option(help: "Log level: trace, debug, info, notice, warning, error (env BTE_LOG_LEVEL).")
    var logLevel: String?

    func resolvedBrokers() throws -> String { try Setting.brokers.resolve(brokers) }

    func resolvedDatabaseURL() throws -> String { try Setting.database.resolve(databaseURL) }

    func kafkaProperties() -> [String: String] {
        var properties: [String: String] = [:]
        if let timeout = ProcessInfo.processInfo.environment["BTE_KAFKA_SESSION_TIMEOUT_MS"] { properties["session.timeout.ms"] = timeout }
        return properties
    }

    func makeLogger(_ label: String) -> Logger {
        let levelName = logLevel ?? ProcessInfo.processInfo.environment["BTE_LOG_LEVEL"] ?? "info"
        let level = Logger.Level(rawValue: levelName) ?? .info
        LoggingBootstrap.once(level: level)
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}

enum LoggingBootstrap {
    private static let done = NSLock()
    nonisolated(unsafe) private static var bootstrapped = false
    static func once(level: Logger.Level) {
        done.lock()
        defer { done.unlock() }
        guard !bootstrapped else { return }
        bootstrapped = true
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

/// A setting given by flag, else by environment variable (docs/operations.md).
enum Setting {
    case brokers, database, reader, admin

    private var flag: String {
        switch self {
        case .brokers: return "--brokers"
        case .database: return "--database-url"
        case .reader: return "--reader-database-url"
        case .admin: return "--admin-database-url"
        }
    }

    private var variable: String {
        switch self {
        case .brokers: return "BTE_KAFKA_BROKERS"
        case .database: return "BTE_DATABASE_URL"
        case .reader: return "BTE_READER_DATABASE_URL"
        case .admin: return "BTE_ADMIN_DATABASE_URL"
        }
    }

    /// The flag's value, else the variable's; neither (or empty) is a usage error.
    func resolve(_ flagValue: String?) throws -> String {
        guard let value = flagValue ?? ProcessInfo.processInfo.environment[variable], !value.isEmpty else {
            throw CLIError("no \(self == .brokers ? "brokers" : "database"): pass \(flag) or set \(variable)")
        }
        return value
    }
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = "bte_usage: \(message)" }
}

/// Runs blocking work on its own thread, off the cooperative pool.
func onThread<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
        }
        thread.name = name
        thread.stackSize = 8 << 20
        thread.start()
    }
}

/// SIGTERM and SIGINT ask the worker to finish its batch and stop.
func installStopHandlers(_ stop: StopSignal) -> [any DispatchSourceSignal] {
    [SIGTERM, SIGINT].map { signo in
        signal(signo, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signo, queue: .global())
        source.setEventHandler { stop.stop() }
        source.resume()
        return source
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply the SQL migrations (needs an owner's database URL).")
    @OptionGroup var options: ConnectionOptions

    func run() async throws {
        try await BTECommand.guarded {
            let url = try options.resolvedDatabaseURL()
            let applied = try await onThread("migrate") {
                let connection = try PostgresConnection(url: url, applicationName: "bte-migrate")
                return try Migrator().apply(on: connection)
            }
            print(applied.isEmpty ? "migrations: up to date" : "migrations: applied \(applied.joined(separator: ", "))")
        }
    }
}

struct Topics: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage topics.", subcommands: [Apply.self])

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create the missing topics of topics/*.json; idempotent.")
        @OptionGroup var options: ConnectionOptions
        @Option(help: "Folder with the topic specs.") var topicsDir: String = "topics"
        @Option(help: "Override every spec's replication factor.") var replicationFactor: Int32?

        func run() async throws {
            try await BTECommand.guarded {
                let specs = try TopicSpec.load(directory: topicsDir)
                let brokers = try options.resolvedBrokers()
                let prefix = options.topicPrefix
                let factor = replicationFactor
                let result = try await onThread("topics") {
                    let admin = try KafkaAdmin(configuration: KafkaClientConfiguration(brokers: brokers))
                    return try admin.createTopics(specs.map { $0.newTopic(prefix: prefix, replicationFactor: factor) })
                }
                for spec in specs {
                    let name = prefix + spec.name
                    let state = result[name] == .created ? "created" : "exists"
                    print("topic \(name): \(state) (\(spec.partitions) partitions, \(spec.cleanupPolicy))")
                }
            }
        }
    }
}

/// A topic spec file of `topics/`.
struct TopicSpec: Decodable {
    let name: String
    let partitions: Int32
    let replicationFactor: Int32
    let cleanupPolicy: String
    let configs: [String: String]

    enum CodingKeys: String, CodingKey {
        case name, partitions, configs
        case replicationFactor = "replication_factor"
        case cleanupPolicy = "cleanup_policy"
    }

    static func load(directory: String) throws -> [TopicSpec] {
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw CLIError("cannot read topic specs in \(directory) (pass --topics-dir)")
        }
        let names = entries.filter { $0.hasSuffix(".json") }.sorted()
        guard !names.isEmpty else { throw CLIError("no topic specs in \(directory)") }
        return try names.map { name in
            let data = try Data(contentsOf: URL(fileURLWithPath: directory).appendingPathComponent(name))
            do {
                return try JSONDecoder().decode(TopicSpec.self, from: data)
            } catch {
                throw CLIError("topic spec \(name) is invalid: \(error)")
            }
        }
    }

    func newTopic(prefix: String, replicationFactor override: Int32?) -> KafkaNewTopic {
        KafkaNewTopic(name: prefix + name, partitions: partitions, replicationFactor: override ?? replicationFactor, configs: configs)
    }
}

struct Ingest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Consume the input topics and append them, exactly once, to the PostgreSQL logs.")
    @OptionGroup var options: ConnectionOptions
    @Flag(help: "Exit 0 once every assigned partition is caught up.") var untilIdle = false
    @Option(help: "Consumer group.") var group = "bte-ingest"
    @Option(help: "Largest batch in messages.") var batchSize = 10_000
    @Option(help: "Largest batch in bytes of keys and values.") var batchBytes = IngestConfiguration.defaultMaxBatchBytes
    @Option(help: "Static group membership id, unique per member (env BTE_INSTANCE_ID).") var instanceID: String?
    @Option(help: "Parallel writers (PostgreSQL connections); partitions are spread over them.") var writers = 2
    @Option(help: "Batches each writer may have queued.") var writerQueue = 4
    @Option(help: "Longest wait for a batch to fill, in milliseconds.") var batchWaitMs = 250
    @Option(help: "Consumer group session timeout in milliseconds (env BTE_KAFKA_SESSION_TIMEOUT_MS).") var sessionTimeoutMs: Int?
    @Option(help: "Largest accepted message in bytes.") var maxMessageBytes = ValidationLimits().maxMessageBytes
    @Flag(help: "Print a summary when done.") var summary = false
    @Option(help: "Serve Prometheus metrics on this port, 0 to disable (env BTE_METRICS_PORT).") var metricsPort: Int?
    @Option(help: "Address the metrics endpoint binds to.") var metricsHost = "127.0.0.1"

    func run() async throws {
        try await BTECommand.guarded {
            var configuration = IngestConfiguration(brokers: try options.resolvedBrokers(), databaseURL: try options.resolvedDatabaseURL())
            configuration.group = group
            configuration.topicPrefix = options.topicPrefix
            configuration.maxBatchMessages = batchSize
            guard batchBytes > 0 else { throw CLIError("--batch-bytes must be positive") }
            configuration.maxBatchBytes = batchBytes
            configuration.instanceID = instanceID ?? ProcessInfo.processInfo.environment["BTE_INSTANCE_ID"].flatMap { $0.isEmpty ? nil : $0 }
            configuration.writers = writers
            guard writerQueue > 0 else { throw CLIError("--writer-queue must be positive") }
            configuration.batchesQueuedPerWriter = writerQueue
            configuration.maxBatchWaitMilliseconds = batchWaitMs
            configuration.untilIdle = untilIdle
            configuration.limits.maxMessageBytes = maxMessageBytes
            let envTimeout = ProcessInfo.processInfo.environment["BTE_KAFKA_SESSION_TIMEOUT_MS"].flatMap { Int($0) }
            configuration.sessionTimeoutMilliseconds = sessionTimeoutMs ?? envTimeout ?? configuration.sessionTimeoutMilliseconds
            let logger = options.makeLogger("bte.ingest")
            let port = metricsPort ?? ProcessInfo.processInfo.environment["BTE_METRICS_PORT"].flatMap { Int($0) } ?? 0
            if port > 0 {
                let endpoint = try MetricsEndpoint(host: metricsHost, port: port)
                endpoint.serveInBackground()
                logger.info("metrics on http://\(metricsHost):\(port)/metrics")
            }
            let stop = StopSignal()
            let handlers = installStopHandlers(stop)
            let config = configuration
            let result = try await onThread("ingest") {
                try IngestWorker(configuration: config, logger: logger).run(stop: stop)
            }
            _ = handlers
            if summary { print(result.render()) }
        }
    }
}

struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Produce a realistic demo stream (with re-deliveries and bad input) to the input topics.")
    @OptionGroup var options: ConnectionOptions
    @Option(help: "Valid events to produce.") var events = 10_000
    @Option(help: "Random seed; the same seed gives the same stream.") var seed: UInt64 = 1
    @Option(help: "Rounds of bad input (one message of each kind per round).") var badRounds = 1
    @Option(help: "Every n-th valid message is sent twice (0: never).") var duplicateEvery = 50
    @Option(help: "Events end at this instant (RFC 3339); default now.") var end: String?

    func run() async throws {
        try await BTECommand.guarded {
            var streamOptions = DemoStream.Options()
            streamOptions.events = events
            streamOptions.seed = seed
            streamOptions.badRounds = badRounds
            streamOptions.duplicateEvery = duplicateEvery
            streamOptions.topicPrefix = options.topicPrefix
            if let end {
                guard let parsed = Timestamp(rfc3339: end) else { throw CLIError("--end is not an RFC 3339 timestamp: \(end)") }
                streamOptions.end = parsed
            } else {
                streamOptions.end = Timestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000))
            }
            let stream = DemoStream(options: streamOptions)
            let brokers = try options.resolvedBrokers()
            let started = Date()
            try await onThread("generate") {
                let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: KafkaClientConfiguration(brokers: brokers)))
                var index = 0
                while index < stream.messages.count {
                    let chunk = Array(stream.messages[index..<min(index + 20_000, stream.messages.count)])
                    try producer.send(chunk)
                    index += chunk.count
                }
            }
            let seconds = Date().timeIntervalSince(started)
            print("produced \(stream.total) messages in \(String(format: "%.2f", seconds)) s: \(stream.totalStored) distinct valid events, \(stream.totalDuplicates) re-deliveries, \(stream.totalRejected) bad")
        }
    }
}

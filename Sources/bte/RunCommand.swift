import ArgumentParser
import BTECLI
import BTEIngest
import BTEProjection
import BTEWorker
import ServiceLifecycle

/// Several workers in one process, for small deployments; in Kubernetes run one per process.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run several workers in one process with their defaults: bte run ingest project.",
        discussion:
            "Each worker behaves as its own command with default settings; "
            + "use bte ingest or bte project for more control."
    )

    enum Worker: String, ExpressibleByArgument, CaseIterable {
        case ingest, project
    }

    @Argument(help: "Workers to run: ingest, project.") var workers: [Worker]
    @OptionGroup var options: ConnectionOptions
    @Option(help: "libpq URI of a reader, for project (env BTE_READER_DATABASE_URL).") var readerDatabaseURL: String?
    @Option(help: "Consumer group session timeout in milliseconds (env BTE_KAFKA_SESSION_TIMEOUT_MS).")
    var sessionTimeoutMs: Int?
    @Option(help: "Static group membership id, unique per process (env BTE_INSTANCE_ID).") var instanceID: String?
    @Option(help: "Consumer group of ingest.") var ingestGroup = "bte-ingest"
    @Option(help: "Consumer group of the projector.") var projectorGroup = "bte-projector"
    @OptionGroup var observability: ObservabilityOptions

    func run() async throws {
        try await guarded {
            guard !workers.isEmpty else { throw CLIError("name at least one worker: ingest, project") }
            ProcessMetrics.bootstrap()
            let logger = try options.makeLogger("bte.run")
            let readiness = Readiness()
            let brokers = try options.resolvedBrokers()
            let kafkaProperties = try options.resolvedKafkaProperties()
            let sessionTimeout = try Setting.integer(
                sessionTimeoutMs, variable: "BTE_KAFKA_SESSION_TIMEOUT_MS", default: 45_000)
            let instance = Setting.text(instanceID, variable: "BTE_INSTANCE_ID")
            var services: [any Service] = []
            for worker in Set(workers).sorted(by: { $0.rawValue < $1.rawValue }) {
                switch worker {
                case .ingest:
                    var configuration = IngestConfiguration(
                        brokers: brokers, databaseURL: try options.resolvedDatabaseURL())
                    configuration.topicPrefix = options.topicPrefix
                    configuration.group = ingestGroup
                    configuration.kafkaProperties = kafkaProperties
                    configuration.sessionTimeoutMilliseconds = sessionTimeout
                    configuration.instanceID = instance
                    configuration.readiness = readiness
                    let config = configuration
                    let ingestLogger = try options.makeLogger("bte.ingest")
                    services.append(
                        WorkerService("ingest") { stop in
                            try IngestWorker(configuration: config, logger: ingestLogger).run(stop: stop)
                        })
                case .project:
                    var configuration = Projector.Configuration(
                        brokers: brokers, readerURL: try Setting.reader.resolve(readerDatabaseURL))
                    configuration.topicPrefix = options.topicPrefix
                    configuration.group = projectorGroup
                    configuration.kafkaProperties = kafkaProperties
                    configuration.ingestGroup = ingestGroup
                    configuration.sessionTimeoutMilliseconds = sessionTimeout
                    configuration.instanceID = instance
                    configuration.readiness = readiness
                    let config = configuration
                    let projectLogger = try options.makeLogger("bte.project")
                    services.append(
                        WorkerService("project") { stop in
                            try Projector(configuration: config, logger: projectLogger).run(stop: stop)
                        })
                }
            }
            try await runServices(services, readiness: readiness, observability: observability, logger: logger)
        }
    }
}

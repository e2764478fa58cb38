import ArgumentParser
import BTEAPI
import BTECLI
import BTEDomain
import BTEWorker
import Foundation
import ServiceLifecycle

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract:
            "The HTTP API: collect events (validated like ingest, acknowledged by the broker), read vectors, "
            + "engagement, signals and insights, take feedback, run the KPI models, serve the dashboard; "
            + "/openapi.json, /metrics, /healthz, /readyz.")
    @Option(help: "Port (env BTE_HTTP_PORT).") var port: Int?
    @Option(help: "Address to bind.") var host = "127.0.0.1"
    @Option(help: "Seconds a connection may send nothing before it is closed (slow or stalled clients).")
    var readTimeout = 10
    @Option(help: "Kafka bootstrap servers (env BTE_KAFKA_BROKERS).") var brokers: String?
    @Option(help: "libpq URI of a reader, for the keys (env BTE_READER_DATABASE_URL).") var readerDatabaseURL: String?
    @Option(
        help:
            """
            libpq URI of a member of bte_models, for /v1/estimate, /v1/simulate, /v1/forecast, /v1/recommend \
            (env BTE_DATABASE_URL); without it they answer 503.
            """
    ) var databaseURL: String?
    @Option(help: "Milliseconds a model request waits for its job before it is answered 202 (env BTE_JOB_WAIT_MS).")
    var jobWaitMs: Int?
    @Option(help: "Model jobs computed at once, each on its own connection.") var modelWorkers = 2
    @Option(help: "Model jobs one workspace may have running or queued (429 past it).") var maxJobsPerWorkspace = 4
    @Option(help: "Model jobs all workspaces may have running or queued (503 past it).") var maxJobs = 32
    @Option(help: "Open connections; one more is closed as soon as it is accepted.") var maxConnections = 1_000
    @Option(
        help: ArgumentHelp(
            "Seconds a request has to arrive whole (head and body) from its connection's opening or the previous "
                + "request's end."))
    var requestTimeout = 60
    @Option(help: "Prefix for every topic name; empty in production.") var topicPrefix = ""
    @Option(help: "Largest record in bytes: the same as bte ingest's.") var maxMessageBytes = ValidationLimits()
        .maxMessageBytes
    @Option(help: "Log level (env BTE_LOG_LEVEL).") var logLevel: String?
    @Option(help: "Log format: text, or json for one JSON object a line (env BTE_LOG_FORMAT).") var logFormat: String?
    @Option(
        help: """
            A projector's metrics URL (http://host:port/metrics), repeatable: the dashboard shows their \
            produce → publish p99 as freshness (env BTE_PROJECTOR_METRICS_URLS, comma-separated).
            """
    )
    var projectorMetricsURL: [String] = []
    @OptionGroup var kafka: KafkaOptions

    func run() async throws {
        try await guarded {
            ProcessMetrics.bootstrap()
            let port = try Setting.integer(self.port, variable: "BTE_HTTP_PORT", default: 8080)
            guard (1...65_535).contains(port) else { throw CLIError("--port \(port) is outside 1...65535") }
            var configuration = APIServer.Configuration(
                brokers: try Setting.brokers.resolve(brokers), readerURL: try Setting.reader.resolve(readerDatabaseURL))
            configuration.host = host
            // A day at most: the server keeps it as nanoseconds.
            guard (1...86_400).contains(readTimeout) else { throw CLIError("--read-timeout is 1 to 86,400 seconds") }
            configuration.readTimeoutSeconds = readTimeout
            configuration.port = port
            configuration.topicPrefix = topicPrefix
            configuration.modelsURL = Setting.text(databaseURL, variable: "BTE_DATABASE_URL")
            configuration.jobWaitMilliseconds = try Setting.integer(
                jobWaitMs, variable: "BTE_JOB_WAIT_MS", default: 2_000)
            guard (0...600_000).contains(configuration.jobWaitMilliseconds) else {
                throw CLIError("--job-wait-ms is 0 to 600,000")
            }
            guard (1...64).contains(modelWorkers) else { throw CLIError("--model-workers is 1 to 64") }
            configuration.modelWorkers = modelWorkers
            guard (1...10_000).contains(maxJobsPerWorkspace) else {
                throw CLIError("--max-jobs-per-workspace is 1 to 10,000")
            }
            guard (maxJobsPerWorkspace...100_000).contains(maxJobs) else {
                throw CLIError("--max-jobs is --max-jobs-per-workspace to 100,000")
            }
            guard (1...1_000_000).contains(maxConnections) else {
                throw CLIError("--max-connections is 1 to 1,000,000")
            }
            guard (1...86_400).contains(requestTimeout) else {
                throw CLIError("--request-timeout is 1 to 86,400 seconds")
            }
            let metricsURLs =
                projectorMetricsURL.isEmpty
                ? (Setting.text(nil, variable: "BTE_PROJECTOR_METRICS_URLS") ?? "").split(separator: ",").map {
                    $0.trimmingCharacters(in: .whitespaces)
                }.filter { !$0.isEmpty } : projectorMetricsURL
            for url in metricsURLs where ProjectorFreshness.endpoint(url) == nil {
                throw CLIError("--projector-metrics-url is http://host:port/path, not \(url)")
            }
            configuration.projectorMetricsURLs = metricsURLs
            configuration.maxJobsPerWorkspace = maxJobsPerWorkspace
            configuration.maxJobs = maxJobs
            configuration.maxConnections = maxConnections
            configuration.requestTimeoutSeconds = requestTimeout
            configuration.limits.maxMessageBytes = maxMessageBytes
            configuration.kafkaProperties = try kafka.resolve()
            let logger = try LoggingBootstrap.logger("bte.serve", level: logLevel, format: logFormat)
            let server = try APIServer(configuration: configuration)
            defer { server.shutdown() }
            let readiness = Readiness()
            let service = server.service(registry: ProcessMetrics.registry, readiness: readiness, logger: logger)
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [
                        .init(
                            service: service, successTerminationBehavior: .gracefullyShutdownGroup,
                            failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: "serve")
                    ],
                    gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            logger.info("serving on http://\(host):\(port)")
            let watcher = Task { await server.watchReadiness(readiness) }
            let database = Task { await server.watchDatabase() }
            defer {
                watcher.cancel()
                database.cancel()
            }
            try await group.run()
        }
    }
}

import ArgumentParser
import BTECLI
import BTEHTTP
import BTEWorker
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// `/metrics`, `/healthz` and `/readyz` of a long-running command.
struct ObservabilityOptions: ParsableArguments {
    @Option(help: "Serve /metrics, /healthz and /readyz on this port, 0 to disable (env BTE_METRICS_PORT).")
    var metricsPort: Int?
    @Option(help: "Address the metrics endpoint binds to.") var metricsHost = "127.0.0.1"
    @Option(help: "Export spans over OTLP/HTTP to this collector, e.g. http://127.0.0.1:4318; none when unset.")
    var otlpEndpoint: String?

    /// The collector's traces URL, nil when tracing is off.
    func resolvedTracesURL() throws -> String? {
        try SpanExport.tracesURL(Setting.text(otlpEndpoint, variable: "OTEL_EXPORTER_OTLP_ENDPOINT"))
    }

    /// The port to serve on, nil for none; a port outside 0...65535 is a usage error.
    func resolvedPort() throws -> Int? {
        let port = try Setting.integer(metricsPort, variable: "BTE_METRICS_PORT", default: 0)
        guard UInt16(exactly: port) != nil else { throw CLIError("metrics: port \(port) is outside 0...65535") }
        return port > 0 ? port : nil
    }
}

/// The process's metrics: one Prometheus registry behind swift-metrics, set up once. Long-running
/// commands call `bootstrap()` before they build a worker, which takes the factory then.
enum ProcessMetrics {
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()

    static func bootstrap() { _ = registry }
}

/// Runs a command's workers as one service group: SIGTERM or SIGINT shut it down gracefully
/// (each worker finishes its batch, commits and returns), a worker that ends or fails ends the
/// others too, and the observability endpoint, when asked for, serves until the workers are done.
func runServices(
    _ workers: [any Service], readiness: Readiness, observability: ObservabilityOptions, logger: Logger
) async throws {
    let registry = ProcessMetrics.registry
    var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
    // Listed first, so it is shut down last and exports the workers' final spans.
    if let traces = try observability.resolvedTracesURL() {
        services.append(
            .init(
                service: try SpanExport.bootstrap(serviceName: logger.label, tracesURL: traces),
                successTerminationBehavior: .gracefullyShutdownGroup,
                failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: "otel"))
    }
    // Listed first, so it is shut down last: scrapes see the workers drain.
    if let port = try observability.resolvedPort() {
        let server = ObservabilityServer.make(
            host: observability.metricsHost, port: port, registry: registry, readiness: readiness, logger: logger)
        services.append(
            .init(
                service: server, successTerminationBehavior: .gracefullyShutdownGroup,
                failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: "observability"))
    }
    for worker in workers {
        services.append(
            .init(
                service: worker, successTerminationBehavior: .gracefullyShutdownGroup,
                failureTerminationBehavior: .gracefullyShutdownGroup))
    }
    var quiet = logger
    quiet.logLevel = max(logger.logLevel, .notice)
    let group = ServiceGroup(
        configuration: ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: quiet))
    try await group.run()
}

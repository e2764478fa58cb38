import BTEWorker
import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle

/// The HTTP endpoint of every long-running command: `GET /metrics` (Prometheus text format),
/// `GET /healthz` (the process is up) and `GET /readyz` (every worker of the process is ready:
/// its servers answer and it is not waiting to retry; 503 otherwise).
public enum ObservabilityServer {
    /// The server as a `Service`, to run in the command's service group.
    public static func make(
        host: String, port: Int, registry: PrometheusCollectorRegistry, readiness: Readiness, logger: Logger
    ) -> any Service {
        Application(
            router: router(registry: registry, readiness: readiness),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "bte"),
            // Said once the socket is bound, so a scraper that waits for the line can connect.
            onServerRunning: { _ in logger.info("metrics on http://\(host):\(port)/metrics") },
            logger: logger)
    }

    static func router(registry: PrometheusCollectorRegistry, readiness: Readiness) -> Router<BasicRequestContext> {
        let router = Router()
        addRoutes(to: router, registry: registry, readiness: readiness)
        return router
    }

    /// `/metrics`, `/healthz` and `/readyz` on a router that serves more (the HTTP API's).
    public static func addRoutes<Context: RequestContext>(
        to router: Router<Context>, registry: PrometheusCollectorRegistry, readiness: Readiness
    ) {
        router.get("metrics") { _, _ -> Response in
            let body = registry.emitToBuffer()
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
        }
        router.get("healthz") { _, _ in "ok\n" }
        router.get("readyz") { _, _ -> Response in
            let lines = readiness.workers.map { "\($0.name) \($0.ready ? "ready" : "not ready")\n" }.joined()
            return Response(
                status: readiness.isReady ? .ok : .serviceUnavailable,
                headers: [.contentType: "text/plain; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: lines.isEmpty ? "no workers\n" : lines)))
        }
    }
}

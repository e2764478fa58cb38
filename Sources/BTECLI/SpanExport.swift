import Foundation
import OTel
import ServiceLifecycle

/// Span export over OTLP/HTTP (protobuf), the same for every command that makes spans.
public enum SpanExport {
    /// The collector's traces URL for a base URL such as `http://collector:4318` (kept as given
    /// when it already ends in `/v1/traces`); nil when `base` is nil or empty.
    public static func tracesURL(_ base: String?) throws -> String? {
        guard let base, !base.isEmpty else { return nil }
        guard let url = URL(string: base), url.scheme == "http" || url.scheme == "https", url.host != nil else {
            throw CLIError("otlp-endpoint: \(base) is not an http(s) URL")
        }
        return base.hasSuffix("/v1/traces")
            ? base : (base.hasSuffix("/") ? String(base.dropLast()) : base) + "/v1/traces"
    }

    /// Bootstraps the process's tracer; the returned service exports until it is shut down.
    ///
    /// A worker makes a span per traced event and a few per batch, thousands a second under load:
    /// the OTel defaults (a 2,048-span queue flushed every 5 s) would drop most of them. The queue
    /// holds 65,536 spans (tens of MB at most) and is flushed every second in exports of up to
    /// 4,096. `OTEL_BSP_*` variables override these.
    public static func bootstrap(serviceName: String, tracesURL: String) throws -> any Service {
        var configuration = OTel.Configuration.default
        configuration.serviceName = serviceName
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.propagators = [.traceContext]
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        configuration.traces.otlpExporter.endpoint = tracesURL
        configuration.traces.batchSpanProcessor.scheduleDelay = .seconds(1)
        configuration.traces.batchSpanProcessor.maxQueueSize = 65_536
        configuration.traces.batchSpanProcessor.maxExportBatchSize = 4_096
        do {
            return try OTel.bootstrap(configuration: configuration)
        } catch {
            throw CLIError("tracing: \(error)")
        }
    }
}

import BTECLI
import BTEWorker
import Foundation

/// The cost of tracing, in one run: the freshness stream four times, at the same rate: without
/// trace context; with a sampled `traceparent` on every message and the projector carrying it
/// (no tracer); with spans exported over OTLP/HTTP to `endpoint` by ingest and the projector;
/// and the same with 1 message in 100 sampled (the others' flags say not sampled, so their
/// spans are not recorded); and without trace context again (the tracer still bootstrapped, so
/// ingest still exports its batch spans). The tracer is bootstrapped once per process, so the
/// runs go in that order; the two runs without trace context show how much the order itself
/// (a broker that slows as topics are added) moves the figures.
struct TracingBenchmark {
    var projector: ProjectorBenchmark
    /// The collector's base URL (…:4318); its traces path is appended.
    var endpoint: String

    struct Result {
        var off = ProjectorBenchmark.Freshness()
        var context = ProjectorBenchmark.Freshness()
        var spans = ProjectorBenchmark.Freshness()
        var sampled = ProjectorBenchmark.Freshness()
        var offAgain = ProjectorBenchmark.Freshness()

        func render() -> String {
            func ratio(_ run: ProjectorBenchmark.Freshness, _ label: String) -> String {
                String(
                    format: "%@ ÷ off: p50 %.2f, p99 %.2f, projector CPU/event %.2f, process CPU/event %.2f", label,
                    run.p50 / max(off.p50, 1), run.p99 / max(off.p99, 1),
                    run.cpuMicrosPerEvent / max(off.cpuMicrosPerEvent, 1e-9),
                    run.processCpuMicrosPerEvent / max(off.processCpuMicrosPerEvent, 1e-9))
            }
            return [
                off.render("tracing off"), context.render("trace context carried, no spans"),
                spans.render("trace context and spans exported"),
                sampled.render("trace context and spans exported, 1 event in 100 sampled"), ratio(context, "context"),
                ratio(spans, "spans"), ratio(sampled, "spans, 1 in 100 sampled"),
                offAgain.render("tracing off again (tracer bootstrapped, no trace context)"),
                ratio(offAgain, "off again"),
            ].joined(separator: "\n")
        }
    }

    func run() async throws -> Result {
        var result = Result()
        let bench = projector
        result.off = try await onThread("bench") { try bench.freshness(history: 0, floor: false) }
        result.context = try await onThread("bench") { try bench.freshness(history: 0, floor: false, sampledEvery: 1) }
        let exporter = try SpanExport.bootstrap(
            serviceName: "bte-bench", tracesURL: try SpanExport.tracesURL(endpoint) ?? endpoint)
        let exporting = Task { try await exporter.run() }
        defer { exporting.cancel() }
        result.spans = try await onThread("bench") { try bench.freshness(history: 0, floor: false, sampledEvery: 1) }
        result.sampled = try await onThread("bench") {
            try bench.freshness(history: 0, floor: false, sampledEvery: 100)
        }
        result.offAgain = try await onThread("bench") { try bench.freshness(history: 0, floor: false) }
        return result
    }
}

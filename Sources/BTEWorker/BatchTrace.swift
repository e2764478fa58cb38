import BTEDomain
import BTEStore
import Foundation
import Kafka
import Tracing

/// The trace contexts of a worker's batch (`worker` names its spans: `bte.<worker>.…`). Each
/// input message with a valid `traceparent` gets a context of its own: with a tracer bootstrapped
/// (`--otlp-endpoint`), that of a `bte.<worker>.event` span, a child of the producer's; without
/// one, a child context with a random parent id and no span. With a tracer, the batch is also a
/// `bte.<worker>.batch` span (linked to its events' spans) with a child span per stage.
public struct BatchTrace: @unchecked Sendable {
    /// Wall-clock nanoseconds, as the tracer's instants are.
    struct Instant: TracerInstant {
        let nanosecondsSinceEpoch: UInt64
        static func < (lhs: Self, rhs: Self) -> Bool { lhs.nanosecondsSinceEpoch < rhs.nanosecondsSinceEpoch }
    }

    /// A `[String: String]` carrier for the W3C propagator.
    struct Headers: Extractor, Injector {
        func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
        func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
    }

    /// The context each traced event's outputs carry, by the event's coordinates.
    public private(set) var contexts: [LogPosition: TraceParent] = [:]
    private var spans: [any Span] = []
    private let tracer: (any Tracer)?
    private let startedWall: UInt64
    private let worker: String

    /// Whether a tracer is bootstrapped, so spans are exported.
    public static var exporting: Bool { !(InstrumentationSystem.tracer is NoOpTracer) }

    /// Reads the batch's `traceparent` headers (only when asked to: `traceContext`).
    public init(worker: String, messages: [KafkaMessage], traceContext: Bool) {
        self.worker = worker
        guard traceContext else {
            startedWall = 0
            tracer = nil
            return
        }
        startedWall = Self.wallNanoseconds()
        let tracer = InstrumentationSystem.tracer
        self.tracer = tracer is NoOpTracer ? nil : tracer
        for message in messages {
            guard let header = message.header(TraceParent.headerName), let producer = TraceParent(header) else {
                continue
            }
            let position = LogPosition(topic: message.topic, partition: message.partition, offset: message.offset)
            if let tracer = self.tracer {
                var context = ServiceContext.topLevel
                tracer.extract([TraceParent.headerName: producer.header], into: &context, using: Headers())
                let span = tracer.startSpan("bte.\(worker).event", context: context, ofKind: .consumer)
                span.attributes["messaging.system"] = "kafka"
                span.attributes["messaging.destination.name"] = message.topic
                span.attributes["messaging.kafka.partition"] = Int(message.partition)
                span.attributes["messaging.kafka.offset"] = Int(message.offset)
                var carrier: [String: String] = [:]
                tracer.inject(span.context, into: &carrier, using: Headers())
                spans.append(span)
                contexts[position] = carrier[TraceParent.headerName].flatMap { TraceParent(Array($0.utf8)) }
            } else {
                contexts[position] = producer.child(parentID: Self.spanID())
            }
        }
    }

    /// Ends the events' spans and records the batch and its stages (`laps`, in order, from the
    /// batch's start), when a tracer is bootstrapped.
    public func finish(laps: [(String, Int64)], messages: Int) {
        guard let tracer else { return }
        let batch = tracer.startSpan(
            "bte.\(worker).batch", context: .topLevel, ofKind: .internal,
            at: Instant(nanosecondsSinceEpoch: startedWall))
        batch.attributes["messaging.batch.message_count"] = messages
        var at = startedWall
        for (stage, nanoseconds) in laps {
            let span = tracer.startSpan(
                "bte.\(worker).\(stage)", context: batch.context, ofKind: .internal,
                at: Instant(nanosecondsSinceEpoch: at))
            at += UInt64(max(nanoseconds, 0))
            span.end(at: Instant(nanosecondsSinceEpoch: at))
        }
        for span in spans {
            batch.addLink(SpanLink(context: span.context, attributes: [:]))
            span.end(at: Instant(nanosecondsSinceEpoch: at))
        }
        batch.end(at: Instant(nanosecondsSinceEpoch: at))
    }

    static func wallNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// A new span id: 8 random bytes, not all zero.
    static func spanID() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        while true {
            let value = generator.next()
            if value != 0 { return withUnsafeBytes(of: value) { Array($0) } }
        }
    }
}

import CRdKafka
import Synchronization

/// Counts outstanding deliveries and keeps the first failure. librdkafka calls back on the
/// thread that polls, but the lock keeps this safe wherever `poll` runs.
final class DeliveryTracker: Sendable {
    private struct State {
        var pending = 0
        var failures: [String] = []
        var failureCode: Int32?
    }
    private let state = Mutex(State())

    func produced() { state.withLock { $0.pending += 1 } }

    func delivered(error: rd_kafka_resp_err_t, topic: String) {
        state.withLock {
            $0.pending -= 1
            if error != RD_KAFKA_RESP_ERR_NO_ERROR {
                if $0.failures.count < 5 { $0.failures.append("\(topic): \(KafkaError.describe(error))") }
                $0.failureCode = $0.failureCode ?? error.rawValue
            }
        }
    }

    var pending: Int { state.withLock { $0.pending } }

    /// Returns and clears the failures seen since the last call.
    func takeFailures() -> (messages: [String], code: Int32?) {
        state.withLock { state in
            defer {
                state.failures = []
                state.failureCode = nil
            }
            return (state.failures, state.failureCode)
        }
    }
}

/// A producer whose `send` returns only when every message has been acknowledged by the
/// brokers, or throws if any was not.
public final class KafkaProducer {
    private let handle: OpaquePointer
    private let tracker: DeliveryTracker
    private var topicHandles: [String: OpaquePointer] = [:]

    public init(configuration: KafkaProducerConfiguration) throws {
        let tracker = DeliveryTracker()
        let conf = try makeConf(configuration.librdkafkaProperties)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(tracker).toOpaque())
        rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
            guard let message, let opaque else { return }
            let tracker = Unmanaged<DeliveryTracker>.fromOpaque(opaque).takeUnretainedValue()
            let topic = message.pointee.rkt.flatMap { rd_kafka_topic_name($0) }.map { String(cString: $0) } ?? "?"
            tracker.delivered(error: message.pointee.err, topic: topic)
        }
        self.handle = try makeClient(type: RD_KAFKA_PRODUCER, conf: conf)
        self.tracker = tracker
    }

    deinit {
        // Give in-flight messages a moment; a caller that needs them delivered uses `send`.
        rd_kafka_flush(handle, 2_000)
        for topic in topicHandles.values { rd_kafka_topic_destroy(topic) }
        rd_kafka_destroy(handle)
    }

    private func topicHandle(_ name: String) throws -> OpaquePointer {
        if let existing = topicHandles[name] { return existing }
        guard let created = rd_kafka_topic_new(handle, name, nil) else {
            throw KafkaError(.produce, rd_kafka_last_error(), context: "topic \(name)")
        }
        topicHandles[name] = created
        return created
    }

    /// Produces `messages` and waits for every delivery report. Throws the first failure;
    /// messages reported as delivered stay delivered (a retry may duplicate them).
    public func send(_ messages: [KafkaOutgoingMessage]) throws {
        _ = tracker.takeFailures()
        for message in messages {
            let topic = try topicHandle(message.topic)
            while true {
                let error: rd_kafka_resp_err_t
                if message.headers.isEmpty {
                    let result = withOptionalBytes(message.value) { value, valueCount in
                        withOptionalBytes(message.key) { key, keyCount in
                            rd_kafka_produce(
                                topic, message.partition ?? RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                                value, valueCount, key, keyCount, nil)
                        }
                    }
                    error = result == 0 ? RD_KAFKA_RESP_ERR_NO_ERROR : rd_kafka_last_error()
                } else {
                    error = produceWithHeaders(message)
                }
                if error == RD_KAFKA_RESP_ERR_NO_ERROR {
                    tracker.produced()
                    break
                }
                guard error == RD_KAFKA_RESP_ERR__QUEUE_FULL else {
                    try waitForDeliveries()
                    throw KafkaError(.produce, error, context: "produce to \(message.topic)")
                }
                rd_kafka_poll(handle, 50)
            }
        }
        try waitForDeliveries()
    }

    /// Produces through `producev`, the only form that takes headers; librdkafka owns the
    /// header list once the message is queued, and it is freed here otherwise.
    private func produceWithHeaders(_ message: KafkaOutgoingMessage) -> rd_kafka_resp_err_t {
        guard let list = rd_kafka_headers_new(message.headers.count) else { return RD_KAFKA_RESP_ERR__FAIL }
        for header in message.headers {
            var bytes = header.value.isEmpty ? [UInt8(0)] : header.value
            _ = bytes.withUnsafeMutableBytes {
                rd_kafka_header_add(list, header.name, -1, $0.baseAddress, header.value.count)
            }
        }
        let error = withOptionalBytes(message.value) { value, valueCount in
            withOptionalBytes(message.key) { key, keyCount in
                bte_produce(
                    handle, message.topic, message.partition ?? RD_KAFKA_PARTITION_UA, value, valueCount, key, keyCount,
                    list)
            }
        }
        if error != RD_KAFKA_RESP_ERR_NO_ERROR { rd_kafka_headers_destroy(list) }
        return error
    }

    private func waitForDeliveries() throws {
        while tracker.pending > 0 {
            rd_kafka_poll(handle, 50)
        }
        let failures = tracker.takeFailures()
        if !failures.messages.isEmpty {
            throw KafkaError(.delivery, failures.messages.joined(separator: "; "), rdKafkaError: failures.code)
        }
    }
}

private func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeMutableRawPointer?, Int) -> R) -> R {
    guard let bytes else { return body(nil, 0) }
    // An empty but present key or value needs a non-NULL pointer: NULL means "absent".
    var copy = bytes.isEmpty ? [0] : bytes
    if bytes.isEmpty { return copy.withUnsafeMutableBytes { body($0.baseAddress, 0) } }
    return copy.withUnsafeMutableBytes { body($0.baseAddress, $0.count) }
}

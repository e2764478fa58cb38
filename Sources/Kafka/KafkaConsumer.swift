import CRdKafka
import Synchronization

/// What the consumer asks of its owner when the group assigns or revokes partitions.
public struct KafkaRebalanceHandler: Sendable {
    /// Returns where each newly assigned partition starts, or `nil` when that can't be known
    /// now: the partitions are then assigned paused, and the owner calls
    /// ``KafkaConsumer/assign(_:)`` once it knows.
    public var assigned: @Sendable ([KafkaTopicPartition]) -> [KafkaTopicPartitionOffset]?
    public var revoked: @Sendable ([KafkaTopicPartition]) -> Void

    public init(
        assigned: @escaping @Sendable ([KafkaTopicPartition]) -> [KafkaTopicPartitionOffset]?,
        revoked: @escaping @Sendable ([KafkaTopicPartition]) -> Void
    ) {
        self.assigned = assigned
        self.revoked = revoked
    }
}

/// Context handed to librdkafka's rebalance callback.
final class RebalanceContext: Sendable {
    let handler: KafkaRebalanceHandler
    let lastError = Mutex<KafkaError?>(nil)
    init(handler: KafkaRebalanceHandler) { self.handler = handler }
}

/// A consumer group member with manual offsets: it never commits on its own, starts each
/// assigned partition where the ``KafkaRebalanceHandler`` says, and hands out copied messages.
/// Use it from one thread.
public final class KafkaConsumer {
    let handle: OpaquePointer
    private let context: RebalanceContext
    private var closed = false
    let copiedHeaders: [String]
    /// The last non-fatal error the client reported (broker down, and so on).
    public private(set) var lastTransientError: KafkaError?

    public init(configuration: KafkaConsumerConfiguration, rebalance: KafkaRebalanceHandler) throws {
        let context = RebalanceContext(handler: rebalance)
        copiedHeaders = configuration.copiedHeaders
        let conf = try makeConf(configuration.librdkafkaProperties)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        rd_kafka_conf_set_rebalance_cb(conf) { rk, err, list, opaque in
            guard let rk, let opaque else { return }
            let context = Unmanaged<RebalanceContext>.fromOpaque(opaque).takeUnretainedValue()
            let affected = partitions(of: list)
            if err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
                if let offsets = context.handler.assigned(affected) {
                    let entries = offsets.map { ($0.topicPartition, Optional($0.offset.rawValue)) }
                    let result = try? withPartitionList(entries) { rd_kafka_assign(rk, $0) }
                    if result != RD_KAFKA_RESP_ERR_NO_ERROR {
                        context.lastError.withLock {
                            $0 = KafkaError(.assignment, "assign failed: \(result.map(KafkaError.describe) ?? "list")")
                        }
                    }
                } else {
                    // Assigned but held: nothing is fetched until the owner assigns offsets.
                    rd_kafka_assign(rk, list)
                    if let list { rd_kafka_pause_partitions(rk, list) }
                }
            } else {
                context.handler.revoked(affected)
                rd_kafka_assign(rk, nil)
            }
        }
        let handle = try makeClient(type: RD_KAFKA_CONSUMER, conf: conf)
        rd_kafka_poll_set_consumer(handle)
        self.handle = handle
        self.context = context
    }

    /// Set when a bounded close gave up: destroying must not try to close again.
    private var closeAbandoned = false

    deinit {
        close()
        rd_kafka_destroy_flags(handle, closeAbandoned ? RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE : 0)
    }

    /// Leaves the group cleanly so the next member doesn't wait for a session timeout. With a
    /// timeout, gives up after it (a broker that doesn't answer can't hold a shutdown): the group
    /// then notices the member's absence by its session timeout.
    public func close(timeoutMilliseconds: Int? = nil) {
        guard !closed else { return }
        closed = true
        guard let timeoutMilliseconds, let queue = rd_kafka_queue_new(handle) else {
            rd_kafka_consumer_close(handle)
            return
        }
        defer { rd_kafka_queue_destroy(queue) }
        if let error = rd_kafka_consumer_close_queue(handle, queue) {
            rd_kafka_error_destroy(error)
            closeAbandoned = true
            return
        }
        let deadline = ContinuousClock.now + .milliseconds(timeoutMilliseconds)
        // The close queue hands the final revocation over as an event: closing, nothing is
        // kept, so it is answered by dropping the assignment.
        while rd_kafka_consumer_closed(handle) == 0, ContinuousClock.now < deadline {
            guard let event = rd_kafka_queue_poll(queue, 50) else { continue }
            if rd_kafka_event_type(event) == RD_KAFKA_EVENT_REBALANCE { rd_kafka_assign(handle, nil) }
            rd_kafka_event_destroy(event)
        }
        closeAbandoned = rd_kafka_consumer_closed(handle) == 0
    }

    public func subscribe(topics: [String]) throws {
        let entries = topics.map { (KafkaTopicPartition(topic: $0, partition: RD_KAFKA_PARTITION_UA), Int64?.none) }
        let err = try withPartitionList(entries) { rd_kafka_subscribe(handle, $0) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(.subscription, err, context: "subscribe \(topics)")
        }
    }

    /// Waits up to `timeoutMilliseconds` for the next message; serves rebalances meanwhile.
    public func poll(timeoutMilliseconds: Int32) throws -> KafkaMessage? {
        if let error = context.lastError.withLock({ e -> KafkaError? in
            defer { e = nil }
            return e
        }) {
            throw error
        }
        guard let raw = rd_kafka_consumer_poll(handle, timeoutMilliseconds) else { return nil }
        defer { rd_kafka_message_destroy(raw) }
        let message = raw.pointee
        if message.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            if message.err == RD_KAFKA_RESP_ERR__PARTITION_EOF { return nil }
            let detail =
                message.payload.map {
                    String(decoding: UnsafeRawBufferPointer(start: $0, count: message.len), as: UTF8.self)
                } ?? ""
            let error = KafkaError(.consume, message.err, context: detail.isEmpty ? "consume" : detail)
            if message.err == RD_KAFKA_RESP_ERR__FATAL {
                throw KafkaError(.fatal, error.message, rdKafkaError: error.rdKafkaError)
            }
            lastTransientError = error
            return nil
        }
        return KafkaMessage(copying: raw, headers: copiedHeaders)
    }

    /// Replaces the assignment: each partition (re)starts at the given offset and is resumed.
    /// Messages fetched for an earlier assignment are discarded by librdkafka.
    public func assign(_ offsets: [KafkaTopicPartitionOffset]) throws {
        let entries = offsets.map { ($0.topicPartition, Optional($0.offset.rawValue)) }
        try withPartitionList(entries) { list in
            let err = rd_kafka_assign(handle, list)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(.assignment, err, context: "assign") }
            let resumed = rd_kafka_resume_partitions(handle, list)
            guard resumed == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError(.assignment, resumed, context: "resume")
            }
        }
    }

    /// Moves assigned partitions to new offsets without changing the assignment.
    public func seek(_ offsets: [KafkaTopicPartitionOffset], timeoutMilliseconds: Int32 = 10_000) throws {
        let entries = offsets.map { ($0.topicPartition, Optional($0.offset.rawValue)) }
        try withPartitionList(entries) { list in
            if let error = rd_kafka_seek_partitions(handle, list, timeoutMilliseconds) {
                let code = rd_kafka_error_code(error)
                rd_kafka_error_destroy(error)
                throw KafkaError(.offsets, code, context: "seek")
            }
            for index in 0..<Int(list.pointee.cnt) {
                let element = list.pointee.elems[index]
                if element.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    throw KafkaError(
                        .offsets, element.err, context: "seek \(String(cString: element.topic))[\(element.partition)]")
                }
            }
        }
    }

    /// The partitions currently assigned to this member.
    public func assignment() throws -> [KafkaTopicPartition] {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        let err = rd_kafka_assignment(handle, &list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(.assignment, err, context: "assignment") }
        defer { if let list { rd_kafka_topic_partition_list_destroy(list) } }
        return partitions(of: list)
    }

    public func pause(_ partitionsToPause: [KafkaTopicPartition]) throws {
        try withPartitionList(partitionsToPause.map { ($0, nil) }) { list in
            let err = rd_kafka_pause_partitions(handle, list)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(.assignment, err, context: "pause") }
        }
    }

    public func resume(_ partitionsToResume: [KafkaTopicPartition]) throws {
        try withPartitionList(partitionsToResume.map { ($0, nil) }) { list in
            let err = rd_kafka_resume_partitions(handle, list)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(.assignment, err, context: "resume") }
        }
    }

    /// Asks the partition leader for its low and high watermarks.
    public func watermarks(_ tp: KafkaTopicPartition, timeoutMilliseconds: Int32) throws -> (low: Int64, high: Int64) {
        var low: Int64 = 0
        var high: Int64 = 0
        let err = rd_kafka_query_watermark_offsets(handle, tp.topic, tp.partition, &low, &high, timeoutMilliseconds)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(.offsets, err, context: "watermarks of \(tp)") }
        return (low, high)
    }

    /// The watermarks seen in the last fetch response, without a network call; `nil` until a
    /// fetch response for the partition arrived. Some Kafka-compatible brokers answer the
    /// ListOffsets query of ``watermarks(_:timeoutMilliseconds:)`` with the last batch's base
    /// offset + 1, so "caught up" decisions use these instead.
    public func cachedWatermarks(_ tp: KafkaTopicPartition) -> (low: Int64?, high: Int64)? {
        var low: Int64 = -1
        var high: Int64 = -1
        let err = rd_kafka_get_watermark_offsets(handle, tp.topic, tp.partition, &low, &high)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, high >= 0 else { return nil }
        return (low >= 0 ? low : nil, high)
    }

    /// Commits next offsets to the group; waits for the broker's answer unless `asynchronous`.
    public func commit(_ offsets: [KafkaTopicPartition: Int64], asynchronous: Bool = false) throws {
        guard !offsets.isEmpty else { return }
        try withPartitionList(offsets.map { ($0.key, Optional($0.value)) }) { list in
            let err = rd_kafka_commit(handle, list, asynchronous ? 1 : 0)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(.offsets, err, context: "commit") }
        }
    }
}

extension KafkaMessage {
    /// A Swift copy of a consumed message with the headers named (the caller still destroys `raw`).
    init(copying raw: UnsafeMutablePointer<rd_kafka_message_t>, headers names: [String] = []) {
        let message = raw.pointee
        let topic = message.rkt.flatMap { rd_kafka_topic_name($0) }.map { String(cString: $0) } ?? ""
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(raw, &timestampType)
        self.init(
            topic: topic, partition: message.partition, offset: message.offset,
            value: copyBytes(message.payload, message.len),
            key: copyBytes(message.key, message.key_len),
            timestampMilliseconds: timestampType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp,
            headers: names.isEmpty ? [] : Self.copyHeaders(raw, names))
    }

    private static func copyHeaders(_ raw: UnsafeMutablePointer<rd_kafka_message_t>, _ names: [String]) -> [KafkaHeader]
    {
        var list: OpaquePointer?
        guard rd_kafka_message_headers(raw, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return [] }
        var found: [KafkaHeader] = []
        for name in names {
            var value: UnsafeRawPointer?
            var size = 0
            guard rd_kafka_header_get_last(list, name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
            found.append(
                KafkaHeader(
                    name: name, value: value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []))
        }
        return found
    }
}

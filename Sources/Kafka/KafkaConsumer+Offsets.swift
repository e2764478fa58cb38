import CRdKafka

/// What one poll of a partition reader gave.
public enum KafkaPollEvent: Sendable {
    case message(KafkaMessage)
    /// The partition has no message at or after `next` (needs `enable.partition.eof=true`).
    case partitionEnd(KafkaTopicPartition, next: Int64)
    case nothing
}

extension KafkaConsumer {
    /// The group's committed next offsets; partitions without one are absent.
    public func committed(_ partitions: [KafkaTopicPartition], timeoutMilliseconds: Int32 = 10_000) throws
        -> [KafkaTopicPartition: Int64]
    {
        guard !partitions.isEmpty else { return [:] }
        return try withPartitionList(partitions.map { ($0, Int64?.none) }) { list in
            let err = rd_kafka_committed(handle, list, timeoutMilliseconds)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(.offsets, err, context: "committed") }
            var result: [KafkaTopicPartition: Int64] = [:]
            for (index, tp) in KafkaTopicPartition.list(list).enumerated() {
                let element = list.pointee.elems[index]
                guard element.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    throw KafkaError(.offsets, element.err, context: "committed offset of \(tp)")
                }
                if element.offset >= 0 { result[tp] = element.offset }
            }
            return result
        }
    }

    /// Per partition, the broker's earliest offset whose timestamp is at or after the given
    /// milliseconds since the epoch; nil when no message is that recent.
    public func offsetsForTimes(_ times: [KafkaTopicPartition: Int64], timeoutMilliseconds: Int32 = 10_000) throws
        -> [KafkaTopicPartition: Int64?]
    {
        guard !times.isEmpty else { return [:] }
        return try withPartitionList(times.map { ($0.key, Optional($0.value)) }) { list in
            let err = rd_kafka_offsets_for_times(handle, list, timeoutMilliseconds)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError(.offsets, err, context: "offsets for times")
            }
            var result: [KafkaTopicPartition: Int64?] = [:]
            for (index, tp) in KafkaTopicPartition.list(list).enumerated() {
                let element = list.pointee.elems[index]
                guard element.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    throw KafkaError(.offsets, element.err, context: "offset for time of \(tp)")
                }
                result[tp] = element.offset >= 0 ? element.offset : nil
            }
            return result
        }
    }

    /// One poll that tells a partition's end apart from "nothing yet" (the consumer needs
    /// `enable.partition.eof=true`).
    public func pollEvent(timeoutMilliseconds: Int32) throws -> KafkaPollEvent {
        guard let raw = rd_kafka_consumer_poll(handle, timeoutMilliseconds) else { return .nothing }
        defer { rd_kafka_message_destroy(raw) }
        let message = raw.pointee
        if message.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
            let topic = message.rkt.flatMap { rd_kafka_topic_name($0) }.map { String(cString: $0) } ?? ""
            return .partitionEnd(KafkaTopicPartition(topic: topic, partition: message.partition), next: message.offset)
        }
        guard message.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(.consume, message.err, context: "read")
        }
        return .message(KafkaMessage(copying: raw, headers: copiedHeaders))
    }
}

extension KafkaTopicPartition {
    static func list(_ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> [KafkaTopicPartition] {
        partitions(of: UnsafePointer(list))
    }
}

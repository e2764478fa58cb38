import BTEStore
import Dispatch
import Kafka

/// Reads a group's positions and its partitions' bounds from the broker, without joining the
/// group: a consumer with the group's id that only assigns, reads and (on execute) commits.
///
/// Some Kafka-compatible brokers answer ListOffsets wrongly (the last batch's base offset + 1
/// for the end, offset 0 for any instant), so ends are read from the partition itself and a
/// broker's answer for an instant is checked against the messages' timestamps before it is
/// used.
final class OffsetInspector {
    private let consumer: KafkaConsumer
    private let admin: KafkaAdmin
    private let timeoutMilliseconds: Int32

    init(brokers: String, properties: [String: String], group: String, timeoutMilliseconds: Int32 = 10_000) throws {
        self.timeoutMilliseconds = timeoutMilliseconds
        // A one-shot command reports an unreachable broker in its own words, once; librdkafka
        // would log every reconnect attempt on stderr.
        let quiet = ["log_level": "2"].merging(properties) { $1 }
        var configuration = KafkaConsumerConfiguration(
            client: KafkaClientConfiguration(
                brokers: brokers, properties: quiet.merging(["enable.partition.eof": "true"]) { $1 }),
            groupID: group)
        configuration.fetchWaitMaxMilliseconds = 20
        consumer = try KafkaConsumer(
            configuration: configuration, rebalance: KafkaRebalanceHandler(assigned: { _ in nil }, revoked: { _ in }))
        admin = try KafkaAdmin(configuration: KafkaClientConfiguration(brokers: brokers, properties: quiet))
    }

    deinit { consumer.close(timeoutMilliseconds: 2_000) }

    /// The group as its coordinator sees it (nil: unknown to the cluster).
    func groupState(_ group: String) throws -> KafkaGroupState? { try admin.group(group) }

    /// Every selected partition, in order; a topic the cluster doesn't know is an error.
    func partitions(_ selections: [TopicSelection]) throws -> [KafkaTopicPartition] {
        let counts = try admin.topicPartitionCounts(timeoutMilliseconds: timeoutMilliseconds)
        var result: [KafkaTopicPartition] = []
        for selection in selections {
            guard let count = counts[selection.topic] else {
                throw OperationsError(.unknownTopic, "topic \(selection.topic) does not exist on the cluster")
            }
            let all = (0..<Int32(count))
            if let wanted = selection.partitions {
                if let missing = wanted.first(where: { !all.contains($0) }) {
                    throw OperationsError(
                        .unknownTopic, "topic \(selection.topic) has partitions 0–\(count - 1), not \(missing)")
                }
                result += wanted.map { KafkaTopicPartition(topic: selection.topic, partition: $0) }
            } else {
                result += all.map { KafkaTopicPartition(topic: selection.topic, partition: $0) }
            }
        }
        return Array(Set(result)).sorted()
    }

    /// The group's committed next offsets in Kafka.
    func committed(_ partitions: [KafkaTopicPartition]) throws -> [KafkaTopicPartition: Int64] {
        try consumer.committed(partitions, timeoutMilliseconds: timeoutMilliseconds)
    }

    /// Low and end offsets, the end as the partition itself reports it when read.
    func bounds(_ partitions: [KafkaTopicPartition]) throws -> [KafkaTopicPartition: (low: Int64, end: Int64)] {
        var reported: [KafkaTopicPartition: (low: Int64, high: Int64)] = [:]
        for tp in partitions { reported[tp] = try consumer.watermarks(tp, timeoutMilliseconds: timeoutMilliseconds) }
        guard !partitions.isEmpty else { return [:] }
        // Read from just before the reported end up to the partition's end.
        try consumer.assign(
            partitions.map { tp in
                let (low, high) = reported[tp] ?? (0, 0)
                return KafkaTopicPartitionOffset(tp, offset: .exactly(max(low, high - 1)))
            })
        var ends: [KafkaTopicPartition: Int64] = [:]
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeoutMilliseconds) * 1_000_000
        while ends.count < partitions.count {
            guard DispatchTime.now().uptimeNanoseconds < deadline else {
                let missing = partitions.filter { ends[$0] == nil }.map(\.description).joined(separator: ", ")
                throw OperationsError(.unreadable, "no end offset from the broker for \(missing)")
            }
            switch try consumer.pollEvent(timeoutMilliseconds: 100) {
            case .partitionEnd(let tp, let next): ends[tp] = max(ends[tp] ?? 0, next)
            case .message, .nothing: break  // the end event follows the last message
            }
        }
        try consumer.assign([])
        var result: [KafkaTopicPartition: (low: Int64, end: Int64)] = [:]
        for tp in partitions {
            let (low, high) = reported[tp] ?? (0, 0)
            result[tp] = (low, max(high, ends[tp] ?? high))
        }
        return result
    }

    /// The timestamp (ms) of the message at `offset`, or nil at the end.
    func timestamp(_ tp: KafkaTopicPartition, at offset: Int64) throws -> Int64? {
        try consumer.assign([KafkaTopicPartitionOffset(tp, offset: .exactly(offset))])
        defer { try? consumer.assign([]) }
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeoutMilliseconds) * 1_000_000
        while DispatchTime.now().uptimeNanoseconds < deadline {
            switch try consumer.pollEvent(timeoutMilliseconds: 100) {
            case .message(let message) where message.topicPartition == tp && message.offset >= offset:
                return message.timestampMilliseconds ?? 0
            case .partitionEnd(let end, _) where end == tp: return nil
            default: continue
            }
        }
        throw OperationsError(.unreadable, "no message or end from the broker for \(tp) at \(offset)")
    }

    /// Per partition, the first offset whose message is at or after `instant` (ms); nil when
    /// none is. The broker's answer is used when the messages around it confirm it; otherwise
    /// the offset is found by binary search over the messages' timestamps (which assumes they
    /// grow with the offset, as producer timestamps do within a partition).
    func offsets(
        at instant: Int64, _ partitions: [KafkaTopicPartition], bounds: [KafkaTopicPartition: (low: Int64, end: Int64)]
    ) throws -> [KafkaTopicPartition: Int64?] {
        let answered = try consumer.offsetsForTimes(
            Dictionary(uniqueKeysWithValues: partitions.map { ($0, instant) }), timeoutMilliseconds: timeoutMilliseconds
        )
        var result: [KafkaTopicPartition: Int64?] = [:]
        for tp in partitions {
            let (low, end) = bounds[tp] ?? (0, 0)
            let candidate = min(max((answered[tp] ?? nil) ?? end, low), end)
            if try confirms(tp, candidate, instant: instant, low: low, end: end) {
                result[tp] = candidate < end ? candidate : nil
                continue
            }
            // First offset in [low, end) with timestamp ≥ instant.
            var (lo, hi) = (low, end)
            while lo < hi {
                let mid = lo + (hi - lo) / 2
                if let stamp = try timestamp(tp, at: mid), stamp < instant { lo = mid + 1 } else { hi = mid }
            }
            result[tp] = lo < end ? lo : nil
        }
        return result
    }

    private func confirms(_ tp: KafkaTopicPartition, _ offset: Int64, instant: Int64, low: Int64, end: Int64) throws
        -> Bool
    {
        if offset < end {
            guard let stamp = try timestamp(tp, at: offset), stamp >= instant else { return false }
        }
        if offset > low {
            guard let before = try timestamp(tp, at: offset - 1), before < instant else { return false }
        }
        return true
    }

    /// Commits next offsets for the group (refused by the broker while it has members).
    func commit(_ offsets: [KafkaTopicPartition: Int64]) throws { try consumer.commit(offsets) }
}

extension [KafkaPartitionKey: Int64] {
    /// The stored offsets of these partitions (those that have one).
    func offsets(of partitions: [KafkaTopicPartition]) -> [KafkaTopicPartition: Int64] {
        [KafkaTopicPartition: Int64](
            uniqueKeysWithValues: partitions.compactMap { tp in
                self[KafkaPartitionKey(topic: tp.topic, partition: tp.partition)].map { (tp, $0) }
            })
    }
}

/// A partition of a topic.
public struct KafkaTopicPartition: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let topic: String
    public let partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)[\(partition)]" }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.topic, lhs.partition) < (rhs.topic, rhs.partition)
    }
}

/// Where to start reading a partition.
public enum KafkaOffset: Hashable, Sendable {
    case beginning
    case end
    /// The group's committed offset (the reset policy applies when there is none).
    case committed
    case exactly(Int64)
}

/// A partition together with the offset to start reading from.
public struct KafkaTopicPartitionOffset: Hashable, Sendable {
    public let topicPartition: KafkaTopicPartition
    public let offset: KafkaOffset

    public init(_ topicPartition: KafkaTopicPartition, offset: KafkaOffset) {
        self.topicPartition = topicPartition
        self.offset = offset
    }
}

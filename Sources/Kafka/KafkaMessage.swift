/// A message read from a partition. Payload and key are copied out of librdkafka's buffers, so
/// the value outlives the C message.
public struct KafkaMessage: Sendable {
    public let topic: String
    public let partition: Int32
    public let offset: Int64
    /// `nil` for a tombstone (a message with a null value).
    public let value: [UInt8]?
    /// `nil` when the message has no key.
    public let key: [UInt8]?
    /// Milliseconds since the epoch, when the broker reported a timestamp.
    public let timestampMilliseconds: Int64?
    /// The headers the consumer was asked to copy (`KafkaConsumerConfiguration.copiedHeaders`),
    /// the last value of each name the message carries; none by default, at no cost.
    public let headers: [KafkaHeader]

    public init(
        topic: String, partition: Int32, offset: Int64, value: [UInt8]?, key: [UInt8]?,
        timestampMilliseconds: Int64? = nil, headers: [KafkaHeader] = []
    ) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.value = value
        self.key = key
        self.timestampMilliseconds = timestampMilliseconds
        self.headers = headers
    }

    /// The value of header `name`, if it was copied and the message has it.
    public func header(_ name: String) -> [UInt8]? { headers.last { $0.name == name }?.value }

    public var topicPartition: KafkaTopicPartition { KafkaTopicPartition(topic: topic, partition: partition) }
}

/// A message to produce.
public struct KafkaOutgoingMessage: Sendable {
    public let topic: String
    public let key: [UInt8]?
    public let value: [UInt8]?
    /// `nil` lets the partitioner choose from the key.
    public let partition: Int32?
    public let headers: [KafkaHeader]

    public init(
        topic: String, key: [UInt8]?, value: [UInt8]?, partition: Int32? = nil, headers: [KafkaHeader] = []
    ) {
        self.topic = topic
        self.key = key
        self.value = value
        self.partition = partition
        self.headers = headers
    }
}

/// A record header: a name and bytes (a null value is not kept apart from an empty one).
public struct KafkaHeader: Sendable, Equatable {
    public let name: String
    public let value: [UInt8]

    public init(name: String, value: [UInt8]) {
        self.name = name
        self.value = value
    }
}

/// Settings shared by every client: the brokers plus any librdkafka property.
public struct KafkaClientConfiguration: Sendable {
    /// Comma-separated `host:port` list.
    public var brokers: String
    /// Extra librdkafka properties (`name` → `value`), applied last so they win.
    public var properties: [String: String]

    public init(brokers: String, properties: [String: String] = [:]) {
        self.brokers = brokers
        self.properties = properties
    }

    func librdkafkaProperties(base: [(String, String)]) -> [(String, String)] {
        var all = [("bootstrap.servers", brokers)] + base
        for key in properties.keys.sorted() {
            all.append((key, properties[key] ?? ""))
        }
        return all
    }
}

/// A producer's settings. Defaults: idempotent, `acks=all`, LZ4.
public struct KafkaProducerConfiguration: Sendable {
    public var client: KafkaClientConfiguration
    /// Idempotent producers never duplicate or reorder a message on internal retries.
    public var idempotent: Bool = true
    /// How long a message may wait for delivery before its report says it failed.
    public var messageTimeoutMilliseconds: Int = 30_000
    public var lingerMilliseconds: Int = 5

    public init(client: KafkaClientConfiguration) {
        self.client = client
    }

    var librdkafkaProperties: [(String, String)] {
        client.librdkafkaProperties(base: [
            ("enable.idempotence", idempotent ? "true" : "false"),
            ("acks", "all"),
            ("compression.codec", "lz4"),
            ("message.timeout.ms", String(messageTimeoutMilliseconds)),
            ("linger.ms", String(lingerMilliseconds)),
        ])
    }
}

/// A consumer group member's settings. Offsets are never committed automatically: the caller
/// decides where each partition starts.
public struct KafkaConsumerConfiguration: Sendable {
    public var client: KafkaClientConfiguration
    public var groupID: String
    /// librdkafka's default is 45 s; a small broker joins a group in about half of it.
    public var sessionTimeoutMilliseconds: Int = 45_000
    /// Where to start when a partition's offset is out of range.
    public var offsetResetEarliest: Bool = true
    public var maxPartitionFetchBytes: Int = 1_048_576
    /// Static membership (`group.instance.id`): a member restarted under the same id gets its
    /// partitions back without a rebalance, on brokers that support it. Nil: dynamic.
    public var groupInstanceID: String?
    /// Bound of the prefetched messages held in the consumer's queue, in KiB (all partitions).
    public var queuedMaxKilobytes: Int = 65_536
    /// Largest fetch response, in bytes.
    public var fetchMaxBytes: Int = 52_428_800
    /// How long the broker may hold a fetch that finds no new data (`fetch.wait.max.ms`). Brokers
    /// that answer only when it runs out, rather than when data arrives, add up to this much
    /// latency to every message.
    public var fetchWaitMaxMilliseconds: Int = 500
    /// Header names whose values consumed messages carry (`KafkaMessage.headers`); the others
    /// are not read.
    public var copiedHeaders: [String] = []

    public init(client: KafkaClientConfiguration, groupID: String) {
        self.client = client
        self.groupID = groupID
    }

    var librdkafkaProperties: [(String, String)] {
        client.librdkafkaProperties(
            base: [
                ("group.id", groupID),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("auto.offset.reset", offsetResetEarliest ? "earliest" : "latest"),
                ("session.timeout.ms", String(sessionTimeoutMilliseconds)),
                ("heartbeat.interval.ms", String(max(sessionTimeoutMilliseconds / 6, 100))),
                ("max.partition.fetch.bytes", String(maxPartitionFetchBytes)),
                // Keep fetching ahead while the caller writes: with a shallow prefetch the consumer
                // waited a broker round trip between batches (ingest 39k → 52–61k events/s).
                ("queued.min.messages", "100000"),
                ("queued.max.messages.kbytes", String(queuedMaxKilobytes)),
                ("fetch.max.bytes", String(fetchMaxBytes)),
                ("fetch.wait.max.ms", String(fetchWaitMaxMilliseconds)),
            ] + (groupInstanceID.map { [("group.instance.id", $0)] } ?? []))
    }
}

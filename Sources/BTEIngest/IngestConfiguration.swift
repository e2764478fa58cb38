import BTEDomain
import BTEWorker
import Kafka

/// Everything `bte ingest` needs. Defaults are the documented production values.
public struct IngestConfiguration: Sendable {
    public var brokers: String
    public var databaseURL: String
    public var group = "bte-ingest"
    /// Prepended to every topic name (input and dead-letter); empty in production.
    public var topicPrefix = ""
    /// Largest batch, in messages.
    public var maxBatchMessages = 10_000
    /// Largest batch, in bytes of keys and values (a batch closes once it reaches this). With
    /// the writers' queues, at most (writers × batchesQueuedPerWriter + 1) batches are held, so
    /// this bounds the bytes in flight whatever the size of the messages.
    public var maxBatchBytes = IngestConfiguration.defaultMaxBatchBytes
    public static let defaultMaxBatchBytes = 8 << 20
    /// Messages fetched ahead of the batches, in KiB (librdkafka's queue of the consumer).
    public var prefetchKilobytes = 16_384
    /// Parallel writers, each with its own PostgreSQL connection; partitions are spread over them.
    public var writers = 2
    /// Batches a writer may have queued (written in order, one transaction each). Brokers hand
    /// out long runs of one partition; a queue lets the poller reach the other writers' data
    /// while one writer works through a run.
    public var batchesQueuedPerWriter = 4
    /// How long a batch may wait to fill before it is written.
    public var maxBatchWaitMilliseconds = 250
    /// After this long since a batch's first message, the batch is written as soon as no
    /// fetched message is waiting (the input is not saturated).
    public var lingerMilliseconds = 5
    /// The consumer's `fetch.wait.max.ms`: short, so that a broker holding an empty fetch to its
    /// end delays no message by more (an idle consumer then fetches 50 times a second).
    public var fetchWaitMilliseconds = 20
    public var sessionTimeoutMilliseconds = 45_000
    /// Static group membership id (`--instance-id`); nil for dynamic membership.
    public var instanceID: String?
    public var limits = ValidationLimits()
    /// Exit once every assigned partition is caught up.
    public var untilIdle = false
    /// Backoff between retries of an unavailable PostgreSQL or broker.
    public var retryInitialMilliseconds = 250
    public var retryMaxMilliseconds = 10_000
    /// At shutdown, how long to wait for the batch in flight and for leaving the group before
    /// exiting anyway (nothing unwritten is committed either way).
    public var shutdownGraceMilliseconds = 3_000
    /// Extra librdkafka properties for both the consumer and the dead-letter producer.
    public var kafkaProperties: [String: String] = [:]
    /// Where the worker reports whether it can ingest now (for `/readyz`), as `ingest`.
    public var readiness: Readiness?

    public init(brokers: String, databaseURL: String) {
        self.brokers = brokers
        self.databaseURL = databaseURL
    }

    /// librdkafka's `message.max.bytes` unless `kafkaProperties` set it.
    public static let defaultProducerMaxMessageBytes = 1_000_000
    /// Room left under the producer's limit for what librdkafka and the broker add to a record
    /// (framing, batch header): a few hundred bytes, with plenty to spare.
    public static let deadLetterMarginBytes = 16_384

    /// Largest dead-letter record (key plus value) ingest produces; larger payloads are cut
    /// (their full bytes stay in `bte.rejected_events`). Set `message.max.bytes` in
    /// `kafkaProperties` if the broker's or topic's limit is lower than the producer's.
    public var deadLetterMaxRecordBytes: Int {
        let limit = kafkaProperties["message.max.bytes"].flatMap { Int($0) } ?? Self.defaultProducerMaxMessageBytes
        return limit - min(Self.deadLetterMarginBytes, limit / 4)
    }

    public var deadLetterTopic: String { OutputTopic.deadLetter.name(prefix: topicPrefix) }

    public func topic(_ kind: InputKind) -> String { kind.name(prefix: topicPrefix) }

    public func kind(ofTopic topic: String) -> InputKind? {
        InputKind.allCases.first { self.topic($0) == topic }
    }
}

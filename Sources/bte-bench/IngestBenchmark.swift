import BTEDomain
import BTEFixtures
import BTEIngest
import BTEStore
import BTEWorker
import Dispatch
import Foundation
import Kafka
import Logging
import Postgres

/// Loads the same generated interaction events by raw COPY (one and two connections) and
/// through `bte ingest` from the broker, each into a fresh database, and reports events/s.
public struct IngestBenchmark: Sendable {
    public struct Result: Sendable {
        public var events = 0
        public var averageMessageBytes = 0
        public var copyOneConnection = 0.0
        public var copyTwoConnections = 0.0
        public var ingest = 0.0
        public var ingestBatches = 0

        public var bestCopy: Double { max(copyOneConnection, copyTwoConnections) }
        public var ratio: Double { bestCopy > 0 ? ingest / bestCopy : 0 }

        public func render() -> String {
            func rate(_ value: Double) -> String { String(Int(value.rounded())).leftPad(9, " ") + " events/s" }
            return """
                events: \(events) interaction events, \(averageMessageBytes) bytes of JSON on average
                raw COPY, 1 connection : \(rate(copyOneConnection))
                raw COPY, 2 connections: \(rate(copyTwoConnections))
                bte ingest (from broker): \(rate(ingest))  (\(ingestBatches) batches)
                ratio ingest / best raw COPY: \(String(format: "%.2f", ratio))
                """
        }
    }

    public var events = 200_000
    public var brokers: String
    /// URL of a role that may create databases (any database of the cluster).
    public var adminURL: String
    public var partitions: Int32 = 6
    public var batchSize = 10_000
    public var writers = 2
    public var sessionTimeoutMilliseconds = 6_000
    public var logger: Logger

    public init(brokers: String, adminURL: String, logger: Logger) {
        self.brokers = brokers
        self.adminURL = adminURL
        self.logger = logger
    }

    public func run() throws -> Result {
        var options = DemoStream.Options()
        options.events = events
        options.interactionShare = 1.0
        options.duplicateEvery = 0
        options.badRounds = 0
        options.topicPrefix = "bench\(UInt32.random(in: 0...UInt32.max))."
        let stream = DemoStream(options: options)
        var result = Result()
        result.events = stream.messages.count
        result.averageMessageBytes =
            stream.messages.reduce(0) { $0 + ($1.value?.count ?? 0) } / max(stream.messages.count, 1)

        // The prepared file: exactly the rows ingest appends.
        let validator = RecordValidator()
        var records: [IncomingRecord] = []
        records.reserveCapacity(stream.messages.count)
        for (offset, message) in stream.messages.enumerated() {
            guard
                case .success(let record) = validator.validate(
                    kind: .interaction, key: message.key, value: message.value)
            else { continue }
            records.append(
                IncomingRecord(
                    record: record, source: SourcePosition(topic: message.topic, partition: 0, offset: Int64(offset)),
                    key: nil, value: nil))
        }
        let halves = [records[..<(records.count / 2)], records[(records.count / 2)...]]
        let file = try IngestStore.copyData(records[...])
        let halfFiles = try halves.map { try IngestStore.copyData($0) }
        let statement = IngestStore.copyStatement(for: .interactionEvents)

        result.copyOneConnection = try withScratchDatabase(adminURL: adminURL, "copy1") { url in
            try IngestStore(url: url, group: "bench").ensurePartitions(for: records)
            let connection = try PostgresConnection(url: url)
            let started = DispatchTime.now()
            try connection.copyIn(statement, data: file)
            return Double(records.count) / seconds(since: started)
        }
        logger.info("raw COPY, 1 connection done")

        result.copyTwoConnections = try withScratchDatabase(adminURL: adminURL, "copy2") { url in
            try IngestStore(url: url, group: "bench").ensurePartitions(for: records)
            let connections = try (0..<2).map { _ in try PostgresConnection(url: url) }
            let failures = FailureBox()
            let started = DispatchTime.now()
            let group = DispatchGroup()
            for index in 0..<2 {
                let connection = UncheckedBox(connections[index])
                let data = halfFiles[index]
                group.enter()
                Thread {
                    do { try connection.value.copyIn(statement, data: data) } catch { failures.record(error) }
                    group.leave()
                }.start()
            }
            group.wait()
            if let error = failures.first { throw error }
            return Double(records.count) / seconds(since: started)
        }
        logger.info("raw COPY, 2 connections done")

        let (rate, batches) = try withScratchDatabase(adminURL: adminURL, "ingest") { url -> (Double, Int) in
            let admin = try KafkaAdmin(configuration: KafkaClientConfiguration(brokers: brokers))
            _ = try admin.createTopics(
                (InputKind.allCases.map(\.rawValue) + [OutputTopic.deadLetter.rawValue]).map {
                    KafkaNewTopic(name: options.topicPrefix + $0, partitions: partitions, replicationFactor: 1)
                })
            let producer = try KafkaProducer(
                configuration: KafkaProducerConfiguration(client: KafkaClientConfiguration(brokers: brokers)))
            var index = 0
            while index < stream.messages.count {
                let end = min(index + 20_000, stream.messages.count)
                try producer.send(Array(stream.messages[index..<end]))
                index = end
            }
            logger.info("produced \(stream.messages.count) messages")
            var configuration = IngestConfiguration(brokers: brokers, databaseURL: with(url, user: "bte_ingest"))
            configuration.topicPrefix = options.topicPrefix
            configuration.group = options.topicPrefix + "ingest"
            configuration.untilIdle = true
            configuration.maxBatchMessages = batchSize
            configuration.writers = writers
            configuration.sessionTimeoutMilliseconds = sessionTimeoutMilliseconds
            let summary = try IngestWorker(configuration: configuration, logger: logger).run(stop: StopSignal())
            guard summary.totalStored == records.count else {
                throw BenchmarkError(message: "ingest stored \(summary.totalStored) of \(records.count) events")
            }
            logger.notice(
                "ingest phases",
                metadata: [
                    "active_s": "\(summary.activeSeconds)", "validate_s": "\(summary.validateSeconds)",
                    "write_s": "\(summary.writeSeconds)", "poll_s": "\(summary.pollSeconds)",
                    "wait_s": "\(summary.waitSeconds)",
                ])
            return (Double(summary.consumed) / max(summary.activeSeconds, 1e-9), summary.batches)
        }
        result.ingest = rate
        result.ingestBatches = batches
        return result
    }
}

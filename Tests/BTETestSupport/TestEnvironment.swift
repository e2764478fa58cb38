import BTEStore
import Foundation
import Kafka
import Logging
import Postgres

/// Servers started by scripts/test.sh, found through the environment.
public enum TestEnvironment {
    static let env = ProcessInfo.processInfo.environment

    public struct Missing: Error, CustomStringConvertible {
        public let description: String
    }

    /// `postgresql://postgres@host:port` of the test cluster (a superuser).
    public static func postgresBaseURL() throws -> String {
        guard let url = env["BTE_TEST_PG_URL"] else {
            throw Missing(description: "BTE_TEST_PG_URL is not set: run the tests with scripts/test.sh")
        }
        return url
    }

    public static func brokers() throws -> String {
        guard let brokers = env["BTE_KAFKA_BROKERS"] else {
            throw Missing(description: "BTE_KAFKA_BROKERS is not set: run the tests with scripts/test.sh")
        }
        return brokers
    }

    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    public static func bteBinary() -> String {
        env["BTE_BIN"] ?? packageRoot.appendingPathComponent(".build/debug/bte").path
    }

    public static func uniqueName(_ prefix: String) -> String {
        prefix + String(UUID().uuidString.prefix(8)).lowercased()
    }

    public static let logger: Logger = {
        var logger = Logger(label: "bte.test")
        logger.logLevel = .warning
        return logger
    }()
}

/// A freshly created, migrated database that is dropped again by `drop()`.
public final class TestDatabase: @unchecked Sendable {
    public let name: String
    public let adminURL: String
    public let ingestURL: String
    public let readerURL: String
    private let baseURL: String

    public convenience init() throws { try self.init(cluster: try TestEnvironment.postgresBaseURL()) }

    /// A new migrated database in the cluster at `cluster` (`postgresql://postgres@host:port`);
    /// with `existing`, that database as it is (a restored copy, say): nothing created.
    public init(cluster: String, existing: String? = nil) throws {
        baseURL = cluster
        name = existing ?? TestEnvironment.uniqueName("bte_t_")
        adminURL = baseURL + "/" + name
        let hostPart = baseURL.replacingOccurrences(of: "postgres@", with: "")
        ingestURL = hostPart.replacingOccurrences(of: "postgresql://", with: "postgresql://bte_ingest@") + "/" + name
        readerURL = hostPart.replacingOccurrences(of: "postgresql://", with: "postgresql://bte_reader@") + "/" + name
        guard existing == nil else { return }
        let admin = try PostgresConnection(url: baseURL + "/postgres")
        try admin.execute("CREATE DATABASE \(name)")
        try Migrator().apply(url: adminURL)
    }

    public func admin() throws -> PostgresConnection { try PostgresConnection(url: adminURL) }

    /// First column of the first row as an integer.
    public func count(_ sql: String) throws -> Int {
        Int(try admin().execute(sql).rows.first?.first??.description ?? "") ?? -1
    }

    public func drop() {
        guard let admin = try? PostgresConnection(url: baseURL + "/postgres") else { return }
        _ = try? admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }
}

/// Topics with a unique prefix, so tests never share data.
public struct TestTopics: Sendable {
    public let prefix: String
    public let brokers: String

    public init(partitions: Int32 = 3) throws {
        prefix = TestEnvironment.uniqueName("t") + "."
        brokers = try TestEnvironment.brokers()
        let admin = try KafkaAdmin(configuration: KafkaClientConfiguration(brokers: brokers))
        let names = [
            "bte.interaction-events.v1", "bte.business-events.v1", "bte.intent-events.v1", "bte.dead-letter.v1",
        ]
        _ = try admin.createTopics(
            names.map { KafkaNewTopic(name: prefix + $0, partitions: partitions, replicationFactor: 1) })
    }

    public func produce(_ messages: [KafkaOutgoingMessage]) throws {
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(client: KafkaClientConfiguration(brokers: brokers)))
        var index = 0
        while index < messages.count {
            let end = min(index + 10_000, messages.count)
            try producer.send(Array(messages[index..<end]))
            index = end
        }
    }

    /// Reads every message of `topic` (all partitions, from the beginning) up to the high
    /// watermarks seen in fetch responses, without joining a group; with the `headers` named.
    public func readAll(_ topic: String, partitions: Int32 = 3, headers: [String] = []) throws -> [KafkaMessage] {
        var config = KafkaConsumerConfiguration(
            client: KafkaClientConfiguration(brokers: brokers), groupID: TestEnvironment.uniqueName("reader-"))
        config.sessionTimeoutMilliseconds = 6_000
        config.copiedHeaders = headers
        let consumer = try KafkaConsumer(
            configuration: config, rebalance: KafkaRebalanceHandler(assigned: { _ in nil }, revoked: { _ in }))
        let tps = (0..<partitions).map { KafkaTopicPartition(topic: topic, partition: $0) }
        try consumer.assign(tps.map { KafkaTopicPartitionOffset($0, offset: .beginning) })
        var next: [KafkaTopicPartition: Int64] = [:]
        var messages: [KafkaMessage] = []
        let deadline = Date().addingTimeInterval(60)
        func done() -> Bool {
            tps.allSatisfy { tp in
                guard let marks = consumer.cachedWatermarks(tp) else { return false }
                return (next[tp] ?? marks.low ?? 0) >= marks.high
            }
        }
        while Date() < deadline {
            if let message = try consumer.poll(timeoutMilliseconds: 100) {
                messages.append(message)
                next[message.topicPartition] = message.offset + 1
            } else if done() {
                break
            }
        }
        return messages
    }
}

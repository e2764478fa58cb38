import BTETestSupport
import Foundation
import Testing

/// librdkafka properties (TLS, SASL) reach every Kafka client of every command, from flags and
/// from `BTE_KAFKA_*`, and a secret never shows up in what the command prints.
@Suite(.serialized) struct KafkaPropertyTests {
    /// Every command that makes a Kafka client, with what else it needs to get that far.
    static func commands(_ database: TestDatabase, brokers: String) -> [(String, [String])] {
        let topicsDir = TestEnvironment.packageRoot.appendingPathComponent("topics").path
        let prefix = ["--brokers", brokers, "--topic-prefix", TestEnvironment.uniqueName("kp") + "."]
        return [
            ("ingest", ["ingest", "--database-url", database.ingestURL] + prefix),
            ("project", ["project", "--reader-database-url", database.readerURL] + prefix),
            (
                "run",
                [
                    "run", "ingest", "project", "--database-url", database.ingestURL, "--reader-database-url",
                    database.readerURL,
                ] + prefix
            ),
            (
                "sweep",
                ["sweep", "--reader-database-url", database.readerURL, "--as-of", "2025-11-17T00:00:00Z"] + prefix
            ),
            ("topics apply", ["topics", "apply", "--topics-dir", topicsDir] + prefix),
            ("generate", ["generate", "--events", "10"] + prefix),
            ("replay", ["replay", "bte-ingest", "--to-earliest", "--database-url", database.ingestURL] + prefix),
            ("status", ["status", "--reader-database-url", database.readerURL] + prefix),
            ("serve", ["serve", "--port", "18556", "--reader-database-url", database.readerURL] + prefix),
        ]
    }

    @Test func anUnsupportedSASLMechanismStopsEveryCommandWithOneLine() throws {
        let database = try TestDatabase()
        defer { database.drop() }
        for (name, arguments) in Self.commands(database, brokers: try TestEnvironment.brokers()) {
            let process = try BTEProcess(
                arguments + [
                    "--kafka-property", "security.protocol=SASL_PLAINTEXT", "--kafka-property", "sasl.mechanisms=NOPE",
                ])
            #expect(process.wait(timeout: 60) == 1, "\(name): \(process.log)")
            #expect(process.log.hasPrefix("bte: error: "), "\(name): \(process.log)")
            #expect(process.log.contains("NOPE"), "\(name): \(process.log)")
            #expect(process.log.split(separator: "\n").count == 1, "\(name): \(process.log)")
        }
    }

    @Test func environmentVariablesReachLibrdkafkaToo() throws {
        let database = try TestDatabase()
        defer { database.drop() }
        for (name, arguments) in Self.commands(database, brokers: try TestEnvironment.brokers()) {
            let process = try BTEProcess(
                arguments,
                environment: ["BTE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "BTE_KAFKA_SASL_MECHANISMS": "NOPE"])
            #expect(process.wait(timeout: 60) == 1, "\(name): \(process.log)")
            #expect(process.log.contains("NOPE"), "\(name): \(process.log)")
        }
    }

    @Test func aFlagOverridesTheEnvironment() throws {
        let database = try TestDatabase()
        defer { database.drop() }
        // The environment's mechanism is bad, the flag's is fine: the command gets past the
        // client's creation and fails later, on the missing credentials' first use, or not at all.
        let process = try BTEProcess(
            [
                "topics", "apply", "--brokers", "127.0.0.1:1", "--topics-dir", "/nonexistent",
                "--kafka-property", "sasl.mechanisms=PLAIN",
            ],
            environment: ["BTE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "BTE_KAFKA_SASL_MECHANISMS": "NOPE"])
        #expect(process.wait(timeout: 60) == 1)
        #expect(!process.log.contains("NOPE"), "\(process.log)")
    }

    @Test func secretsAreNeverPrinted() throws {
        let database = try TestDatabase()
        defer { database.drop() }
        let secret = "s3cr3t-\(UInt32.random(in: 0...UInt32.max))"
        // An unknown property whose name says it is a secret, and a real secret next to a bad
        // mechanism: the command stops, naming the property, never the value.
        let unknown = try BTEProcess(
            [
                "ingest", "--database-url", database.ingestURL, "--brokers", try TestEnvironment.brokers(),
                "--kafka-property", "ssl.password=\(secret)",
            ])
        #expect(unknown.wait(timeout: 60) == 1, "\(unknown.log)")
        #expect(unknown.log.contains("ssl.password"), "\(unknown.log)")
        #expect(!unknown.log.contains(secret), "\(unknown.log)")
        let known = try BTEProcess(
            [
                "ingest", "--database-url", database.ingestURL, "--brokers", try TestEnvironment.brokers(),
                "--kafka-property", "security.protocol=SASL_PLAINTEXT", "--kafka-property", "sasl.mechanisms=NOPE",
                "--kafka-property", "sasl.password=\(secret)",
            ],
            environment: ["BTE_LOG_LEVEL": "trace"])
        #expect(known.wait(timeout: 60) == 1, "\(known.log)")
        #expect(!known.log.contains(secret), "\(known.log)")
        let malformed = try BTEProcess(
            [
                "ingest", "--database-url", database.ingestURL, "--brokers", try TestEnvironment.brokers(),
                "--kafka-property", secret,
            ])
        #expect(malformed.wait(timeout: 60) == 1, "\(malformed.log)")
        #expect(!malformed.log.contains(secret), "\(malformed.log)")
    }
}

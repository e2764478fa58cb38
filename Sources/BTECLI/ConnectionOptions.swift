import ArgumentParser
import Foundation
import Logging

/// The options every command that reaches Kafka or PostgreSQL shares.
public struct ConnectionOptions: ParsableArguments {
    @Option(help: "Kafka bootstrap servers (env BTE_KAFKA_BROKERS).")
    public var brokers: String?

    @Option(help: "libpq URI of PostgreSQL (env BTE_DATABASE_URL).")
    public var databaseURL: String?

    @Option(help: "Prefix for every topic name; empty in production.")
    public var topicPrefix: String = ""

    @Option(help: "Log level: trace, debug, info, notice, warning, error (env BTE_LOG_LEVEL).")
    public var logLevel: String?

    @OptionGroup public var kafka: KafkaOptions

    public init() {}

    public func resolvedBrokers() throws -> String { try Setting.brokers.resolve(brokers) }

    /// librdkafka properties for every Kafka client (see ``KafkaOptions``).
    public func resolvedKafkaProperties() throws -> [String: String] { try kafka.resolve() }

    public func resolvedDatabaseURL() throws -> String { try Setting.database.resolve(databaseURL) }

    public func makeLogger(_ label: String) -> Logger { LoggingBootstrap.logger(label, level: logLevel) }
}

/// Logs go to stderr through swift-log, bootstrapped once per process.
public enum LoggingBootstrap {
    private static let done = NSLock()
    nonisolated(unsafe) private static var bootstrapped = false

    /// A logger at `level` (else env BTE_LOG_LEVEL, else info).
    public static func logger(_ label: String, level name: String?) -> Logger {
        let levelName = name ?? ProcessInfo.processInfo.environment["BTE_LOG_LEVEL"] ?? "info"
        let level = Logger.Level(rawValue: levelName) ?? .info
        once(level: level)
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }

    static func once(level: Logger.Level) {
        done.lock()
        defer { done.unlock() }
        guard !bootstrapped else { return }
        bootstrapped = true
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

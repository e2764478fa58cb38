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

    @Option(help: "Log format: text, or json for one JSON object a line (env BTE_LOG_FORMAT).")
    public var logFormat: String?

    @OptionGroup public var kafka: KafkaOptions

    public init() {}

    public func resolvedBrokers() throws -> String { try Setting.brokers.resolve(brokers) }

    /// librdkafka properties for every Kafka client (see ``KafkaOptions``).
    public func resolvedKafkaProperties() throws -> [String: String] { try kafka.resolve() }

    public func resolvedDatabaseURL() throws -> String { try Setting.database.resolve(databaseURL) }

    public func makeLogger(_ label: String) throws -> Logger {
        try LoggingBootstrap.logger(label, level: logLevel, format: logFormat)
    }
}

/// Logs go to stderr through swift-log, bootstrapped once per process: as text, or as one JSON
/// object a line (`--log-format json`, env `BTE_LOG_FORMAT`).
public enum LoggingBootstrap {
    public enum Format: String, Sendable { case text, json }

    private static let done = NSLock()
    nonisolated(unsafe) private static var bootstrapped = false

    /// The format named by the flag, else env BTE_LOG_FORMAT, else text; nil when not a format.
    static func format(_ flag: String?) -> Format? {
        Format(rawValue: flag ?? ProcessInfo.processInfo.environment["BTE_LOG_FORMAT"] ?? "text")
    }

    /// Refuses a format that is not one, flag or environment.
    public static func checkFormat(_ flag: String?) throws {
        guard format(flag) != nil else {
            throw CLIError(
                "--log-format (env BTE_LOG_FORMAT) is text or json, not "
                    + (flag ?? ProcessInfo.processInfo.environment["BTE_LOG_FORMAT"] ?? "")
            )
        }
    }

    /// A logger at `level` (else env BTE_LOG_LEVEL, else info).
    public static func logger(_ label: String, level name: String?, format: String? = nil) throws -> Logger {
        try checkFormat(format)
        let levelName = name ?? ProcessInfo.processInfo.environment["BTE_LOG_LEVEL"] ?? "info"
        let level = Logger.Level(rawValue: levelName) ?? .info
        once(level: level, format: Self.format(format) ?? .text)
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }

    static func once(level: Logger.Level, format: Format) {
        done.lock()
        defer { done.unlock() }
        guard !bootstrapped else { return }
        bootstrapped = true
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}

/// One JSON object a line on stderr: `time`, `level`, `worker` (the logger's label), `message`,
/// then the metadata (the event's coordinates where there is one), every value a string.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let text = Self.line(
            level: event.level, message: event.message, metadata: event.metadata, label: label, base: metadata,
            now: Date())
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// The line for an event (`now` as RFC 3339 in UTC with microseconds).
    static func line(
        level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, label: String,
        base: Logger.Metadata, now: Date
    ) -> String {
        var fields: [(String, String)] = [
            ("time", timestamp(now)), ("level", level.rawValue), ("worker", label), ("message", message.description),
        ]
        let merged = base.merging(explicit ?? [:]) { $1 }
        for key in merged.keys.sorted() where !["time", "level", "worker", "message"].contains(key) {
            fields.append((key, merged[key].map { "\($0)" } ?? ""))
        }
        return "{" + fields.map { "\(quote($0.0)):\(quote($0.1))" }.joined(separator: ",") + "}"
    }

    static func timestamp(_ date: Date) -> String {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down))
        let seconds = micros / 1_000_000
        let fraction = micros % 1_000_000
        var time = tm()
        var raw = time_t(seconds)
        gmtime_r(&raw, &time)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(width - text.count, 0)) + text
        }
        let fractionText = String(fraction)
        return "\(pad(time.tm_year + 1900, 4))-\(pad(time.tm_mon + 1, 2))-\(pad(time.tm_mday, 2))T"
            + "\(pad(time.tm_hour, 2)):\(pad(time.tm_min, 2)):\(pad(time.tm_sec, 2))."
            + String(repeating: "0", count: 6 - fractionText.count) + fractionText + "Z"
    }

    /// A JSON string: quotes, backslashes and control characters escaped.
    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

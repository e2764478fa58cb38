import ArgumentParser
import Foundation

/// librdkafka properties for every Kafka client a command makes (consumer, producer, admin):
/// `BTE_KAFKA_` + the property in upper snake case from the environment, then
/// `--kafka-property key=value` flags, which win.
public struct KafkaOptions: ParsableArguments {
    @Option(
        name: .customLong("kafka-property"),
        help: """
            A librdkafka property as key=value, repeatable (TLS, SASL, …); \
            env BTE_KAFKA_<PROPERTY> (e.g. BTE_KAFKA_SECURITY_PROTOCOL=SASL_SSL).
            """)
    public var kafkaProperty: [String] = []

    public init() {}

    /// The properties from the environment and the flags.
    public func resolve() throws -> [String: String] {
        try KafkaProperties.resolve(flags: kafkaProperty, environment: ProcessInfo.processInfo.environment)
    }
}

public enum KafkaProperties {
    /// Variables with the prefix that are BTE's own settings, not librdkafka properties.
    public static let reserved: Set<String> = [
        "BTE_KAFKA_BROKERS", "BTE_KAFKA_SESSION_TIMEOUT_MS", "BTE_KAFKA_PORT",
    ]

    /// `BTE_KAFKA_SASL_MECHANISMS=PLAIN` → `sasl.mechanisms=PLAIN`; flags (`key=value`) override.
    public static func resolve(flags: [String], environment: [String: String]) throws -> [String: String] {
        var properties: [String: String] = [:]
        for (name, value) in environment where name.hasPrefix("BTE_KAFKA_") && !reserved.contains(name) {
            let key = name.dropFirst("BTE_KAFKA_".count).lowercased().replacingOccurrences(of: "_", with: ".")
            guard !key.isEmpty else { continue }
            properties[key] = value
        }
        for flag in flags {
            guard let equals = flag.firstIndex(of: "="), equals != flag.startIndex else {
                // The flag's value may be a secret: name only what is missing.
                throw CLIError("--kafka-property takes key=value (e.g. security.protocol=SASL_SSL)")
            }
            properties[String(flag[..<equals]).trimmingCharacters(in: .whitespaces)] = String(
                flag[flag.index(after: equals)...])
        }
        return properties
    }
}

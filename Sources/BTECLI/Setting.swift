import Foundation

/// A setting given by flag, else by environment variable (docs/operations.md).
public enum Setting: Sendable {
    case brokers, database, reader, admin

    private var flag: String {
        switch self {
        case .brokers: return "--brokers"
        case .database: return "--database-url"
        case .reader: return "--reader-database-url"
        case .admin: return "--admin-database-url"
        }
    }

    private var variable: String {
        switch self {
        case .brokers: return "BTE_KAFKA_BROKERS"
        case .database: return "BTE_DATABASE_URL"
        case .reader: return "BTE_READER_DATABASE_URL"
        case .admin: return "BTE_ADMIN_DATABASE_URL"
        }
    }

    /// The flag's value, else the variable's; neither (or empty) is a usage error.
    public func resolve(_ flagValue: String?) throws -> String {
        guard let value = flagValue ?? ProcessInfo.processInfo.environment[variable], !value.isEmpty else {
            throw CLIError("no \(self == .brokers ? "brokers" : "database"): pass \(flag) or set \(variable)")
        }
        return value
    }

    /// An integer from a flag, else from `variable`, else `fallback`. A variable that is set but
    /// not an integer (or beyond Int) is a usage error, not silently the default.
    public static func integer(_ flagValue: Int?, variable: String, default fallback: Int) throws -> Int {
        if let flagValue { return flagValue }
        guard let text = ProcessInfo.processInfo.environment[variable], !text.isEmpty else { return fallback }
        guard let value = Int(text) else { throw CLIError("\(variable) must be a whole number, not '\(text)'") }
        return value
    }

    /// A text from a flag, else from `variable` (empty counts as absent).
    public static func text(_ flagValue: String?, variable: String) -> String? {
        flagValue ?? ProcessInfo.processInfo.environment[variable].flatMap { $0.isEmpty ? nil : $0 }
    }
}

import BTECompute
import Postgres

/// One row of `bte.thresholds`.
public struct ThresholdEntry: Sendable, Equatable {
    public let key: String
    public let value: Double
    public let changedBy: String
    public let reason: String
    public let changedAt: String
}

/// Reads and appends threshold changes. Reading works as `bte_reader`; appending needs
/// `bte_admin` (or the owner).
public struct ThresholdStore {
    let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    public init(url: String) throws {
        connection = try PostgresConnection(url: url, applicationName: "bte-thresholds")
    }

    public func current() throws -> (version: Int, entries: [ThresholdEntry]) {
        let version =
            Int(
                try connection.execute("SELECT version FROM bte.thresholds_version").rows.first?.first??.description
                    ?? "0") ?? 0
        let rows = try connection.execute(
            "SELECT threshold_key, value::float8, changed_by, reason, "
                + "to_char(changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                + "FROM bte.thresholds ORDER BY threshold_key"
        ).rows
        let entries = rows.map { row in
            ThresholdEntry(
                key: row[0] ?? "", value: Double(row[1] ?? "") ?? 0, changedBy: row[2] ?? "", reason: row[3] ?? "",
                changedAt: row[4] ?? "")
        }
        return (version, entries)
    }

    /// The thresholds the computations use.
    public func thresholds() throws -> Thresholds {
        let (version, entries) = try current()
        var values = Thresholds.defaults
        for entry in entries { values[entry.key] = entry.value }
        return Thresholds(version: version, values: values)
    }

    /// Appends a change; returns the new version. Only known keys and positive values.
    @discardableResult
    public func set(key: String, value: Double, by admin: String, reason: String) throws -> Int {
        guard Thresholds.defaults.keys.contains(key) else {
            throw StoreError(
                .invalidThreshold,
                "unknown threshold \(key); known: \(Thresholds.defaults.keys.sorted().joined(separator: ", "))")
        }
        let zeroAllowed = Thresholds.mayBeZero.contains(key)
        guard value.isFinite, value > 0 || (zeroAllowed && value == 0) else {
            throw StoreError(
                .invalidThreshold, "\(key) must be a \(zeroAllowed ? "non-negative" : "positive") number, not \(value)")
        }
        if let bound = Thresholds.upperBounds[key], value > bound {
            throw StoreError(.invalidThreshold, "\(key) is at most \(formatNumber(bound)), not \(value)")
        }
        guard !admin.isEmpty, !reason.isEmpty else {
            throw StoreError(.invalidThreshold, "a change needs who (--by) and why (--reason)")
        }
        let rows = try connection.execute(
            "INSERT INTO bte.threshold_changes (threshold_key, value, changed_by, reason) "
                + "VALUES ($1, $2::numeric, $3, $4) RETURNING id",
            [key, String(value), admin, reason]
        ).rows
        return Int(rows.first?.first??.description ?? "0") ?? 0
    }
}

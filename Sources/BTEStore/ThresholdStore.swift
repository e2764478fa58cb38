import BTECompute
import BTEDomain
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

    /// The workspaces' own values, by workspace then key.
    public func overrides(workspaceID: String? = nil) throws -> [String: [ThresholdEntry]] {
        let rows = try connection.execute(
            "SELECT workspace_id::text, threshold_key, value::float8, changed_by, reason, "
                + "to_char(changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                + "FROM bte.workspace_thresholds WHERE $1::uuid IS NULL OR workspace_id = $1::uuid "
                + "ORDER BY workspace_id, threshold_key",
            [workspaceID]
        ).rows
        var result: [String: [ThresholdEntry]] = [:]
        for row in rows {
            result[row[0] ?? "", default: []].append(
                ThresholdEntry(
                    key: row[1] ?? "", value: Double(row[2] ?? "") ?? 0, changedBy: row[3] ?? "",
                    reason: row[4] ?? "", changedAt: row[5] ?? ""))
        }
        return result
    }

    /// The thresholds the computations use, with every workspace's overrides.
    public func thresholds() throws -> Thresholds {
        let (version, entries) = try current()
        var values = Thresholds.defaults
        for entry in entries { values[entry.key] = entry.value }
        let workspaces = try overrides().mapValues { entries in
            Dictionary(entries.map { ($0.key, $0.value) }) { _, newer in newer }
        }
        return Thresholds(version: version, values: values, workspaces: workspaces)
    }

    /// Appends a change, for every workspace or for one; returns the new version. Only known
    /// keys and values within their bounds.
    @discardableResult
    public func set(key: String, value: Double, workspaceID: String? = nil, by admin: String, reason: String) throws
        -> Int
    {
        try check(key: key, workspaceID: workspaceID)
        let zeroAllowed = Thresholds.mayBeZero.contains(key)
        guard value.isFinite, value > 0 || (zeroAllowed && value == 0) else {
            throw StoreError(
                .invalidThreshold, "\(key) must be a \(zeroAllowed ? "non-negative" : "positive") number, not \(value)")
        }
        if let bound = Thresholds.upperBounds[key], value > bound {
            throw StoreError(.invalidThreshold, "\(key) is at most \(formatNumber(bound)), not \(value)")
        }
        return try append(key: key, value: String(value), workspaceID: workspaceID, by: admin, reason: reason)
    }

    /// Ends a workspace's override: the workspace has the shared value again. Returns the new
    /// version.
    @discardableResult
    public func unset(key: String, workspaceID: String, by admin: String, reason: String) throws -> Int {
        try check(key: key, workspaceID: workspaceID)
        guard try overrides(workspaceID: canonicalUUID(workspaceID)).values.joined().contains(where: { $0.key == key })
        else {
            throw StoreError(.invalidThreshold, "workspace \(workspaceID) has no value of its own for \(key)")
        }
        return try append(key: key, value: nil, workspaceID: workspaceID, by: admin, reason: reason)
    }

    private func check(key: String, workspaceID: String?) throws {
        guard Thresholds.defaults.keys.contains(key) else {
            throw StoreError(
                .invalidThreshold,
                "unknown threshold \(key); known: \(Thresholds.defaults.keys.sorted().joined(separator: ", "))")
        }
        guard let workspaceID else { return }
        guard canonicalUUID(workspaceID) != nil else {
            throw StoreError(.invalidThreshold, "--workspace is a workspace id (a UUID)")
        }
        guard Thresholds.mayOverride(key) else {
            throw StoreError(
                .invalidThreshold,
                "\(key) is shared by every workspace; a workspace may set only delivery.* thresholds")
        }
    }

    private func append(key: String, value: String?, workspaceID: String?, by admin: String, reason: String) throws
        -> Int
    {
        guard !admin.isEmpty, !reason.isEmpty else {
            throw StoreError(.invalidThreshold, "a change needs who (--by) and why (--reason)")
        }
        let rows = try connection.execute(
            "INSERT INTO bte.threshold_changes (threshold_key, value, workspace_id, changed_by, reason) "
                + "VALUES ($1, $2::numeric, $3::uuid, $4, $5) RETURNING id",
            [key, value, workspaceID.flatMap(canonicalUUID), admin, reason]
        ).rows
        return Int(rows.first?.first??.description ?? "0") ?? 0
    }
}

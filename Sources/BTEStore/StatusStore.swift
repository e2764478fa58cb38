import Postgres

/// What `bte status` reads from PostgreSQL (reader role).
public final class StatusStore {
    private let connection: PostgresConnection

    public init(url: String) throws {
        connection = try PostgresConnection(
            url: url, applicationName: "bte-status",
            options: PostgresConnectionOptions(statementTimeoutMilliseconds: 10_000))
    }

    /// The newest applied migration.
    public func schemaVersion() throws -> String? {
        try connection.execute("SELECT max(version) FROM bte.schema_migrations").rows.first?[0] ?? nil
    }

    public func thresholdsVersion() throws -> Int { try ThresholdStore(connection: connection).current().version }

    /// An ingest group's stored next offsets.
    public func ingestOffsets(group: String) throws -> [KafkaPartitionKey: Int64] {
        try storedIngestOffsets(group: group, on: connection)
    }

    /// Rejects by code in the last `hours` hours.
    public func rejectsByCode(hours: Int) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try connection.execute(
            """
            SELECT error_code, count(*) FROM bte.rejected_events
            WHERE rejected_at > now() - make_interval(hours => $1::int) GROUP BY 1
            """, [String(hours)]
        ).rows {
            counts[row[0] ?? ""] = row[1].flatMap { Int($0) } ?? 0
        }
        return counts
    }
}

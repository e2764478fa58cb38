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
        var result: [KafkaPartitionKey: Int64] = [:]
        for row in try connection.execute(
            "SELECT topic, partition, next_offset FROM bte.ingest_offsets WHERE consumer_group = $1", [group]
        ).rows {
            guard let topic = row[0], let partition = row[1].flatMap({ Int32($0) }),
                let next = row[2].flatMap({ Int64($0) })
            else { continue }
            result[KafkaPartitionKey(topic: topic, partition: partition)] = next
        }
        return result
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

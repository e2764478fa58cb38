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

    /// The database's own health: the last recorded backup, the WAL archive, and replication.
    public func databaseHealth() throws -> DatabaseHealth {
        var health = DatabaseHealth()
        let epoch = { (text: String?) in text.flatMap(Double.init) }
        if let row = try connection.execute(
            """
            SELECT backup_type, extract(epoch FROM stopped_at)::text FROM bte.backups
            ORDER BY stopped_at DESC LIMIT 1
            """
        ).rows.first {
            health.lastBackupType = row[0]
            health.lastBackupAt = epoch(row[1])
        }
        if let row = try connection.execute(
            """
            SELECT extract(epoch FROM last_archived_time)::text, failed_count::text,
                   extract(epoch FROM last_failed_time)::text, current_setting('archive_mode'),
                   pg_is_in_recovery()::text,
                   extract(epoch FROM pg_last_xact_replay_timestamp())::text,
                   extract(epoch FROM now())::text
            FROM pg_stat_archiver
            """
        ).rows.first {
            health.lastArchivedAt = epoch(row[0])
            health.archiveFailures = row[1].flatMap { Int($0) } ?? 0
            health.lastArchiveFailureAt = epoch(row[2])
            health.archiving = row[3] == "on" || row[3] == "always"
            health.inRecovery = row[4] == "true"
            health.lastReplayedAt = epoch(row[5])
            health.now = epoch(row[6]) ?? 0
        }
        health.standbys = try connection.execute("SELECT standby, state, lag_seconds::text FROM bte.replication_lag()")
            .rows.map { DatabaseHealth.Standby(name: $0[0] ?? "", state: $0[1], lagSeconds: epoch($0[2])) }
        return health
    }
}

/// The database's own state, as `bte status`, the dashboard and `/metrics` show it. Times are
/// seconds since the epoch on the server's clock (`now` too, so ages don't depend on ours).
public struct DatabaseHealth: Sendable, Equatable {
    public struct Standby: Sendable, Equatable {
        public var name: String
        /// `streaming`, `catchup`, …; nil when this login may not see it.
        public var state: String?
        /// Replay lag; nil when unknown.
        public var lagSeconds: Double?
    }

    public var lastBackupType: String?
    public var lastBackupAt: Double?
    public var archiving = false
    public var lastArchivedAt: Double?
    public var archiveFailures = 0
    public var lastArchiveFailureAt: Double?
    public var inRecovery = false
    /// On a standby: the commit time of the last transaction replayed.
    public var lastReplayedAt: Double?
    public var standbys: [Standby] = []
    public var now: Double = 0

    public init() {}

    public var backupAgeSeconds: Double? { lastBackupAt.map { max(now - $0, 0) } }
    public var archiveAgeSeconds: Double? { lastArchivedAt.map { max(now - $0, 0) } }
}

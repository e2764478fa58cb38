import BTEDomain
import Postgres

/// The log-defined order of successes against the rows that count them (migration 035). The
/// last statement of an ingest transaction, so the locks are held only while it commits.
struct PeerOrder {
    static let lock = "hashtext('bte.peer_order'), 0"
    let connection: PostgresConnection
    let group: String

    /// Takes the peer-order lock for a transaction that stores these records: exclusively, with
    /// the group's stored offsets recorded under it, when one may be a successful act; shared when
    /// they include business events or user actions; not at all otherwise.
    func stamp(_ byTable: [LogTable: [IncomingRecord]]) throws {
        let business = byTable[.businessEvents] ?? []
        if business.contains(where: Self.maySucceed) {
            try connection.execute("SELECT pg_advisory_xact_lock(\(Self.lock))")
            try connection.execute(
                """
                INSERT INTO bte.success_commits (id, ingest_group, topics, partitions, next_offsets)
                SELECT nextval('bte.success_commit_ids'), $1,
                       coalesce(array_agg(topic ORDER BY topic, partition), '{}'),
                       coalesce(array_agg(partition ORDER BY topic, partition), '{}'),
                       coalesce(array_agg(next_offset ORDER BY topic, partition), '{}')
                FROM bte.ingest_offsets WHERE consumer_group = $1
                """, [group])
        } else if !business.isEmpty || !(byTable[.userActions] ?? []).isEmpty {
            try connection.execute("SELECT pg_advisory_xact_lock_shared(\(Self.lock))")
        }
    }

    /// A `recommendation.acted` whose metadata says `"outcome":"success"` (in its canonical JSON,
    /// anywhere: a false positive costs one more exclusive commit, never a wrong order).
    static func maySucceed(_ incoming: IncomingRecord) -> Bool {
        let record = incoming.record
        let fields = record.schema.fields
        guard let type = fields.firstIndex(where: { $0.name == "event_type" }), type < record.values.count,
            record.values[type] == "recommendation.acted"
        else { return false }
        guard let metadata = fields.firstIndex(where: { $0.name == "metadata" }), metadata < record.values.count,
            let json = record.values[metadata]
        else { return false }
        return json.contains(#""outcome":"success""#)
    }
}

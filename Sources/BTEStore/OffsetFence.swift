import Postgres

/// A group's next offsets in `bte.ingest_offsets`, moved inside the transaction that writes
/// what they cover: ingest's and the sink's exactly-once rests on it.
struct OffsetFence {
    let connection: PostgresConnection
    let group: String

    /// Locks these partitions (only those: another writer holds others) and checks their offset
    /// rows are where this worker left them.
    ///
    /// The row lock alone can't fence a partition's first batch: with no row there is nothing
    /// to lock, so two members expecting "none" would both write, the second overwriting the
    /// first's offset. So each partition is first locked by a transaction-scoped advisory lock
    /// on (group, topic, partition), which exists whether or not the row does (a placeholder
    /// row would need an offset that means "none"). The locks are taken in one order (by key)
    /// so writers of overlapping partitions can't deadlock, and held until commit or rollback;
    /// a second writer waits, then reads the first's committed row and is refused. Keys are
    /// hashes in their own class (the two-key form): a collision only serializes two writers.
    func check(_ progress: [PartitionProgress]) throws {
        guard !progress.isEmpty else { return }
        try connection.execute(
            """
            SELECT pg_advisory_xact_lock(hashtext('bte.ingest_offsets'), k)
            FROM (SELECT DISTINCT hashtext($1 || '/' || t || '/' || p) AS k
                FROM unnest($2::text[], $3::int[]) AS b(t, p)) keys
            ORDER BY k
            """,
            [group, arrayLiteral(progress.map(\.topic)), arrayLiteral(progress.map { String($0.partition) })])
        let rows = try connection.execute(
            """
            SELECT o.topic, o.partition, o.next_offset FROM bte.ingest_offsets o
            JOIN unnest($2::text[], $3::int[]) AS b(topic, partition) ON o.topic = b.topic AND o.partition = b.partition
            WHERE o.consumer_group = $1 FOR UPDATE OF o
            """,
            [group, arrayLiteral(progress.map(\.topic)), arrayLiteral(progress.map { String($0.partition) })]
        ).rows
        var stored: [String: Int64] = [:]
        for row in rows { stored["\(row[0] ?? "")/\(row[1] ?? "")"] = row[2].flatMap { Int64($0) } }
        for entry in progress {
            let actual = stored["\(entry.topic)/\(entry.partition)"]
            if actual != entry.expectedStored {
                throw StoreError(
                    .offsetFence,
                    "\(entry.topic)[\(entry.partition)] is at \(actual.map(String.init) ?? "none") in PostgreSQL, "
                        + "expected \(entry.expectedStored.map(String.init) ?? "none"); another member moved it"
                )
            }
        }
    }

    /// Moves the offsets. With `notify`, the same statement notifies `IngestCommits.channel`
    /// with the group: PostgreSQL delivers it when (only if) the transaction commits, so a
    /// projector waiting for this batch wakes at once instead of polling.
    func save(_ progress: [PartitionProgress], notify: Bool) throws {
        guard !progress.isEmpty else { return }
        try connection.execute(
            """
            WITH saved AS (
                INSERT INTO bte.ingest_offsets (consumer_group, topic, partition, next_offset)
                SELECT $1, t, p, n FROM unnest($2::text[], $3::int[], $4::bigint[]) AS u(t, p, n)
                ON CONFLICT (consumer_group, topic, partition)
                DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now())
            SELECT pg_notify($5, $1) WHERE $6::boolean
            """,
            [
                group, arrayLiteral(progress.map(\.topic)), arrayLiteral(progress.map { String($0.partition) }),
                arrayLiteral(progress.map { String($0.next) }), IngestCommits.channel, notify ? "true" : "false",
            ])
    }

    /// Stored `next_offset` per partition of `topics` for the group.
    func stored(topics: [String]) throws -> [String: [Int32: Int64]] {
        let rows = try connection.execute(
            "SELECT topic, partition, next_offset FROM bte.ingest_offsets "
                + "WHERE consumer_group = $1 AND topic = ANY($2::text[])",
            [group, arrayLiteral(topics)]
        ).rows
        var result: [String: [Int32: Int64]] = [:]
        for row in rows {
            guard let topic = row[0], let partition = row[1].flatMap({ Int32($0) }),
                let next = row[2].flatMap({ Int64($0) })
            else { continue }
            result[topic, default: [:]][partition] = next
        }
        return result
    }
}

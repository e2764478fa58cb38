import BTEDomain
import Postgres

/// One partition of a replay: its next offset before (nil: none stored) and after.
public struct ReplayChange: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    public var before: Int64?
    public var after: Int64

    public init(topic: String, partition: Int32, before: Int64?, after: Int64) {
        self.topic = topic
        self.partition = partition
        self.before = before
        self.after = after
    }
}

/// Where a group keeps its offsets.
public enum OffsetHome: String, Sendable {
    /// `bte.ingest_offsets`, written in the same transaction as the events.
    case postgresql
    /// The group's committed offsets in Kafka.
    case kafka
}

/// A replay to record (and, for an ingest group, to apply).
public struct ReplayRequest: Sendable {
    public var group: String
    public var offsetsIn: OffsetHome
    /// The target as given, e.g. `--to-datetime 2025-11-17T00:00:00+01:00`.
    public var target: String
    public var by: String
    public var why: String
    public var changes: [ReplayChange]

    public init(
        group: String, offsetsIn: OffsetHome, target: String, by: String, why: String, changes: [ReplayChange]
    ) {
        self.group = group
        self.offsetsIn = offsetsIn
        self.target = target
        self.by = by
        self.why = why
        self.changes = changes
    }
}

/// Moves consumer groups' offsets for `bte replay` and keeps `bte.replay_log` (ingest role).
public final class ReplayStore {
    private let connection: PostgresConnection

    public init(url: String) throws {
        connection = try PostgresConnection(url: url, applicationName: "bte-replay")
    }

    /// Whether `group` keeps its offsets in PostgreSQL: it is an ingest group that stored some.
    public func storesOffsets(group: String) throws -> Bool {
        try connection.execute("SELECT EXISTS (SELECT 1 FROM bte.ingest_offsets WHERE consumer_group = $1)", [group])
            .rows.first?[0] == "t"
    }

    /// The ingest group's stored next offsets, by topic and partition.
    public func ingestOffsets(group: String) throws -> [KafkaPartitionKey: Int64] {
        try storedIngestOffsets(group: group, on: connection)
    }

    /// In one transaction: takes the group's lock exclusively (refused while a worker holds it),
    /// moves an ingest group's offsets (refused if one moved since the plan), appends the
    /// record, then runs `alsoApply` (a projector group's Kafka commit): if it throws, nothing
    /// is recorded. Returns the record's id.
    @discardableResult
    public func apply(_ request: ReplayRequest, alsoApply: () throws -> Void = {}) throws -> Int64 {
        try connection.transaction {
            guard try GroupLock.tryExclusive(request.group, on: connection) else {
                throw StoreError(
                    .groupLocked,
                    "workers of group \(request.group) are running (they hold its lock in PostgreSQL); stop them first")
            }
            if request.offsetsIn == .postgresql {
                let stored = try connection.execute(
                    "SELECT topic, partition, next_offset FROM bte.ingest_offsets WHERE consumer_group = $1 FOR UPDATE",
                    [request.group]
                ).rows
                var now: [KafkaPartitionKey: Int64] = [:]
                for row in stored {
                    guard let topic = row[0], let partition = row[1].flatMap({ Int32($0) }) else { continue }
                    now[KafkaPartitionKey(topic: topic, partition: partition)] = row[2].flatMap { Int64($0) }
                }
                for change in request.changes {
                    let current = now[KafkaPartitionKey(topic: change.topic, partition: change.partition)]
                    guard current == change.before else {
                        throw StoreError(
                            .replayStale,
                            "\(change.topic)[\(change.partition)] moved from "
                                + "\(change.before.map(String.init) ?? "none") to "
                                + "\(current.map(String.init) ?? "none") since the plan; run the replay again")
                    }
                }
                try connection.execute(
                    """
                    INSERT INTO bte.ingest_offsets (consumer_group, topic, partition, next_offset)
                    SELECT $1, t, p, o FROM unnest($2::text[], $3::int[], $4::bigint[]) AS c(t, p, o)
                    ON CONFLICT (consumer_group, topic, partition)
                    DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()
                    """,
                    [
                        request.group, arrayLiteral(request.changes.map(\.topic)),
                        arrayLiteral(request.changes.map { String($0.partition) }),
                        arrayLiteral(request.changes.map { String($0.after) }),
                    ])
            }
            func offsets(_ value: (ReplayChange) -> Int64?) -> String {
                "{"
                    + request.changes.map {
                        "\(JSONValue.quoted("\($0.topic)[\($0.partition)]")):\(value($0).map(String.init) ?? "null")"
                    }.joined(separator: ",") + "}"
            }
            let id = try connection.execute(
                """
                INSERT INTO bte.replay_log (consumer_group, offsets_in, target, requested_by, reason, before, after)
                VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb) RETURNING id
                """,
                [
                    request.group, request.offsetsIn.rawValue, request.target, request.by, request.why,
                    offsets(\.before), offsets { $0.after },
                ]
            ).rows.first?[0].flatMap { Int64($0) }
            try alsoApply()
            return id ?? 0
        }
    }
}

/// A topic partition as the store names it (the store knows nothing of Kafka).
public struct KafkaPartitionKey: Hashable, Sendable, Comparable {
    public var topic: String
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public static func < (a: Self, b: Self) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }
}

/// An ingest group's stored next offsets, by topic and partition (any role that may read them).
func storedIngestOffsets(group: String, on connection: PostgresConnection) throws -> [KafkaPartitionKey: Int64] {
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

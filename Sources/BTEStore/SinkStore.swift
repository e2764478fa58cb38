import BTEDomain
import Postgres

/// A signal record of the signals topic, as the sink stores it.
public struct SinkSignal: Sendable, Equatable {
    public var id: String
    public var workspaceID: String
    public var signalType: String
    /// The number as published (no round trip through a binary double before PostgreSQL).
    public var value: String
    public var label: String?
    public var asOf: Timestamp
    public var thresholdsVersion: Int
    /// The record's bytes as published.
    public var record: String

    public init(
        id: String, workspaceID: String, signalType: String, value: String, label: String?, asOf: Timestamp,
        thresholdsVersion: Int, record: String
    ) {
        self.id = id
        self.workspaceID = workspaceID
        self.signalType = signalType
        self.value = value
        self.label = label
        self.asOf = asOf
        self.thresholdsVersion = thresholdsVersion
        self.record = record
    }
}

/// A behavioral vector of the vectors topic.
public struct SinkVector: Sendable, Equatable {
    public var id: String
    public var user: UserKey
    public var asOf: Timestamp
    public var thresholdsVersion: Int
    public var record: String

    public init(id: String, user: UserKey, asOf: Timestamp, thresholdsVersion: Int, record: String) {
        self.id = id
        self.user = user
        self.asOf = asOf
        self.thresholdsVersion = thresholdsVersion
        self.record = record
    }
}

/// An insight of the insights topic.
public struct SinkInsight: Sendable, Equatable {
    public var id: String
    public var workspaceID: String
    public var insightType: String
    public var priority: String
    public var asOf: Timestamp
    public var thresholdsVersion: Int
    public var record: String

    public init(
        id: String, workspaceID: String, insightType: String, priority: String, asOf: Timestamp,
        thresholdsVersion: Int, record: String
    ) {
        self.id = id
        self.workspaceID = workspaceID
        self.insightType = insightType
        self.priority = priority
        self.asOf = asOf
        self.thresholdsVersion = thresholdsVersion
        self.record = record
    }
}

/// A decision of the insight deliveries topic.
public struct SinkDelivery: Sendable, Equatable {
    public var id: String
    public var user: UserKey
    public var insightType: String
    public var outcome: String
    public var decidedAt: Timestamp
    public var thresholdsVersion: Int
    public var record: String

    public init(
        id: String, user: UserKey, insightType: String, outcome: String, decidedAt: Timestamp,
        thresholdsVersion: Int, record: String
    ) {
        self.id = id
        self.user = user
        self.insightType = insightType
        self.outcome = outcome
        self.decidedAt = decidedAt
        self.thresholdsVersion = thresholdsVersion
        self.record = record
    }
}

/// What one sink transaction writes: the records and the partitions' next offsets.
public struct SinkBatch: Sendable {
    public var signals: [SinkSignal] = []
    public var vectors: [SinkVector] = []
    public var insights: [SinkInsight] = []
    public var deliveries: [SinkDelivery] = []
    /// Users whose vectors key ends with a tombstone in the batch (no vector after it): their
    /// stored vector is deleted, after the batch's vectors are stored.
    public var endedVectors: Set<UserKey> = []
    public var progress: [PartitionProgress] = []
    public init() {}
}

/// Rows new to the tables (a record read again stores nothing), and the records PostgreSQL
/// refused although they were read as valid.
public struct SinkOutcome: Sendable, Equatable {
    public var signals = 0
    public var vectors = 0
    public var insights = 0
    public var deliveries = 0
    public var refused: [SinkRefusal] = []
    public init() {}
}

/// A record of the batch PostgreSQL would not store (a data error): which one, and why.
public struct SinkRefusal: Sendable, Equatable {
    public enum Kind: Sendable, Hashable { case signal, vector, insight, delivery }
    public var kind: Kind
    /// Its index in the batch's array of that kind.
    public var index: Int
    public var sqlState: String
}

/// Writes the API's tables from the output topics, and the sink group's offsets in the same
/// transaction. Every connection acts as role `bte_sink`, which may write these tables and
/// nothing else: no log can be touched from here.
public final class SinkStore {
    let connection: PostgresConnection
    public let group: String
    private var ensuredMonths: Set<Int> = []

    public var isHealthy: Bool { connection.isHealthy }
    public static let defaultStatementTimeoutMilliseconds = 60_000

    public init(
        url: String, group: String = "bte-sink",
        statementTimeoutMilliseconds: Int = SinkStore.defaultStatementTimeoutMilliseconds, holdsGroupLock: Bool = true
    ) throws {
        connection = try PostgresConnection(
            url: url, applicationName: "bte-sink",
            options: PostgresConnectionOptions(statementTimeoutMilliseconds: statementTimeoutMilliseconds))
        self.group = group
        try actAs("bte_sink", on: connection)
        if holdsGroupLock { try GroupLock.holdShared(group, on: connection) }
    }

    public func storedOffsets(topics: [String]) throws -> [String: [Int32: Int64]] {
        try OffsetFence(connection: connection, group: group).stored(topics: topics)
    }

    /// Writes the batch and its offsets atomically; `beforeCommit` runs inside the transaction
    /// with the records PostgreSQL refused (it publishes dead letters), and if it throws nothing
    /// is committed. A record PostgreSQL refuses as data (a number or time it can't hold) is
    /// isolated and left out; the rest of the batch is stored.
    public func commit(_ batch: SinkBatch, beforeCommit: ([SinkRefusal]) throws -> Void = { _ in }) throws
        -> SinkOutcome
    {
        do {
            try ensurePartitions(for: batch.signals)
            return try connection.transaction {
                let fence = OffsetFence(connection: connection, group: group)
                try fence.check(batch.progress)
                var outcome = try insertIsolatingFailures(batch)
                outcome.refused.sort { ($0.kind == $1.kind) ? $0.index < $1.index : "\($0.kind)" < "\($1.kind)" }
                try fence.save(batch.progress, notify: false)
                if outcome.deliveries > 0 {
                    try connection.execute("SELECT pg_notify($1, '')", [DeliveryCommits.channel])
                }
                try beforeCommit(outcome.refused)
                return outcome
            }
        } catch {
            // A partition dropped by retention since it was ensured fails the batch; the retry
            // ensures anew.
            ensuredMonths.removeAll()
            throw error
        }
    }

    /// The whole batch in three statements; when PostgreSQL refuses its data, again one record
    /// at a time under savepoints, keeping the ones it takes.
    private func insertIsolatingFailures(_ batch: SinkBatch) throws -> SinkOutcome {
        do {
            try connection.execute("SAVEPOINT bte_sink_batch")
            var outcome = SinkOutcome()
            outcome.signals = try insertSignals(batch.signals)
            outcome.vectors = try insertVectors(batch.vectors)
            try deleteVectors(batch.endedVectors)
            outcome.insights = try insertInsights(batch.insights)
            outcome.deliveries = try insertDeliveries(batch.deliveries)
            try connection.execute("RELEASE SAVEPOINT bte_sink_batch")
            return outcome
        } catch let error as PostgresError where error.isDataError {
            try connection.execute("ROLLBACK TO SAVEPOINT bte_sink_batch")
            try connection.execute("RELEASE SAVEPOINT bte_sink_batch")
        }
        var outcome = SinkOutcome()
        func one(_ kind: SinkRefusal.Kind, _ index: Int, _ insert: () throws -> Int) throws -> Int {
            try connection.execute("SAVEPOINT bte_sink_row")
            do {
                let stored = try insert()
                try connection.execute("RELEASE SAVEPOINT bte_sink_row")
                return stored
            } catch let error as PostgresError where error.isDataError {
                try connection.execute("ROLLBACK TO SAVEPOINT bte_sink_row")
                try connection.execute("RELEASE SAVEPOINT bte_sink_row")
                outcome.refused.append(SinkRefusal(kind: kind, index: index, sqlState: error.sqlState ?? "?"))
                return 0
            }
        }
        for (index, signal) in batch.signals.enumerated() {
            outcome.signals += try one(.signal, index) { try insertSignals([signal]) }
        }
        for (index, vector) in batch.vectors.enumerated() {
            outcome.vectors += try one(.vector, index) { try insertVectors([vector]) }
        }
        try deleteVectors(batch.endedVectors)
        for (index, insight) in batch.insights.enumerated() {
            outcome.insights += try one(.insight, index) { try insertInsights([insight]) }
        }
        for (index, delivery) in batch.deliveries.enumerated() {
            outcome.deliveries += try one(.delivery, index) { try insertDeliveries([delivery]) }
        }
        return outcome
    }

    private func ensurePartitions(for signals: [SinkSignal]) throws {
        var needed: [Int: Timestamp] = [:]
        for signal in signals where !ensuredMonths.contains(signal.asOf.monthKey) {
            needed[signal.asOf.monthKey] = signal.asOf.monthBounds.start
        }
        for (key, start) in needed.sorted(by: { $0.key < $1.key }) {
            try connection.execute("SELECT bte.ensure_signal_partition($1::timestamptz)", [start.rfc3339])
            ensuredMonths.insert(key)
        }
    }

    private func insertSignals(_ signals: [SinkSignal]) throws -> Int {
        guard !signals.isEmpty else { return 0 }
        return try connection.execute(
            """
            INSERT INTO bte.signal_values
                (id, workspace_id, signal_type, signal_value, label, as_of, thresholds_version, record)
            SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::float8[], $5::text[], $6::timestamptz[],
                $7::int[], $8::text[])
            ON CONFLICT DO NOTHING
            """,
            [
                arrayLiteral(signals.map(\.id)), arrayLiteral(signals.map(\.workspaceID)),
                arrayLiteral(signals.map(\.signalType)), arrayLiteral(signals.map(\.value)),
                arrayLiteral(signals.map(\.label)), arrayLiteral(signals.map(\.asOf.rfc3339)),
                arrayLiteral(signals.map { String($0.thresholdsVersion) }), arrayLiteral(signals.map(\.record)),
            ]
        ).affected
    }

    /// Every vector goes to the history; the latest per user (by as_of, then thresholds
    /// version) is kept in `bte.behavioral_vectors`, so a replay of older records can't
    /// replace a newer one.
    private func insertVectors(_ vectors: [SinkVector]) throws -> Int {
        guard !vectors.isEmpty else { return 0 }
        let parameters: [String?] = [
            arrayLiteral(vectors.map(\.id)), arrayLiteral(vectors.map(\.user.workspaceID)),
            arrayLiteral(vectors.map(\.user.userID)), arrayLiteral(vectors.map(\.asOf.rfc3339)),
            arrayLiteral(vectors.map { String($0.thresholdsVersion) }), arrayLiteral(vectors.map(\.record)),
        ]
        let stored = try connection.execute(
            """
            INSERT INTO bte.bv_history (id, workspace_id, user_id, as_of, thresholds_version, record)
            SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::int[], $6::text[])
            ON CONFLICT DO NOTHING
            """, parameters
        ).affected
        try connection.execute(
            """
            INSERT INTO bte.behavioral_vectors AS v (workspace_id, user_id, id, as_of, thresholds_version, record)
            SELECT DISTINCT ON (w, u) w, u, i, a, t, r
            FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::int[], $6::text[])
                AS x(i, w, u, a, t, r)
            ORDER BY w, u, a DESC, t DESC, i
            ON CONFLICT (workspace_id, user_id) DO UPDATE SET id = EXCLUDED.id, as_of = EXCLUDED.as_of,
                thresholds_version = EXCLUDED.thresholds_version, record = EXCLUDED.record, stored_at = now()
            WHERE (v.as_of, v.thresholds_version) < (EXCLUDED.as_of, EXCLUDED.thresholds_version)
            """, parameters)
        return stored
    }

    /// The stored vectors of users whose key ended with a tombstone (a withdrawn consent to a
    /// profile, an erasure); their history stays.
    private func deleteVectors(_ users: Set<UserKey>) throws {
        guard !users.isEmpty else { return }
        let sorted = users.sorted()
        try connection.execute(
            """
            DELETE FROM bte.behavioral_vectors v USING unnest($1::uuid[], $2::text[]) AS x(w, u)
            WHERE v.workspace_id = x.w AND v.user_id = x.u
            """, [arrayLiteral(sorted.map(\.workspaceID)), arrayLiteral(sorted.map(\.userID))])
    }

    private func insertDeliveries(_ deliveries: [SinkDelivery]) throws -> Int {
        guard !deliveries.isEmpty else { return 0 }
        return try connection.execute(
            """
            INSERT INTO bte.insight_deliveries
                (id, workspace_id, user_id, insight_type, outcome, decided_at, thresholds_version, record)
            SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
                $7::int[], $8::text[])
            ON CONFLICT DO NOTHING
            """,
            [
                arrayLiteral(deliveries.map(\.id)), arrayLiteral(deliveries.map(\.user.workspaceID)),
                arrayLiteral(deliveries.map(\.user.userID)), arrayLiteral(deliveries.map(\.insightType)),
                arrayLiteral(deliveries.map(\.outcome)), arrayLiteral(deliveries.map(\.decidedAt.rfc3339)),
                arrayLiteral(deliveries.map { String($0.thresholdsVersion) }), arrayLiteral(deliveries.map(\.record)),
            ]
        ).affected
    }

    private func insertInsights(_ insights: [SinkInsight]) throws -> Int {
        guard !insights.isEmpty else { return 0 }
        return try connection.execute(
            """
            INSERT INTO bte.insights (id, workspace_id, insight_type, priority, as_of, thresholds_version, record)
            SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[], $6::int[],
                $7::text[])
            ON CONFLICT DO NOTHING
            """,
            [
                arrayLiteral(insights.map(\.id)), arrayLiteral(insights.map(\.workspaceID)),
                arrayLiteral(insights.map(\.insightType)), arrayLiteral(insights.map(\.priority)),
                arrayLiteral(insights.map(\.asOf.rfc3339)),
                arrayLiteral(insights.map { String($0.thresholdsVersion) }), arrayLiteral(insights.map(\.record)),
            ]
        ).affected
    }

    /// The signal partitions wholly older than the `keepMonths` most recent months (the current
    /// one included), dropped when `execute` is set. Returns their names, oldest first.
    public func retention(keepMonths: Int, execute: Bool) throws -> [String] {
        try connection.execute(
            "SELECT partition_name FROM bte.drop_signal_partitions($1::int, $2::boolean)",
            [String(keepMonths), execute ? "true" : "false"]
        ).rows.compactMap { $0[0] }
    }
}

/// Sets `role` for the session: a store that writes only its own tables acts as a role that may
/// write nothing else. A login that can't act as it gets a clear error, not a bare SQLSTATE.
func actAs(_ role: String, on connection: PostgresConnection) throws {
    do {
        try connection.execute("SET ROLE \(role)")
    } catch let error as PostgresError where error.code != .connection {
        throw StoreError(
            .permission,
            "the database URL's role can't act as \(role) (GRANT \(role) TO it, or run bte migrate): \(error)")
    }
}

import BTEDomain
import Postgres

/// A row of `bte.rejected_events`, with the last redrive of it.
public struct StoredReject: Sendable {
    public var id: Int64
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: [UInt8]?
    /// nil when it was not kept (personal data, intent telemetry).
    public var payload: [UInt8]?
    public var payloadBytes: Int
    /// Whether the payload was kept (it is loaded only on request).
    public var payloadKept: Bool
    public var code: String
    public var message: String
    public var rejectedAt: String
    /// The outcome of the latest redrive attempt, if any.
    public var lastRedrive: String?
}

/// Which rejects: by code, topic, age or ids (all given filters apply).
public struct RejectFilter: Sendable {
    public var codes: [String] = []
    public var topic: String?
    public var since: Timestamp?
    public var ids: [Int64] = []
    public var limit = 100

    public init() {}
}

/// Reads `bte.rejected_events` (any role that may: the reader, or ingest for a redrive).
public final class RejectStore {
    private let connection: PostgresConnection

    public init(url: String) throws {
        connection = try PostgresConnection(url: url, applicationName: "bte-rejects")
    }

    /// Oldest first, at most `filter.limit` (0: no limit), with their payloads when `payloads`.
    public func rejects(_ filter: RejectFilter, payloads: Bool = false) throws -> [StoredReject] {
        let rows = try connection.execute(
            """
            SELECT r.id, r.source_topic, r.source_partition, r.source_offset,
                   \(payloads ? "encode(r.message_key, 'hex'), encode(r.payload, 'hex')" : "NULL, NULL"),
                   coalesce(octet_length(r.payload), -1), r.error_code, r.error_message,
                   to_char(r.rejected_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   (SELECT d.outcome FROM bte.redrives d WHERE d.reject_id = r.id ORDER BY d.id DESC LIMIT 1)
            FROM bte.rejected_events r
            WHERE (cardinality($1::text[]) = 0 OR r.error_code = ANY($1::text[]))
              AND ($2::text IS NULL OR r.source_topic = $2::text)
              AND ($3::timestamptz IS NULL OR r.rejected_at >= $3::timestamptz)
              AND (cardinality($4::bigint[]) = 0 OR r.id = ANY($4::bigint[]))
            ORDER BY r.id
            LIMIT $5
            """,
            [
                arrayLiteral(filter.codes), filter.topic, filter.since?.rfc3339,
                arrayLiteral(filter.ids.map { String($0) }), filter.limit > 0 ? String(filter.limit) : nil,
            ]
        ).rows
        return rows.compactMap { row in
            guard let id = row[0].flatMap({ Int64($0) }), let topic = row[1],
                let partition = row[2].flatMap({ Int32($0) }), let offset = row[3].flatMap({ Int64($0) })
            else { return nil }
            let size = row[6].flatMap { Int($0) } ?? -1
            return StoredReject(
                id: id, topic: topic, partition: partition, offset: offset, key: row[4].flatMap(bytes(hex:)),
                payload: size >= 0 ? (row[5].flatMap(bytes(hex:)) ?? (payloads ? [] : nil)) : nil,
                payloadBytes: max(size, 0), payloadKept: size >= 0, code: row[7] ?? "", message: row[8] ?? "",
                rejectedAt: row[9] ?? "",
                lastRedrive: row[10])
        }
    }

    /// Every redrive attempt of a reject, oldest first: (when, outcome, by, detail).
    public func redrives(of rejectID: Int64) throws -> [(at: String, outcome: String, by: String, detail: String)] {
        try connection.execute(
            """
            SELECT to_char(attempted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), outcome, requested_by,
                   concat_ws(' ', record_source, stored_table, stored_event_id, error_code)
            FROM bte.redrives WHERE reject_id = $1 ORDER BY id
            """, [String(rejectID)]
        ).rows.map { ($0[0] ?? "", $0[1] ?? "", $0[2] ?? "", $0[3] ?? "") }
    }
}

public func bytes(hex: String) -> [UInt8]? {
    var result: [UInt8] = []
    result.reserveCapacity(hex.utf8.count / 2)
    var high: UInt8?
    for character in hex.utf8 {
        let value: UInt8
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): value = character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): value = character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): value = character - UInt8(ascii: "A") + 10
        default: return nil
        }
        if let h = high {
            result.append(h << 4 | value)
            high = nil
        } else {
            high = value
        }
    }
    return high == nil ? result : nil
}

/// One reject to redrive, and what today's validator makes of it.
public struct RedriveAttempt: Sendable {
    public enum Candidate: Sendable {
        case valid(IncomingRecord)
        case invalid(Rejection)
        /// Its payload was not kept.
        case notRedrivable
    }

    public var rejectID: Int64
    /// A corrected record from `--fixed` rather than the reject's own bytes.
    public var fixed: Bool
    public var candidate: Candidate

    public init(rejectID: Int64, fixed: Bool, candidate: Candidate) {
        self.rejectID = rejectID
        self.fixed = fixed
        self.candidate = candidate
    }
}

/// What a redrive attempt did (recorded in `bte.redrives`).
public struct RedriveResult: Sendable, Equatable {
    public enum Outcome: String, Sendable {
        case stored
        /// The record is in its log already (an earlier redrive, or a re-delivery): nothing new.
        case alreadyStored = "already_stored"
        /// Its id is in the log with other content.
        case conflict
        /// PostgreSQL refused the row.
        case refused
        case stillInvalid = "still_invalid"
        case notRedrivable = "not_redrivable"
    }

    public var rejectID: Int64
    public var outcome: Outcome
    public var table: LogTable?
    public var eventID: String?
    public var code: String?
    public var message: String?

    public init(
        rejectID: Int64, outcome: Outcome, table: LogTable? = nil, eventID: String? = nil, code: String? = nil,
        message: String? = nil
    ) {
        self.rejectID = rejectID
        self.outcome = outcome
        self.table = table
        self.eventID = eventID
        self.code = code
        self.message = message
    }
}

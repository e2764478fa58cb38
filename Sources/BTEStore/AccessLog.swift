import BTEDomain
import Postgres

/// One read of personal data through the API, as recorded.
public struct AccessEntry: Sendable, Equatable {
    public let at: String
    public let keyID: Int64
    public let workspaceID: String
    public let route: String
    /// The person read, by reference (`PersonReference`): the log holds no user id.
    public let personRef: String?
}

extension ProjectionReader {
    /// Appends a read of `user`'s data by API key `keyID` to the access log, before the data is
    /// read: a read that can't be recorded is not served.
    public func recordAccess(keyID: Int64, route: String, user: UserKey) throws {
        do {
            try connection.transaction("BEGIN READ WRITE") {
                try connection.execute(
                    "INSERT INTO privacy.access_log (key_id, workspace_id, route, person_ref) VALUES ($1, $2, $3, $4)",
                    [String(keyID), user.workspaceID, route, PersonReference.of(user)])
            }
        } catch let error as PostgresError where error.sqlState == "25006" || error.sqlState == "0A000" {
            // A standby (in recovery) refuses a read-write transaction: 0A000 for BEGIN READ
            // WRITE, 25006 for a write in a read-only one.
            throw StoreError(.readOnly, "the database takes no writes now (a standby), so the read can't be recorded")
        }
    }

    /// A workspace's recorded reads, oldest first (at most `limit`, the newest ones), optionally
    /// of one user and since a time.
    public func accesses(workspaceID: String, userID: String?, since: Timestamp?, limit: Int) throws -> [AccessEntry] {
        try connection.execute(
            """
            SELECT * FROM (
                SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), key_id, workspace_id::text,
                       route, person_ref, seq
                FROM privacy.access_log
                WHERE workspace_id = $1 AND ($2::text IS NULL OR person_ref = $2)
                  AND ($3::timestamptz IS NULL OR at >= $3)
                ORDER BY seq DESC LIMIT $4) newest
            ORDER BY seq
            """,
            [
                workspaceID,
                userID.map { PersonReference.of(UserKey(workspaceID: workspaceID, userID: $0)) },
                since?.rfc3339, String(limit),
            ]
        ).rows.map {
            AccessEntry(
                at: $0[0] ?? "", keyID: Int64($0[1] ?? "") ?? 0, workspaceID: $0[2] ?? "", route: $0[3] ?? "",
                personRef: $0[4])
        }
    }
}

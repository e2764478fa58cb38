import BTEDomain
import Postgres

/// One read of personal data through the API, as recorded.
public struct AccessEntry: Sendable, Equatable {
    public let at: String
    public let keyID: Int64
    public let workspaceID: String
    public let route: String
    public let userID: String?
}

extension ProjectionReader {
    /// Appends a read of `user`'s data by API key `keyID` to the access log, before the data is
    /// read: a read that can't be recorded is not served.
    public func recordAccess(keyID: Int64, route: String, user: UserKey) throws {
        try connection.transaction("BEGIN READ WRITE") {
            try connection.execute(
                "INSERT INTO privacy.access_log (key_id, workspace_id, route, user_id) VALUES ($1, $2, $3, $4)",
                [String(keyID), user.workspaceID, route, user.userID])
        }
    }

    /// A workspace's recorded reads, oldest first (at most `limit`, the newest ones), optionally
    /// of one user and since a time.
    public func accesses(workspaceID: String, userID: String?, since: Timestamp?, limit: Int) throws -> [AccessEntry] {
        try connection.execute(
            """
            SELECT * FROM (
                SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), key_id, workspace_id::text,
                       route, user_id, seq
                FROM privacy.access_log
                WHERE workspace_id = $1 AND ($2::text IS NULL OR user_id = $2)
                  AND ($3::timestamptz IS NULL OR at >= $3)
                ORDER BY seq DESC LIMIT $4) newest
            ORDER BY seq
            """, [workspaceID, userID, since?.rfc3339, String(limit)]
        ).rows.map {
            AccessEntry(
                at: $0[0] ?? "", keyID: Int64($0[1] ?? "") ?? 0, workspaceID: $0[2] ?? "", route: $0[3] ?? "",
                userID: $0[4])
        }
    }
}

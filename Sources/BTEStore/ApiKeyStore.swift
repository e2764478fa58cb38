import BTEDomain
import Postgres

/// An API key as stored: never the key itself.
public struct StoredApiKey: Sendable, Equatable {
    public var id: Int64
    public var prefix: String
    public var sha256: [UInt8]
    public var workspaceID: String
    public var scope: String
    public var ratePerSecond: Int
    public var burst: Int
    public var createdBy: String
    public var createdAt: String
    public var revokedAt: String?
}

/// `bte.api_keys`: created and revoked by an admin, read by the API server (reader role).
public final class ApiKeyStore {
    private let connection: PostgresConnection

    public init(url: String) throws {
        connection = try PostgresConnection(
            url: url, applicationName: "bte-keys",
            options: PostgresConnectionOptions(statementTimeoutMilliseconds: 5_000))
    }

    /// False once the server or network dropped the connection.
    public var isHealthy: Bool { connection.isHealthy }

    private static let columns = """
        id, key_prefix, encode(key_sha256, 'hex'), workspace_id::text, scope, rate_per_second, burst, created_by,
        to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        to_char(revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
        """

    private static func key(_ row: [String?]) -> StoredApiKey? {
        guard let id = row[0].flatMap({ Int64($0) }), let hash = row[2].flatMap(bytes(hex:)) else { return nil }
        return StoredApiKey(
            id: id, prefix: row[1] ?? "", sha256: hash, workspaceID: row[3] ?? "", scope: row[4] ?? "",
            ratePerSecond: row[5].flatMap { Int($0) } ?? 1, burst: row[6].flatMap { Int($0) } ?? 1,
            createdBy: row[7] ?? "", createdAt: row[8] ?? "", revokedAt: row[9])
    }

    /// Stores a new key's hash; returns its id.
    public func create(
        prefix: String, sha256: [UInt8], workspaceID: String, scope: String, ratePerSecond: Int, burst: Int,
        by: String
    ) throws -> Int64 {
        let id = try connection.execute(
            """
            INSERT INTO bte.api_keys (key_prefix, key_sha256, workspace_id, scope, rate_per_second, burst, created_by)
            VALUES ($1, decode($2, 'hex'), $3::uuid, $4, $5, $6, $7) RETURNING id
            """,
            [
                prefix, hexString(sha256), workspaceID, scope, String(ratePerSecond), String(burst), by,
            ]
        ).rows.first?[0].flatMap { Int64($0) }
        return id ?? 0
    }

    public func list() throws -> [StoredApiKey] {
        try connection.execute("SELECT \(Self.columns) FROM bte.api_keys ORDER BY id").rows.compactMap(Self.key)
    }

    /// The key with this hash, revoked or not.
    public func find(sha256: [UInt8]) throws -> StoredApiKey? {
        try connection.execute(
            "SELECT \(Self.columns) FROM bte.api_keys WHERE key_sha256 = decode($1, 'hex')", [hexString(sha256)]
        ).rows.first.flatMap(Self.key)
    }

    /// Marks the key revoked; false when there is no such key or it was revoked already.
    public func revoke(id: Int64, by: String) throws -> Bool {
        !(try connection.execute(
            """
            UPDATE bte.api_keys SET revoked_at = now(), revoked_by = $2 WHERE id = $1 AND revoked_at IS NULL
            RETURNING id
            """, [String(id), by]
        ).rows.isEmpty)
    }
}

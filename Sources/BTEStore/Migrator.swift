import BTEDomain
import Foundation
import Postgres

/// Applies the SQL files in `Migrations/` in name order, once each, recording them in
/// `bte.schema_migrations`. A recorded migration whose file changed is an error, not a re-run.
public struct Migrator {
    public struct Migration: Sendable {
        public let version: String
        public let sql: String
        public var checksum: String { String(UInt64(bitPattern: fingerprint(Array(sql.utf8))), radix: 16) }
    }

    public let migrations: [Migration]

    public init() throws {
        let directory = Bundle.module.bundleURL.appendingPathComponent("Migrations")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let urls = names.filter { $0.hasSuffix(".sql") }.map { directory.appendingPathComponent($0) }
        guard !urls.isEmpty else {
            throw StoreError(.migrationsMissing, "no SQL migrations found in \(directory.path)")
        }
        migrations = try urls.sorted { $0.lastPathComponent < $1.lastPathComponent }.map { url in
            Migration(
                version: url.deletingPathExtension().lastPathComponent,
                sql: try String(contentsOf: url, encoding: .utf8))
        }
    }

    /// Connects to `url` (an owner of the database) and applies what is missing.
    @discardableResult
    public func apply(url: String) throws -> [String] {
        try apply(on: try PostgresConnection(url: url, applicationName: "bte-migrate"))
    }

    /// Applies what is missing; returns the versions applied now.
    @discardableResult
    public func apply(on connection: PostgresConnection) throws -> [String] {
        try connection.execute("SET client_min_messages = warning")
        try connection.execute("SELECT pg_advisory_lock(hashtext('bte.migrate'))")
        defer { _ = try? connection.execute("SELECT pg_advisory_unlock(hashtext('bte.migrate'))") }
        try connection.executeScript(
            """
            CREATE SCHEMA IF NOT EXISTS bte;
            CREATE TABLE IF NOT EXISTS bte.schema_migrations (
                version text PRIMARY KEY,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            );
            """)
        let rows = try connection.execute("SELECT version, checksum FROM bte.schema_migrations").rows
        var applied: [String: String] = [:]
        for row in rows { if let version = row[0] { applied[version] = row[1] ?? "" } }
        var done: [String] = []
        for migration in migrations {
            if let checksum = applied[migration.version] {
                guard checksum == migration.checksum else {
                    throw StoreError(
                        .migrationChanged,
                        "migration \(migration.version) was applied with checksum \(checksum) "
                            + "but its file now has \(migration.checksum); "
                            + "add a new migration instead of editing an applied one"
                    )
                }
                continue
            }
            try connection.transaction {
                try connection.executeScript(migration.sql)
                try connection.execute(
                    "INSERT INTO bte.schema_migrations (version, checksum) VALUES ($1, $2)",
                    [migration.version, migration.checksum])
            }
            done.append(migration.version)
        }
        return done
    }
}

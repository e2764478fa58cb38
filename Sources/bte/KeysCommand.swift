import ArgumentParser
import BTEAPI
import BTECLI
import BTEDomain
import BTEStore
import BTEWorker
import Foundation
import Postgres

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "API keys of bte serve: create (shown once), list, revoke.",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a key for one workspace; prints it once (only its SHA-256 is stored).")
        @Option(
            help: ArgumentHelp(
                "The workspace (UUID) the key belongs to; `default` for the users of interaction events "
                    + "that name no workspace.")) var workspace: String
        @Option(
            help: ArgumentHelp(
                "read (read endpoints), write (collect), admin (both, and feedback) or operator (the dashboard's "
                    + "pipeline-wide figures)."))
        var scope: String
        @Option(help: "Requests per second allowed on average.") var rate = 100
        @Option(help: "Requests allowed at once above the rate.") var burst: Int?
        @Option(help: "Who creates it (default $USER).") var by: String?
        @Option(help: "libpq URI of an admin (member of bte_admin) (env BTE_ADMIN_DATABASE_URL).")
        var databaseURL: String?

        func run() async throws {
            try await guarded {
                guard ["read", "write", "admin", "operator"].contains(scope) else {
                    throw CLIError("--scope is read, write, admin or operator")
                }
                let workspace = self.workspace == "default" ? UserKey.defaultWorkspace : self.workspace
                guard canonicalUUID(workspace) != nil else {
                    throw CLIError("--workspace is a UUID (8-4-4-4-12 hex digits) or default, not \(workspace)")
                }
                guard rate > 0, (burst ?? rate) > 0 else { throw CLIError("--rate and --burst must be positive") }
                let url = try KeysCommand.adminURL(databaseURL)
                let key = NewApiKey()
                let (scope, rate, burst) = (self.scope, self.rate, self.burst ?? self.rate)
                let workspaceID = workspace.lowercased()
                let by = self.by ?? ProcessInfo.processInfo.environment["USER"] ?? "unknown"
                let id = try await KeysCommand.asAdmin {
                    try ApiKeyStore(url: url).create(
                        prefix: key.prefix, sha256: key.sha256, workspaceID: workspaceID, scope: scope,
                        ratePerSecond: rate,
                        burst: burst, by: by)
                }
                print("key \(id) for workspace \(workspaceID), scope \(scope), \(rate)/s (burst \(burst)):")
                print(key.text)
                print("(shown once: store it now; only its SHA-256 is kept)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every key: id, prefix, workspace, scope, rate, state.")
        @Option(help: "libpq URI of a reader (env BTE_READER_DATABASE_URL).") var readerDatabaseURL: String?

        func run() async throws {
            try await guarded {
                let url = try Setting.reader.resolve(readerDatabaseURL)
                let keys = try await onThread("keys") { try ApiKeyStore(url: url).list() }
                if keys.isEmpty { print("no keys") }
                for key in keys {
                    print(
                        "\(key.id)  \(key.prefix)…  workspace \(key.workspaceID)  \(key.scope)  "
                            + "\(key.ratePerSecond)/s burst \(key.burst)  "
                            + "created \(key.createdAt) by \(key.createdBy)  "
                            + (key.revokedAt.map { "revoked \($0)" } ?? "active"))
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a key; servers refuse it within seconds (they remember keys for at most 2 s).")
        @Argument(help: "The key's id (bte keys list).") var id: Int64
        @Option(help: "Who revokes it (default $USER).") var by: String?
        @Option(help: "libpq URI of an admin (member of bte_admin) (env BTE_ADMIN_DATABASE_URL).")
        var databaseURL: String?

        func run() async throws {
            try await guarded {
                let url = try KeysCommand.adminURL(databaseURL)
                let (id, by) = (self.id, self.by ?? ProcessInfo.processInfo.environment["USER"] ?? "unknown")
                let revoked = try await KeysCommand.asAdmin { try ApiKeyStore(url: url).revoke(id: id, by: by) }
                guard revoked else { throw CLIError("no active key with id \(id)") }
                print("key \(id) revoked")
            }
        }
    }
}

extension KeysCommand {
    /// Keys are created and revoked by an admin: `--database-url`, else BTE_ADMIN_DATABASE_URL.
    static func adminURL(_ flag: String?) throws -> String {
        guard let url = flag ?? ProcessInfo.processInfo.environment["BTE_ADMIN_DATABASE_URL"], !url.isEmpty else {
            throw CLIError(
                "no admin database: pass --database-url or set BTE_ADMIN_DATABASE_URL (a member of bte_admin)")
        }
        return url
    }

    /// Runs a key store call; a role that may not write keys is told which one may.
    static func asAdmin<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        do {
            return try await onThread("keys", body)
        } catch let error as PostgresError where error.sqlState == "42501" || error.sqlState == "25006" {
            throw CLIError(
                "this database role may not manage API keys: give an admin's URL (a member of bte_admin) "
                    + "with --database-url or BTE_ADMIN_DATABASE_URL")
        }
    }
}

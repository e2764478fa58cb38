import ArgumentParser
import BTECLI
import BTEStore
import BTEWorker

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the SQL migrations (needs an owner's database URL).")
    @OptionGroup var options: ConnectionOptions

    func run() async throws {
        try await guarded {
            let url = try options.resolvedDatabaseURL()
            let applied = try await onThread("migrate") { try Migrator().apply(url: url) }
            print(applied.isEmpty ? "migrations: up to date" : "migrations: applied \(applied.joined(separator: ", "))")
        }
    }
}

import ArgumentParser
import BTECLI
import BTEDomain
import BTEStore
import BTEWorker
import Foundation

extension PrivacyCommand {
    struct Ledger: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the privacy ledger: every erase, suppress and unsuppress request, as NDJSON.",
            discussion: """
                One line per request, oldest first, with its status history. People are named by reference \
                only, so the file can be kept beside the backups. After a restore, `bte privacy reapply` \
                carries out the requests the restored cluster missed (docs/operations.md).
                """)
        @Option(help: "Write to this file (default: standard output).") var output: String?
        @Option(help: "libpq URI of a reader (env BTE_READER_DATABASE_URL).") var readerDatabaseURL: String?

        func run() async throws {
            try await guarded {
                let url = try Setting.reader.resolve(readerDatabaseURL)
                let output = output
                let written = try await onThread("privacy-ledger") {
                    var text = ""
                    let count = try PrivacyStore(url: url).ledger { text += $0 + "\n" }
                    if let output {
                        do { try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic) } catch {
                            throw CLIError("cannot write \(output): \(error.localizedDescription)")
                        }
                    } else {
                        FileHandle.standardOutput.write(Data(text.utf8))
                    }
                    return count
                }
                if let output {
                    FileHandle.standardError.write(Data("ledger: \(written) requests to \(output)\n".utf8))
                }
            }
        }
    }

    struct Reapply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "After a restore: carry out the ledger's requests that the restored cluster does not hold.",
            discussion: """
                Files each missing request again with its history and carries it out: erasures by reference \
                (every user id whose reference matches loses its subject, vectors, deliveries and rejects), \
                suppressions and their removal. Requests the cluster holds are left alone. Run it before ingest \
                resumes, then again with --caught-up once ingest has read the input topics to their end (the \
                replay stores again what the erased people sent after the restore point), and only then start \
                the projector, the sink and the API.
                """)
        @Argument(help: "The ledger file that `bte privacy ledger` wrote.") var ledger: String
        @Flag(help: "Ingest has caught up since the first run: erase the reapplied erasures' people again.")
        var caughtUp = false
        @Option(help: "libpq URI of a member of bte_privacy, e.g. an admin (env BTE_DATABASE_URL).")
        var databaseURL: String?

        func run() async throws {
            try await guarded {
                let url = try Setting.database.resolve(databaseURL)
                let data: Data
                do { data = try Data(contentsOf: URL(fileURLWithPath: ledger)) } catch {
                    throw CLIError("cannot read \(ledger): \(error.localizedDescription)")
                }
                var entries: [PrivacyLedgerEntry] = []
                for (index, line) in data.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated()
                where !line.isEmpty {
                    do { entries.append(try PrivacyLedgerEntry.parse(Array(line))) } catch let error as StoreError {
                        throw CLIError("\(ledger) line \(index + 1): \(error.message) (\(error.code.rawValue))")
                    }
                }
                let (toApply, caughtUp) = (entries, caughtUp)
                let done = try await onThread("privacy-reapply") {
                    try PrivacyStore(url: url).reapply(toApply, caughtUp: caughtUp)
                }
                print(
                    "reapplied \(done.reapplied) of \(entries.count) requests (\(done.held) held already): "
                        + "\(done.erasedUserIDs) user ids erased (\(done.subjectsDeleted) subjects deleted), "
                        + "\(done.suppressed) suppressed, \(done.unsuppressed) unsuppressed")
            }
        }
    }
}

import BTETestSupport
import Foundation
import Testing

/// The command line as a user meets it.
@Suite(.serialized) struct CommandTests {
    @Test func topicsApplyIsIdempotent() throws {
        let prefix = TestEnvironment.uniqueName("cli") + "."
        let topicsDir = TestEnvironment.packageRoot.appendingPathComponent("topics").path
        let arguments = [
            "topics", "apply", "--brokers", try TestEnvironment.brokers(), "--topic-prefix", prefix, "--topics-dir",
            topicsDir,
        ]
        let first = try BTEProcess(arguments)
        #expect(first.wait(timeout: 60) == 0, "\(first.log)")
        let created = first.log.split(separator: "\n").filter { $0.hasSuffix(")") && $0.contains(": created (") }
        #expect(created.count == 8, "\(first.log)")
        #expect(first.log.contains("topic \(prefix)bte.behavioral-vectors.v1: created (6 partitions, compact)"))
        let second = try BTEProcess(arguments)
        #expect(second.wait(timeout: 60) == 0)
        #expect(second.log.split(separator: "\n").filter { $0.contains(": exists (") }.count == 8, "\(second.log)")
    }

    /// `bte generate` twice: without a seed each run adds new events (a fresh seed, printed), so
    /// nothing conflicts; with the printed seed and end, the same bytes again (duplicates only).
    @Test func generateTwiceAddsEventsOrRepeatsThemExactly() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        func generate(_ extra: [String]) throws -> String {
            let process = try BTEProcess(
                [
                    "generate", "--events", "60", "--bad-rounds", "0", "--duplicate-every", "0", "--brokers",
                    topics.brokers,
                    "--topic-prefix", topics.prefix,
                ] + extra)
            #expect(process.wait(timeout: 60) == 0, "\(process.log)")
            return process.log
        }
        let first = try generate([])
        _ = try generate([])
        let twice = try ingestUntilIdle(db, topics, group: "bte-ingest")
        #expect(twice.rejected.isEmpty, "\(twice.rejected)")
        #expect(twice.duplicates.values.reduce(0, +) == 0)
        let stored = twice.stored.values.reduce(0, +)
        #expect(stored == 120, "\(twice)")
        // "seed N (--seed N --end T produces these bytes again)"
        let line = first.split(separator: "\n").first { $0.hasPrefix("seed ") } ?? ""
        let words = line.split(separator: " ")
        #expect(words.count >= 6, "\(first)")
        guard words.count >= 6 else { return }
        _ = try generate(["--seed", String(words[1]), "--end", String(words[5])])
        let again = try ingestUntilIdle(db, topics, group: "bte-ingest")
        #expect(again.rejected.isEmpty, "\(again.rejected)")
        #expect(again.stored.values.reduce(0, +) == 0)
        #expect(again.duplicates.values.reduce(0, +) == 60)
    }

    @Test func userMistakesPrintOneLineAndExitNonZero() throws {
        let noDatabase = try BTEProcess(["ingest", "--brokers", "127.0.0.1:1"], environment: ["BTE_DATABASE_URL": ""])
        #expect(noDatabase.wait(timeout: 30) == 1)
        #expect(noDatabase.log == "bte: error: bte_usage: no database: pass --database-url or set BTE_DATABASE_URL\n")
        let badTopics = try BTEProcess(["topics", "apply", "--brokers", "127.0.0.1:1", "--topics-dir", "/nonexistent"])
        #expect(badTopics.wait(timeout: 30) == 1)
        #expect(badTopics.log.hasPrefix("bte: error: "))
        #expect(badTopics.log.split(separator: "\n").count == 1)
    }
}

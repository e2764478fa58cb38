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

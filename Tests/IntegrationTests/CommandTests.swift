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
        // One per file of topics/: six inputs and outputs, dead letters, model runs, insight deliveries.
        #expect(created.count == 9, "\(first.log)")
        #expect(first.log.contains("topic \(prefix)bte.insight-deliveries.v1: created (6 partitions"))
        #expect(first.log.contains("topic \(prefix)bte.behavioral-vectors.v1: created (6 partitions, compact)"))
        let second = try BTEProcess(arguments)
        #expect(second.wait(timeout: 60) == 0)
        #expect(second.log.split(separator: "\n").filter { $0.contains(": exists (") }.count == 9, "\(second.log)")
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

    /// Every flag the docs show with a `bte` command is one that command's --help lists: the
    /// docs can't drift from the commands.
    @Test func theFlagsTheDocsNameAreTheCommands() throws {
        let root = TestEnvironment.packageRoot
        let documents = [
            "README.md", "docs/operations.md", "docs/api.md", "docs/producers.md", "docs/consumers.md",
            "docs/models.md", "docs/architecture.md",
        ]
        let span = try Regex(#"`bte ([a-z-]+)((?: [a-z][a-z-]*)?)([^`]*)`"#)
        let flag = try Regex(#"--[a-z][a-z0-9-]*"#)
        var helps: [String: String] = [:]
        func help(_ words: [String]) throws -> String? {
            let name = words.joined(separator: " ")
            if let known = helps[name] { return known }
            let process = try BTEProcess(words + ["--help"])
            guard process.wait(timeout: 30) == 0 else { return nil }
            helps[name] = process.log
            return process.log
        }
        var missing: [String] = []
        for document in documents {
            let text = try String(contentsOf: root.appendingPathComponent(document), encoding: .utf8)
            for match in text.matches(of: span) {
                let command = String(text[match.range].dropFirst(5).dropLast())
                let words = command.split(separator: " ").map(String.init)
                guard let first = words.first else { continue }
                // The deepest subcommand the words name (`bte models bandit choose`).
                var path = [first]
                var usage = try help(path)
                for word in words.dropFirst() {
                    guard !word.hasPrefix("-"), let sub = try help(path + [word]) else { break }
                    path.append(word)
                    usage = sub
                }
                guard let usage else {
                    missing.append("\(document): bte \(first) has no --help")
                    continue
                }
                for found in command.matches(of: flag) {
                    let name = String(command[found.range])
                    if !usage.contains(name) { missing.append("\(document): `bte \(command)`: \(name)") }
                }
            }
        }
        #expect(missing.isEmpty, "\(missing.joined(separator: "\n"))")
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

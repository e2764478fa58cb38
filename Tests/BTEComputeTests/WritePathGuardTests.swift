import Foundation
import Testing

/// Only ingest writes the intent and chat logs (seed 002: a single emission point). The logs
/// are appended by one table-routed COPY in IngestStore, used by the ingest module (and the
/// benchmarks' scratch databases); nothing else may hold a write statement for them or a way to the appender.
@Suite struct AgentLogWriteGuardTests {
    static let ingestFiles: Set<String> = [
        "Sources/BTEStore/IngestStore.swift", "Sources/BTEIngest/IngestWorker.swift",
        // Benchmarks that load scratch databases through the appender.
        "Sources/bte-bench/IngestBenchmark.swift", "Sources/bte-bench/IntentReportBenchmark.swift",
    ]

    /// Write statements that name an agent log, or that take their table from a variable.
    static func writePaths(in source: String) -> [String] {
        let patterns = [
            #"(?i)\b(insert\s+into|copy|update|delete\s+from|truncate(\s+table)?|merge\s+into)\s+"#
                + #""?agent"?\s*\.\s*"?(intent_events|chat_events)\b"#,
            #"(?i)\b(insert\s+into|copy|update|delete\s+from|merge\s+into)\s+\\\("#,
        ]
        return patterns.flatMap { pattern -> [String] in
            guard let regex = try? NSRegularExpression(pattern: pattern) else { return ["bad pattern \(pattern)"] }
            return regex.matches(in: source, range: NSRange(source.startIndex..., in: source)).compactMap {
                Range($0.range, in: source).map { String(source[$0]) }
            }
        }
    }

    static func sources() throws -> [(path: String, text: String)] {
        let root = ModuleGraphTests.root
        guard let walker = FileManager.default.enumerator(atPath: root.appendingPathComponent("Sources").path) else {
            return []
        }
        return try walker.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }.sorted().map {
            ("Sources/" + $0, try String(contentsOf: root.appendingPathComponent("Sources/" + $0), encoding: .utf8))
        }
    }

    @Test func theDetectorFindsWritePaths() {
        #expect(
            Self.writePaths(in: "try c.execute(\"INSERT INTO agent.intent_events (event_id) VALUES ($1)\")").count == 1)
        #expect(Self.writePaths(in: "\"copy agent.chat_events FROM STDIN\"").count == 1)
        #expect(Self.writePaths(in: "DELETE FROM \"agent\".\"intent_events\"").count == 1)
        #expect(Self.writePaths(in: "\"COPY \\(table.rawValue) FROM STDIN\"").count == 1)
        #expect(Self.writePaths(in: "SELECT * FROM agent.intent_events WHERE outcome = 'matched'").isEmpty)
        #expect(Self.writePaths(in: "INSERT INTO agent.verb_boost_rules (verb_fqn) VALUES ($1)").isEmpty)
    }

    @Test func onlyIngestHasAWritePathToTheAgentLogs() throws {
        let sources = try Self.sources()
        #expect(sources.count > 20, "sources not found")
        for (path, text) in sources {
            let writes = Self.writePaths(in: text)
            if path == "Sources/BTEStore/IngestStore.swift" {
                // The one table-routed COPY of ingest.
                #expect(writes.count == 1, "\(path): \(writes)")
            } else {
                #expect(writes.isEmpty, "\(path) writes: \(writes)")
            }
            if text.contains("IngestStore") {
                #expect(
                    Self.ingestFiles.contains(path) || path.hasPrefix("Sources/BTEIngest/"), "\(path) uses IngestStore")
            }
        }
    }
}

import BTETestSupport
import Foundation
import Testing

/// docs/models.md quotes `scripts/models-example.sh`'s output; the two must not drift apart.
@Suite struct ModelsExampleTests {
    @Test func theDocsQuoteTheExampleScriptVerbatim() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let environment = [
            "BTE": TestEnvironment.bteBinary(), "BTE_DATABASE_URL": db.ingestURL,
            "BTE_KAFKA_BROKERS": topics.brokers, "BTE_TOPIC_PREFIX": topics.prefix, "BTE_LOG_LEVEL": "warning",
        ]
        let apply = try BTEProcess(["topics", "apply"], environment: environment)
        #expect(apply.wait(timeout: 60) == 0, "\(apply.log)")

        let root = TestEnvironment.packageRoot
        let script = Process()
        script.executableURL = URL(fileURLWithPath: "/bin/bash")
        script.arguments = [root.appendingPathComponent("scripts/models-example.sh").path]
        script.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        let errors = Pipe()
        script.standardOutput = output
        script.standardError = errors
        try script.run()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let complaints = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        script.waitUntilExit()
        #expect(script.terminationStatus == 0, "\(complaints)")

        let docs = try String(contentsOf: root.appendingPathComponent("docs/models.md"), encoding: .utf8)
        let begin = try #require(docs.range(of: "<!-- models-example:begin -->\n```\n"))
        let end = try #require(
            docs.range(of: "```\n<!-- models-example:end -->", range: begin.upperBound..<docs.endIndex))
        let quoted = String(docs[begin.upperBound..<end.lowerBound])
        // The script ends with a blank line after the last command; the block does not.
        let produced = printed.hasSuffix("\n\n") ? String(printed.dropLast()) : printed
        #expect(produced == quoted, "the script printed:\n\(printed)")
        #expect(quoted.contains("EM: 84 iterations, converged"))
        // A recommendation holds the controls the fitted days never moved, says where draws left
        // a KPI's possible range, and is checked by the guardrails.
        let recommendation = try #require(quoted.range(of: "$ bte models recommend"))
        let planned = quoted[recommendation.lowerBound...]
        #expect(planned.contains("held where the fitted days kept them: price_index 1.000, copy_score 0.000"))
        #expect(planned.contains("kept in range: retention_d7 is [0, 1]"))
        #expect(planned.contains("guardrails: violated"))
    }
}

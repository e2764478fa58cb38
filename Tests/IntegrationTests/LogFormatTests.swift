import BTEDomain
import BTETestSupport
import Foundation
import Kafka
import Testing

/// `--log-format json` on a real run: every line of stderr is one JSON object with the fixed
/// fields, a reject's line carries its coordinates, and no payload value is written.
@Suite(.serialized) struct LogFormatTests {
    @Test func ingestLogsOneJSONObjectALineWithCoordinatesAndNoPayload() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics(partitions: 1)
        // A business event without its actor: rejected (missing_field). Its metadata holds a
        // canary that must not reach the log.
        let value = """
            {"record_type":"business_event","event_id":"\(fixtureUUID(1, prefix: "10101010"))",
             "event_type":"deal.created",
             "entity_type":"deal","entity_id":"\(fixtureUUID(2))","workspace_id":"\(fixtureUUID(3))",
             "sub_vertical_id":"\(fixtureUUID(4))","timestamp":"2026-03-01T00:00:00Z",
             "metadata":{"note":"canary-log-7"}}
            """
        try topics.produce([
            KafkaOutgoingMessage(
                topic: topics.prefix + "bte.business-events.v1", key: Array("k".utf8), value: Array(value.utf8))
        ])
        let run = try BTEProcess(
            [
                "ingest", "--until-idle", "--brokers", topics.brokers, "--topic-prefix", topics.prefix,
                "--database-url", db.ingestURL, "--group", TestEnvironment.uniqueName("ingest-"), "--log-level",
                "debug",
            ], environment: ["BTE_LOG_FORMAT": "json"])
        #expect(run.wait(timeout: 120) == 0, "\(run.log)")
        // stdout's summary lines are not log lines; every other line is a JSON object.
        let lines = run.log.split(separator: "\n").map(String.init).filter { $0.hasPrefix("{") }
        #expect(lines.count >= 3, "\(run.log)")
        var reject: [String: String]?
        for line in lines {
            guard case .object(let members)? = try? JSONParser.parse(Array(line.utf8)) else {
                Issue.record("not a JSON object: \(line)")
                continue
            }
            let fields = Dictionary(
                members.compactMap { m -> (String, String)? in
                    if case .string(let text) = m.value { return (m.key, text) }
                    return nil
                }, uniquingKeysWith: { a, _ in a })
            #expect(members.prefix(4).map(\.key) == ["time", "level", "worker", "message"], "\(line)")
            #expect(fields["worker"] == "bte.ingest", "\(line)")
            if fields["message"] == "rejected" { reject = fields }
        }
        #expect(reject?["code"] == "missing_field", "\(lines)")
        #expect(reject?["source"] == "\(topics.prefix)bte.business-events.v1[0]@0", "\(lines)")
        #expect(!run.log.contains("canary-log-7"))

        // A format that is none: one line, exit 1.
        let bad = try BTEProcess(["ingest", "--log-format", "yaml", "--brokers", topics.brokers])
        #expect(bad.wait(timeout: 30) == 1)
        #expect(bad.log == "bte: error: bte_usage: --log-format (env BTE_LOG_FORMAT) is text or json, not yaml\n")
    }
}

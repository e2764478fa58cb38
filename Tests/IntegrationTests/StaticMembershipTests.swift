import BTETestSupport
import Foundation
import Kafka
import Testing

@Suite(.serialized) struct StaticMembershipTests {
    /// A member killed without leaving keeps its partitions until its session times out; with
    /// dynamic membership its replacement can't have them before then (measured here: 72 s with this
    /// 40 s session). With `--instance-id`, the replacement that comes back under the same id takes
    /// the dead member's place: it is assigned before the session would have expired, and resumes
    /// from the stored offsets, so every event is stored once.
    @Test func restartedStaticMemberResumesBeforeTheSessionExpires() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics(partitions: 3)
        let sessionSeconds = 40.0
        let arguments = [
            "ingest", "--brokers", topics.brokers, "--database-url", db.ingestURL, "--topic-prefix", topics.prefix,
            "--group", TestEnvironment.uniqueName("static-"), "--instance-id", "ingest-0",
            "--session-timeout-ms", String(Int(sessionSeconds * 1000)),
        ]
        let topic = topics.prefix + "bte.interaction-events.v1"
        func events(_ range: Range<Int>) -> [KafkaOutgoingMessage] {
            range.map { n in
                let user = "user-\(n % 7)"
                let value = """
                    {"event_id":"\(fixtureUUID(n, prefix: "5a5a5a5a"))","timestamp":"2026-03-01T10:00:00Z",\
                    "event_type":"tap","user_id":"\(user)","session_id":"s"}
                    """
                return KafkaOutgoingMessage(topic: topic, key: Array(user.utf8), value: Array(value.utf8))
            }
        }

        let first = try BTEProcess(arguments)
        defer { if first.process.isRunning { first.signal(SIGKILL) } }
        #expect(eventually(timeout: sessionSeconds * 2) { first.log.contains("partitions assigned") }, "\(first.log)")
        try topics.produce(events(0..<50))
        #expect(try eventually(timeout: 60) { try db.count("SELECT count(*) FROM core.interaction_events") == 50 })
        first.signal(SIGKILL)
        _ = first.wait(timeout: 10)

        // Produced while no member runs: the replacement must read them from the stored offsets.
        try topics.produce(events(50..<80))
        let restarted = Date()
        let second = try BTEProcess(arguments)
        defer { if second.process.isRunning { second.signal(SIGKILL) } }
        let assigned = eventually(timeout: sessionSeconds * 2) { second.log.contains("partitions assigned") }
        let seconds = Date().timeIntervalSince(restarted)
        #expect(assigned, "\(second.log)")
        #expect(
            seconds < sessionSeconds,
            "assigned after \(seconds) s; a dynamic member waits out the \(sessionSeconds) s session")
        #expect(try eventually(timeout: 60) { try db.count("SELECT count(*) FROM core.interaction_events") == 80 })
        second.signal(SIGTERM)
        #expect(second.wait(timeout: 30) == 0, "\(second.log)")

        // 80 produced, 80 distinct ids stored, offsets at the end of each partition.
        #expect(try db.count("SELECT count(DISTINCT event_id) FROM core.interaction_events") == 80)
        #expect(
            try db.count("SELECT coalesce(sum(next_offset), 0) FROM bte.ingest_offsets WHERE topic = '\(topic)'") == 80)
    }
}

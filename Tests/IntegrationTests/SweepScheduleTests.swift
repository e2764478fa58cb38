import BTEProjection
import BTETestSupport
import Foundation
import Kafka
import Testing

/// `bte sweep --every`: ticks of a fixed schedule, as_of = the tick, as a service with metrics,
/// and `--once` for a CronJob.
@Suite(.serialized) struct SweepScheduleTests {
    @Test func ticksAreMultiplesOfTheIntervalSinceTheEpoch() {
        let minute: Int64 = 60_000
        // 2026-03-01T10:07:30Z = 1772359650 s; the 15-minute tick before it is 10:00:00Z = 1772359200 s.
        #expect(ScheduledSweep.tick(atOrBefore: 1_772_359_650_000, every: 15 * minute) == 1_772_359_200_000)
        #expect(ScheduledSweep.tick(atOrBefore: 1_772_359_200_000, every: 15 * minute) == 1_772_359_200_000)
        #expect(ScheduledSweep.tick(atOrBefore: 1_772_359_199_999, every: 15 * minute) == 1_772_358_300_000)
        #expect(ScheduledSweep.tick(atOrBefore: -1, every: minute) == -minute)
    }

    static func vectorsAsOf(_ topics: TestTopics) throws -> Set<String> {
        Set(
            try topics.readAll(topics.prefix + "bte.behavioral-vectors.v1").compactMap { message in
                guard let value = message.value,
                    let object = try JSONSerialization.jsonObject(with: Data(value)) as? [String: Any]
                else { return nil }
                return object["as_of"] as? String
            })
    }

    static func minuteTick(_ date: Date) -> String {
        let tick = floor(date.timeIntervalSince1970 / 60) * 60
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: tick)).replacingOccurrences(of: "Z", with: ".000000Z")
    }

    @Test func aScheduledSweepPublishesAsOfItsTickAndServesMetrics() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        try ServiceTests.outputTopics(topics)
        // Interactions from a minute ago: users active in the window of any tick from now on.
        let stamp = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-60))
        try topics.produce(
            (1...6).map { n in
                let value = """
                    {"event_id":"\(fixtureUUID(n, prefix: "66666666"))","timestamp":"\(stamp)","event_type":"tap",
                     "user_id":"user-\(n % 3)","session_id":"s-\(n % 3)"}
                    """
                return KafkaOutgoingMessage(
                    topic: topics.prefix + "bte.interaction-events.v1", key: Array("user-\(n % 3)".utf8),
                    value: Array(value.utf8))
            })
        _ = try ingestUntilIdle(db, topics, group: TestEnvironment.uniqueName("ingest-"))

        let port = freePort()
        let before = Date()
        let process = try BTEProcess(
            [
                "sweep", "--every", "1m", "--brokers", topics.brokers, "--reader-database-url", db.readerURL,
                "--topic-prefix", topics.prefix, "--metrics-port", String(port),
            ])
        defer { if process.process.isRunning { process.signal(SIGKILL) } }
        let swept = eventually(timeout: 60) {
            httpGet(port: port, path: "/metrics")?.body.contains(#"bte_sweep_runs_total{outcome="success"} 1"#) == true
        }
        let after = Date()
        #expect(swept, "\(process.log)")
        let metrics = httpGet(port: port, path: "/metrics")?.body ?? ""
        // Three users (user-0, user-1, user-2), one vector each.
        #expect(metrics.contains(#"bte_sweep_outputs_total{topic="bte.behavioral-vectors.v1"} 3"#), "\(metrics)")
        #expect(metrics.contains("bte_sweep_duration_seconds_count 1"), "\(metrics)")
        #expect(httpGet(port: port, path: "/readyz")?.body == "sweep ready\n")
        // The first sweep is as of the minute's tick when it started (the minute may have turned).
        let asOf = try Self.vectorsAsOf(topics)
        #expect(asOf.count == 1)
        #expect(Set([Self.minuteTick(before), Self.minuteTick(after)]).isSuperset(of: asOf), "\(asOf)")
        process.signal(SIGTERM)
        #expect(process.wait(timeout: 30) == 0, "\(process.log)")

        // --once: the latest tick, then exit; the same as_of gives the same bytes.
        let once = try BTEProcess(
            [
                "sweep", "--every", "1m", "--once", "--brokers", topics.brokers, "--reader-database-url", db.readerURL,
                "--topic-prefix", topics.prefix,
            ])
        #expect(once.wait(timeout: 60) == 0, "\(once.log)")
        #expect(once.log.contains("sweep as of "), "\(once.log)")

        let usage = try BTEProcess(["sweep", "--every", "10s", "--brokers", topics.brokers])
        #expect(usage.wait(timeout: 30) == 1)
        #expect(usage.log.hasPrefix("bte: error: bte_usage: --every takes an interval from a minute to 366 days"))
        let both = try BTEProcess(["sweep", "--every", "1m", "--as-of", "2026-01-01T00:00:00Z"])
        #expect(both.wait(timeout: 30) == 1)
        #expect(both.log.contains("not both"), "\(both.log)")
    }
}

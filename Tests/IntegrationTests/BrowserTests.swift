import BTECompute
import BTEDomain
import BTETestSupport
import Foundation
import Kafka
import Testing

/// The dashboard in a real headless browser (Debian's chromium and chromium-driver, driven by
/// Selenium; installed by scripts/test.sh): it signs in through the form, renders its charts,
/// logs nothing to the console, and shows the numbers the API answers.
@Suite(.serialized) struct BrowserTests {
    @Test func dashboardRendersTheAPIsNumbersWithoutConsoleErrors() throws {
        let f = try ReadAPITests.fixture()
        defer {
            f.server.signal(SIGKILL)
            f.db.drop()
        }
        // What the API says: the latest value of each signal.
        let api = ReadAPITests.get(f.port, "/v1/workspaces/\(ReadAPITests.workspace)/signals", key: f.read)
        let parsed = try JSONSerialization.jsonObject(with: Data(api.body.utf8)) as? [String: Any]
        var expected: [String: String] = [:]
        for signal in parsed?["signals"] as? [[String: Any]] ?? [] {
            if let type = signal["signal_type"] as? String, let value = signal["signal_value"] as? NSNumber {
                expected[type] = value.stringValue
            }
        }
        // Hand-computed from the fixture: momentum's latest is 2.5 (thresholds v2), drop_off_point 3.
        #expect(expected == ["momentum": "2.5", "drop_off_point": "3"])

        // An operator key: the page has the pipeline's figures too.
        let operatorKey = try APITests.createKey(f.db, scope: "operator", rate: 100)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", TestEnvironment.packageRoot.appendingPathComponent("Tests/Browser/dashboard_check.py").path,
            "--url", "http://127.0.0.1:\(f.port)", "--key", operatorKey,
        ]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(stderr.suffix(4_000))")
        let page = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]

        #expect(page["signed_out_form"] as? Bool == true)
        #expect(page["title"] as? String == "BTE dashboard")
        #expect(page["workspace"] as? String == ReadAPITests.workspace)
        // The sign-in page's only message is its own 401 (not signed in yet).
        let signIn = page["sign_in_console"] as? [[String: Any]] ?? []
        #expect(
            signIn.allSatisfy { ($0["message"] as? String ?? "").hasSuffix("status of 401 (Unauthorized)") },
            "sign-in console: \(signIn)")
        let console = page["console"] as? [[String: Any]] ?? []
        #expect(console.isEmpty, "console: \(console)")
        let signals = page["signals"] as? [String: [String: Any]] ?? [:]
        #expect(Set(signals.keys) == Set(expected.keys))
        for (type, value) in expected {
            let shown = signals[type] ?? [:]
            #expect(shown["value"] as? String == value, "\(type): \(shown)")
            #expect(shown["chart_displayed"] as? Bool == true)
            #expect((shown["chart_width"] as? Double ?? 0) == 120 && (shown["chart_height"] as? Double ?? 0) == 24)
        }
        // momentum has 3 stored values in 30 days, drop_off_point 1: one point each.
        #expect(signals["momentum"]?["points"] as? Int == 3)
        #expect(signals["drop_off_point"]?["points"] as? Int == 1)
        let insightID = OutputRecords.insightID(
            workspace: ReadAPITests.workspace, type: "deal_stalled", asOf: ReadAPITests.midnight(daysAgo: 1))
        #expect(page["insights"] as? [String] == [insightID])
        #expect(page["groups"] as? [String] == ["bte-ingest", "bte-projector", "bte-sink"])
    }
}

/// In-context delivery in a real browser, through every part: a product page's `EventSource`
/// (its server proxies BTE with its keys, as docs/insights.md shows) receives the delivery that
/// the page's own `page.viewed` triggered (collect API → Kafka → ingest → projector → sink →
/// stream), and the `impression` it posts back is stored with the delivery's id.
@Suite(.serialized) struct InsightBrowserTests {
    @Test func aPagesEventSourceReceivesItsDeliveryAndItsImpressionIsStored() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        _ = try KafkaAdmin(configuration: KafkaClientConfiguration(brokers: topics.brokers)).createTopics(
            OutputTopic.allCases.map {
                KafkaNewTopic(name: $0.name(prefix: topics.prefix), partitions: 3, replicationFactor: 1)
            })
        let workspace = InsightDeliveryPipelineTests.workspace
        let actor = InsightDeliveryPipelineTests.actor
        let deal = InsightDeliveryPipelineTests.deal
        // The deal, created on 1 March, untouched since: on 20 March it has stalled 19 days.
        try topics.produce(
            [
                InsightDeliveryPipelineTests.event(
                    1, workspace, "deal.created", entity: deal, at: "2026-03-01T00:00:00Z", "{}")
            ].map { KafkaOutgoingMessage(topic: topics.prefix + $0.topic, key: $0.key, value: $0.value) })
        let read = try APITests.createKey(db, scope: "read", rate: 10_000, workspace: workspace)
        let write = try APITests.createKey(db, scope: "write", rate: 10_000, workspace: workspace)
        let admin = try APITests.createKey(db, scope: "admin", rate: 10_000, workspace: workspace)

        let ingestGroup = TestEnvironment.uniqueName("ingest-")
        let pipeline = try BTEProcess([
            "run", "ingest", "project", "--brokers", topics.brokers, "--database-url", db.ingestURL,
            "--reader-database-url", db.readerURL, "--topic-prefix", topics.prefix, "--session-timeout-ms", "6000",
            "--ingest-group", ingestGroup, "--projector-group", TestEnvironment.uniqueName("projector-"),
        ])
        defer { pipeline.signal(SIGKILL) }
        let sink = try BTEProcess([
            "sink", "--brokers", topics.brokers, "--database-url", db.ingestURL, "--topic-prefix", topics.prefix,
            "--group", TestEnvironment.uniqueName("sink-"), "--session-timeout-ms", "6000",
        ])
        defer { sink.signal(SIGKILL) }
        let port = freePort()
        let server = try APITests.serve(db, topics, port: port)
        defer { server.signal(SIGKILL) }
        // The page reports its view only once its stream is open: a stream starts from now.
        let pageViewID = fixtureUUID(2, prefix: "e1e1e1e1")
        let pageView = """
            {"record_type":"business_event","event_id":"\(pageViewID)","event_type":"page.viewed",
             "entity_type":"page","entity_id":"\(deal)","workspace_id":"\(workspace)",
             "sub_vertical_id":"\(fixtureUUID(1, prefix: "5b5b5b5b"))","actor_user_id":"\(actor)",
             "timestamp":"2026-03-20T00:00:00Z","metadata":{"subject_type":"deal","subject_id":"\(deal)"}}
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", TestEnvironment.packageRoot.appendingPathComponent("Tests/Browser/insight_stream_check.py").path,
            "--api", "http://127.0.0.1:\(port)", "--read-key", read, "--write-key", write, "--admin-key", admin,
            "--user", actor, "--page-view", pageView,
        ]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(stderr.suffix(4_000))")
        let page = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
        let context = "page: \(text)\npipeline: \(pipeline.log.suffix(2_000))\nsink: \(sink.log.suffix(2_000))"

        #expect((page["collect"] as? [String: Any])?["accepted"] as? Int == 1, "\(context)")
        // One delivery: the deal's stalled insight (thresholds version 2), an ambient card for
        // the page's viewer, decided at the page view; its SSE id is the delivery's id.
        let deliveryID = UUIDv5.make(name: "delivery|\(workspace)|\(actor)|page_view|\(pageViewID)")
        let insightID = UUIDv5.make(
            name: "insight|workspace|\(workspace)|deal_stalled|2026-03-20T00:00:00.000000Z|2")
        let deliveries = page["deliveries"] as? [[String: Any]] ?? []
        #expect(deliveries.count == 1, "\(context)")
        let delivery = deliveries.first?["delivery"] as? [String: Any] ?? [:]
        #expect(deliveries.first?["event_id"] as? String == deliveryID)
        #expect(delivery["id"] as? String == deliveryID)
        #expect(delivery["insight_id"] as? String == insightID)
        #expect(delivery["user_id"] as? String == actor)
        #expect(delivery["mode"] as? String == "ambient")
        #expect(page["card"] as? String == "1 deal in your pipeline has stalled for 2+ weeks.")
        let feedback = page["feedback"] as? [String: Any] ?? [:]
        #expect(feedback["status"] as? Int == 200, "\(context)")
        #expect((feedback["body"] as? [String: Any])?["verdict"] as? String == "impression")
        #expect((page["console"] as? [Any] ?? []).isEmpty, "\(context)")
        #expect((page["errors"] as? [Any] ?? []).isEmpty, "\(context)")

        // The impression reaches the business log as the viewer's, tied to the delivery.
        let stored = eventually(timeout: 60) {
            (try? db.count(
                """
                SELECT count(*) FROM core.business_events
                WHERE event_type = 'insight.feedback' AND entity_id = '\(insightID)' AND actor_user_id = '\(actor)'
                  AND metadata->>'verdict' = 'impression' AND metadata->>'delivery_id' = '\(deliveryID)'
                """)) == 1
        }
        #expect(stored, "\(context)")
        #expect(try db.count("SELECT count(*) FROM core.business_events WHERE event_type = 'insight.feedback'") == 1)
    }
}

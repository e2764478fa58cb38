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

        // momentum's counts: user actions in (d1 − 7 d, d1] and (d1 − 14 d, d1 − 7 d]; 5 ÷ 2 = 2.5 is
        // the latest value, so the page shows them. Those at d1 − 14 d and after d1 count in neither.
        let d1 = try #require(Timestamp(rfc3339: ReadAPITests.midnight(daysAgo: 1)))
        let hour: Int64 = 3_600_000_000
        let offsets: [Int64] = [0, -1, -2, -30, -160, -170, -200, -336, 1]
        let actions = offsets.enumerated().map { index, offset in
            """
            {"record_type":"user_action","action_id":"\(fixtureUUID(900 + index))","action_type":"note.added",
             "workspace_id":"\(ReadAPITests.workspace)","actor_user_id":"aaaaaaaa-0000-4000-8000-00000000000a",
             "timestamp":"\(Timestamp(microseconds: d1.microseconds + offset * hour).rfc3339)"}
            """
        }
        let posted = APITests.post(
            f.port, "/v1/events", key: f.write, "{\"events\":[\(actions.joined(separator: ","))]}")
        #expect(posted.body == #"{"accepted":9,"rejected":[]}"#, "\(posted)")
        _ = try ingestUntilIdle(f.db, f.topics, group: "bte-ingest")
        // An older deal_stalled: the page shows each type's newest only.
        let older = OutputRecords.insight(
            workspace: ReadAPITests.workspace, type: "deal_stalled", asOf: ReadAPITests.midnight(daysAgo: 2))
        try f.topics.produce([OutputRecords.message(.insights, f.topics, key: "older", older)])
        #expect(try sinkUntilIdle(f.db, f.topics).consumed == 1)

        // A projector's metrics, served as a static file: 200 published, p99 in (0.25, 0.5]:
        // 0.25 + 0.25 × (198 − 190) ÷ 10 = 0.45 s.
        let metrics = FileManager.default.temporaryDirectory.appendingPathComponent("bte-metrics-\(getpid())")
        try FileManager.default.createDirectory(at: metrics, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: metrics) }
        let exposition = """
            # TYPE bte_projector_freshness_seconds histogram
            bte_projector_freshness_seconds_bucket{le="0.1"} 100
            bte_projector_freshness_seconds_bucket{le="0.25"} 190
            bte_projector_freshness_seconds_bucket{le="0.5"} 200
            bte_projector_freshness_seconds_bucket{le="+Inf"} 200
            bte_projector_freshness_seconds_count 200

            """
        try Data(exposition.utf8).write(to: metrics.appendingPathComponent("metrics"))
        let metricsPort = freePort()
        let metricsServer = Process()
        metricsServer.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        metricsServer.arguments = [
            "python3", "-m", "http.server", String(metricsPort), "--bind", "127.0.0.1", "--directory", metrics.path,
        ]
        metricsServer.standardOutput = FileHandle.nullDevice
        metricsServer.standardError = FileHandle.nullDevice
        try metricsServer.run()
        defer { metricsServer.terminate() }
        #expect(eventually(timeout: 10) { httpGet(port: metricsPort, path: "/metrics")?.status == 200 })
        let port = freePort()
        let server = try APITests.serve(
            f.db, f.topics, port: port, extra: ["--projector-metrics-url", "http://127.0.0.1:\(metricsPort)/metrics"])
        defer { server.signal(SIGKILL) }

        // An operator key: the page has the pipeline's figures too.
        let operatorKey = try APITests.createKey(f.db, scope: "operator", rate: 100)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", TestEnvironment.packageRoot.appendingPathComponent("Tests/Browser/dashboard_check.py").path,
            "--url", "http://127.0.0.1:\(port)", "--key", operatorKey,
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
        #expect(signals["momentum"]?["text"] as? String == "2.50× (5 actions in the last 7 days, 2 the 7 days before)")
        #expect(signals["drop_off_point"]?["text"] as? String == "3 abandoned at pricing")
        #expect(
            page["freshness"] as? String == "p99 0.45 s (200 events since the projectors started; 1 of 1 projector)")
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
                SELECT count(*) FROM core.business_events_live
                WHERE event_type = 'insight.feedback' AND entity_id = '\(insightID)' AND actor_user_id = '\(actor)'
                  AND metadata->>'verdict' = 'impression' AND metadata->>'delivery_id' = '\(deliveryID)'
                """)) == 1
        }
        #expect(stored, "\(context)")
        #expect(try db.count("SELECT count(*) FROM core.business_events WHERE event_type = 'insight.feedback'") == 1)
    }
}

import BTEDomain
import BTETestSupport
import Foundation
import Kafka
import Testing

/// The read endpoints, feedback, `bte insights stats` and the dashboard against the real
/// servers: outputs go through the topics and `bte sink`, feedback through Kafka and ingest.
@Suite(.serialized) struct ReadAPITests {
    static let workspace = APITests.workspace
    static let other = APITests.other
    static let day: TimeInterval = 86_400

    static func get(_ port: Int, _ path: String, key: String?, headers: [String: String] = [:]) -> (
        status: Int, headers: [String: String], body: String
    ) {
        var all = headers
        if let key { all["Authorization"] = "Bearer \(key)" }
        return httpRequest(port: port, method: "GET", path: path, headers: all, body: [], timeout: 30) ?? (0, [:], "")
    }

    /// RFC 3339 of midnight UTC `days` days before today.
    static func midnight(daysAgo days: Int) -> String {
        let now = Date().timeIntervalSince1970
        let today = now - now.truncatingRemainder(dividingBy: day)
        return Timestamp(microseconds: Int64((today - Double(days) * day) * 1_000_000)).rfc3339
    }

    struct Fixture {
        let db: TestDatabase
        let topics: TestTopics
        let port: Int
        let server: BTEProcess
        let read: String
        let admin: String
        let write: String
        let otherRead: String
        let records: [String: String]
    }

    /// Events for the workspace (a user named by an interaction event, a sub-vertical), output
    /// records for it and for another workspace, all through the sink.
    static func fixture() throws -> Fixture {
        let db = try TestDatabase()
        let topics = try TestTopics()
        try createOutputTopics(topics)
        let read = try APITests.createKey(db, scope: "read", rate: 10_000)
        let admin = try APITests.createKey(db, scope: "admin", rate: 10_000)
        let write = try APITests.createKey(db, scope: "write", rate: 10_000)
        let otherRead = try APITests.createKey(db, scope: "read", rate: 10_000, workspace: other)
        let port = freePort()
        let server = try APITests.serve(db, topics, port: port)

        let interaction = """
            {"record_type":"interaction_event","event_id":"\(fixtureUUID(3))","timestamp":"2026-03-01T10:00:00Z",
             "event_type":"tap","user_id":"user-1","session_id":"s-1"}
            """
        let collected = APITests.post(
            port, "/v1/events", key: write,
            "{\"events\":[\(APITests.business(1, workspace: workspace)),\(interaction)]}")
        #expect(collected.body == #"{"accepted":2,"rejected":[]}"#, "\(collected)")
        _ = try ingestUntilIdle(db, topics, group: "bte-ingest")

        let w = workspace
        let d2 = midnight(daysAgo: 2)
        let d1 = midnight(daysAgo: 1)
        var records: [String: String] = [:]
        records["m1"] = OutputRecords.signal(workspace: w, type: "momentum", value: "1.5", asOf: d2)
        records["m2"] = OutputRecords.signal(workspace: w, type: "momentum", value: "2", asOf: d1)
        // The same as_of under newer thresholds: this one is the latest.
        records["m3"] = OutputRecords.signal(workspace: w, type: "momentum", value: "2.5", asOf: d1, version: 2)
        records["drop"] = OutputRecords.signal(
            workspace: w, type: "drop_off_point", value: "3", asOf: d1, label: "pricing")
        records["otherSignal"] = OutputRecords.signal(workspace: other, type: "momentum", value: "9", asOf: d1)
        records["v1"] = OutputRecords.vector(user: "user-1", workspace: w, asOf: d2, score: "0.25", sessions: 1)
        records["v2"] = OutputRecords.vector(user: "user-1", workspace: w, asOf: d1, score: "0.5", sessions: 2)
        records["stranger"] = OutputRecords.vector(
            user: "user-2", workspace: other, asOf: d1, score: "0.75", sessions: 3)
        // The same user id in the other workspace: another person.
        records["namesake"] = OutputRecords.vector(
            user: "user-1", workspace: other, asOf: d1, score: "0.9", sessions: 4)
        records["insight"] = OutputRecords.insight(workspace: w, type: "deal_stalled", asOf: d1)
        records["otherInsight"] = OutputRecords.insight(workspace: other, type: "deal_stalled", asOf: d1)
        try topics.produce(
            [
                ("m1", OutputTopic.signals), ("m2", .signals), ("m3", .signals), ("drop", .signals),
                ("otherSignal", .signals), ("v1", .behavioralVectors), ("v2", .behavioralVectors),
                ("stranger", .behavioralVectors), ("namesake", .behavioralVectors), ("insight", .insights),
                ("otherInsight", .insights),
            ].map { name, topic in OutputRecords.message(topic, topics, key: name, records[name] ?? "") })
        let summary = try sinkUntilIdle(db, topics)
        #expect(summary.consumed == 11 && summary.rejected.isEmpty, "\(summary)")
        return Fixture(
            db: db, topics: topics, port: port, server: server, read: read, admin: admin, write: write,
            otherRead: otherRead, records: records)
    }

    @Test func readsAreTheStoredRecordsOfTheKeysWorkspaceOnly() throws {
        let f = try Self.fixture()
        defer {
            f.server.signal(SIGKILL)
            f.db.drop()
        }
        let w = Self.workspace
        let r = f.records

        // Latest per signal, by type; the other workspace's value never shows.
        let signals = Self.get(f.port, "/v1/workspaces/\(w)/signals", key: f.read)
        #expect(signals.status == 200, "\(signals)")
        #expect(signals.body == "{\"workspace_id\":\"\(w)\",\"signals\":[\(r["drop"] ?? ""),\(r["m3"] ?? "")]}")
        #expect(Self.get(f.port, "/v1/workspaces/\(w)/signals", key: f.admin).status == 200)
        for (key, status) in [(f.otherRead, 404), (f.write, 403), ("bte_unknown", 401)] {
            let reply = Self.get(f.port, "/v1/workspaces/\(w)/signals", key: key)
            #expect(reply.status == status, "\(reply)")
            #expect(reply.body.hasPrefix(#"{"error":{"code":"#))
        }
        // The read key asking for another workspace (existing or not): the same 404.
        #expect(Self.get(f.port, "/v1/workspaces/\(Self.other)/signals", key: f.read).status == 404)
        #expect(Self.get(f.port, "/v1/workspaces/nope/signals", key: f.read).status == 404)

        // History: oldest first; from/to bound it; bad input is a 400, unknown signals 404.
        let history = Self.get(f.port, "/v1/workspaces/\(w)/signals/momentum/history", key: f.read)
        #expect(history.status == 200)
        #expect(
            history.body.hasSuffix(
                "\"truncated\":false,\"values\":[\(r["m1"] ?? ""),\(r["m2"] ?? ""),\(r["m3"] ?? "")]}"))
        let d1 = Self.midnight(daysAgo: 1)
        let bounded = Self.get(
            f.port, "/v1/workspaces/\(w)/signals/momentum/history?from=\(d1)&to=\(d1)", key: f.read)
        #expect(bounded.body.hasSuffix("\"values\":[\(r["m2"] ?? ""),\(r["m3"] ?? "")]}"), "\(bounded)")
        #expect(
            Self.get(f.port, "/v1/workspaces/\(w)/signals/momentum/history?from=yesterday", key: f.read).status == 400)
        #expect(
            Self.get(
                f.port,
                "/v1/workspaces/\(w)/signals/momentum/history?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
                key: f.read
            ).status == 400)
        #expect(Self.get(f.port, "/v1/workspaces/\(w)/signals/nope/history", key: f.read).status == 404)

        // Insights: the workspace's only; `since` as a duration or a time.
        let insights = Self.get(f.port, "/v1/workspaces/\(w)/insights", key: f.read)
        #expect(insights.body.hasSuffix("\"truncated\":false,\"insights\":[\(r["insight"] ?? "")]}"), "\(insights)")
        #expect(
            Self.get(f.port, "/v1/workspaces/\(w)/insights?since=1h", key: f.read).body.hasSuffix("\"insights\":[]}"))
        #expect(Self.get(f.port, "/v1/workspaces/\(w)/insights?since=soon", key: f.read).status == 400)

        // Vectors: the latest of the key's workspace's user, byte for byte; another workspace's
        // user is a 404 even though a vector is stored, and the same user id in another
        // workspace is another person.
        let vector = Self.get(f.port, "/api/v1/behavioral-vectors/user-1", key: f.read)
        #expect(vector.status == 200)
        #expect(vector.body == r["v2"])
        #expect(Self.get(f.port, "/api/v1/behavioral-vectors/user-2", key: f.read).status == 404)
        #expect(Self.get(f.port, "/api/v1/behavioral-vectors/user-1", key: f.otherRead).body == r["namesake"])
        #expect(Self.get(f.port, "/api/v1/behavioral-vectors/user-2", key: f.otherRead).body == r["stranger"])

        // Engagement: the latest vector's block and one entry per day (2 days ago, yesterday).
        let engagement = Self.get(f.port, "/api/v1/analytics/engagement/user-1", key: f.read)
        #expect(engagement.status == 200)
        let d2 = Self.midnight(daysAgo: 2)
        #expect(
            engagement.body
                == "{\"user_id\":\"user-1\",\"total_sessions\":2,\"avg_session_duration_minutes\":1.5,"
                + "\"avg_interactions_per_session\":3,\"engagement_score\":0.5,\"last_active\":\"\(d1)\","
                + "\"as_of\":\"\(d1)\",\"history\":["
                + "{\"date\":\"\(d2.prefix(10))\",\"total_sessions\":1,\"avg_session_duration_minutes\":1.5,"
                + "\"avg_interactions_per_session\":3,\"engagement_score\":0.25,\"last_active\":\"\(d2)\"},"
                + "{\"date\":\"\(d1.prefix(10))\",\"total_sessions\":2,\"avg_session_duration_minutes\":1.5,"
                + "\"avg_interactions_per_session\":3,\"engagement_score\":0.5,\"last_active\":\"\(d1)\"}]}",
            "\(engagement.body)")
        #expect(Self.get(f.port, "/api/v1/analytics/engagement/user-2", key: f.read).status == 404)
    }

    @Test func feedbackGoesThroughKafkaAndIngestAndFeedsTheRates() throws {
        let f = try Self.fixture()
        defer {
            f.server.signal(SIGKILL)
            f.db.drop()
        }
        let insight = OutputRecords.insightID(
            workspace: Self.workspace, type: "deal_stalled", asOf: Self.midnight(daysAgo: 1))
        let otherInsight = OutputRecords.insightID(
            workspace: Self.other, type: "deal_stalled", asOf: Self.midnight(daysAgo: 1))
        let u1 = "aaaaaaaa-0000-4000-8000-000000000001"
        let u2 = "aaaaaaaa-0000-4000-8000-000000000002"
        func feedback(_ id: String, key: String, _ body: String) -> (
            status: Int, headers: [String: String], body: String
        ) {
            APITests.post(f.port, "/v1/insights/\(id)/feedback", key: key, body)
        }
        let useful = feedback(insight, key: f.admin, "{\"verdict\":\"useful\",\"user_id\":\"\(u1)\"}")
        #expect(useful.status == 200, "\(useful)")
        #expect(useful.body.contains("\"insight_id\":\"\(insight)\",\"verdict\":\"useful\",\"success\":true"))
        // The same opinion again: an event of its own; the latest counts.
        #expect(feedback(insight, key: f.admin, "{\"verdict\":\"useful\",\"user_id\":\"\(u1)\"}").status == 200)
        #expect(feedback(insight, key: f.admin, "{\"verdict\":\"acted\",\"user_id\":\"\(u1)\"}").status == 200)
        #expect(feedback(insight, key: f.admin, "{\"verdict\":\"not_useful\",\"user_id\":\"\(u2)\"}").status == 200)
        // Refused: a read key; another workspace's insight; a verdict or user outside the rules.
        #expect(feedback(insight, key: f.read, "{\"verdict\":\"useful\",\"user_id\":\"\(u1)\"}").status == 403)
        #expect(feedback(otherInsight, key: f.admin, "{\"verdict\":\"useful\",\"user_id\":\"\(u1)\"}").status == 404)
        let badVerdict = feedback(insight, key: f.admin, "{\"verdict\":\"great\",\"user_id\":\"\(u1)\"}")
        #expect(badVerdict.status == 400 && badVerdict.body.contains(#""code":"unknown_enum_value""#))
        let badUser = feedback(insight, key: f.admin, "{\"verdict\":\"useful\",\"user_id\":\"bob\"}")
        #expect(badUser.status == 400 && badUser.body.contains(#""code":"invalid_uuid""#), "\(badUser)")

        _ = try ingestUntilIdle(f.db, f.topics, group: "bte-ingest")
        // Four events (the repeat too), each an insight.feedback with its verdict.
        let stored = try f.db.admin().execute(
            """
            SELECT metadata->>'verdict', actor_user_id::text FROM core.business_events
            WHERE event_type = 'insight.feedback' AND entity_type = 'insight' AND entity_id = '\(insight)'
            ORDER BY 1
            """
        ).rows
        #expect(stored.map { $0[0] ?? "" } == ["acted", "not_useful", "useful", "useful"])

        // deal_stalled: 1 delivered, acted by u1 → action rate 1/1; opinions useful (u1),
        // not_useful (u2) → positive rate 1/2. Other types: nothing delivered → null rates.
        let stats = try BTEProcess([
            "insights", "stats", "--since", "30d", "--format", "json", "--reader-database-url", f.db.readerURL,
            "--workspace", Self.workspace,
        ])
        #expect(stats.wait(timeout: 30) == 0, "\(stats.log)")
        #expect(
            stats.log.contains(
                #"{"insight_type":"deal_stalled","delivered":1,"acted":1,"useful":1,"not_useful":1,"#
                    + #""positive_feedback_rate":0.5000,"action_rate":1.0000}"#
            ), "\(stats.log)")
        #expect(
            stats.log.contains(
                #"{"insight_type":"engagement_drop","delivered":0,"acted":0,"useful":0,"not_useful":0,"#
                    + #""positive_feedback_rate":null,"action_rate":null}"#
            ))

        // The dashboard shows the same rates.
        let page = Self.get(f.port, "/dashboard", key: f.admin)
        #expect(page.status == 200)
        #expect(page.body.contains(#"<td class="num positive-rate">50.0%</td><td class="num action-rate">100.0%</td>"#))
    }

    /// A change of mind is stored and the latest opinion counts; a retry with an Idempotency-Key
    /// stores nothing new and is no reject, whichever instance it reaches; feedback needs the
    /// admin scope on every path and counts for an insight of its own workspace only.
    @Test func retriesAndChangesOfMindAreNeitherLostNorRejected() throws {
        let f = try Self.fixture()
        defer {
            f.server.signal(SIGKILL)
            f.db.drop()
        }
        let insight = OutputRecords.insightID(
            workspace: Self.workspace, type: "deal_stalled", asOf: Self.midnight(daysAgo: 1))
        let u1 = "aaaaaaaa-0000-4000-8000-000000000001"
        let u2 = "aaaaaaaa-0000-4000-8000-000000000002"
        func feedback(_ verdict: String, _ user: String, headers: [String: String] = [:]) -> String {
            let reply = APITests.post(
                f.port, "/v1/insights/\(insight)/feedback", key: f.admin,
                "{\"verdict\":\"\(verdict)\",\"user_id\":\"\(user)\"}", headers: headers)
            #expect(reply.status == 200, "\(reply)")
            return reply.body
        }
        for verdict in ["useful", "not_useful", "useful"] { _ = feedback(verdict, u1) }
        let first = feedback("not_useful", u2, headers: ["Idempotency-Key": "fb-1"])
        #expect(feedback("not_useful", u2, headers: ["Idempotency-Key": "fb-1"]) == first)
        let reused = APITests.post(
            f.port, "/v1/insights/\(insight)/feedback", key: f.admin, "{\"verdict\":\"useful\",\"user_id\":\"\(u2)\"}",
            headers: ["Idempotency-Key": "fb-1"])
        #expect(reused.status == 422 && reused.body.contains("idempotency_key_reused"), "\(reused)")

        // The interaction log retried: to the same instance (its first reply, nothing produced)
        // and, after the server's clock moved on, to another instance (produced again).
        let tap = #"{"user_id":"user-9","session_id":"s-9","event_type":"tap"}"#
        let logged = APITests.post(
            f.port, "/api/v1/interactions/log", key: f.write, tap, headers: ["Idempotency-Key": "tap-1"])
        #expect(logged.status == 200, "\(logged)")
        usleep(20_000)
        #expect(
            APITests.post(f.port, "/api/v1/interactions/log", key: f.write, tap, headers: ["Idempotency-Key": "tap-1"])
                .body == logged.body)
        let port2 = freePort()
        let second = try APITests.serve(f.db, f.topics, port: port2)
        defer { second.signal(SIGKILL) }
        let elsewhere = APITests.post(
            port2, "/api/v1/interactions/log", key: f.write, tap, headers: ["Idempotency-Key": "tap-1"])
        #expect(elsewhere.status == 200, "\(elsewhere)")
        #expect(Self.object(elsewhere.body)["event_id"] as? String == Self.object(logged.body)["event_id"] as? String)

        // Feedback sent as events: a write key's is refused; another workspace's admin's, on this
        // workspace's insight id, is stored in its own workspace and counts nowhere.
        func event(_ n: Int, workspace: String) -> String {
            """
            {"record_type":"business_event","event_id":"\(fixtureUUID(n, prefix: "fbfbfbfb"))",
             "timestamp":"\(Self.midnight(daysAgo: 0))","event_type":"insight.feedback","entity_type":"insight",
             "entity_id":"\(insight)","workspace_id":"\(workspace)","sub_vertical_id":"\(u1)","actor_user_id":"\(u2)",
             "metadata":{"verdict":"not_useful","insight_type":"deal_stalled"}}
            """
        }
        let byWriter = APITests.post(
            f.port, "/v1/events", key: f.write, "{\"events\":[\(event(1, workspace: Self.workspace))]}")
        #expect(
            byWriter.body
                == #"{"accepted":0,"rejected":[{"index":0,"code":"insufficient_scope","#
                + #""message":"insight.feedback needs a key with scope admin"}]}"#, "\(byWriter)")
        let otherAdmin = try APITests.createKey(f.db, scope: "admin", rate: 10_000, workspace: Self.other)
        let foreign = APITests.post(
            f.port, "/v1/events", key: otherAdmin, "{\"events\":[\(event(2, workspace: Self.other))]}")
        #expect(foreign.body == #"{"accepted":1,"rejected":[]}"#, "\(foreign)")

        let ingested = try ingestUntilIdle(f.db, f.topics, group: "bte-ingest")
        #expect(ingested.rejected.isEmpty, "\(ingested.rejected)")
        #expect(try f.db.count("SELECT count(*) FROM bte.rejected_events") == 0)
        // u1's three opinions, u2's one (its retry a duplicate), the foreign one; one tap.
        #expect(
            try f.db.count(
                "SELECT count(*) FROM core.business_events WHERE event_type = 'insight.feedback' "
                    + "AND entity_id = '\(insight)'") == 5)
        #expect(try f.db.count("SELECT count(*) FROM core.interaction_events_live WHERE user_id = 'user-9'") == 1)
        #expect(
            try f.db.count(
                "SELECT count(*) FROM core.interaction_events_live WHERE user_id = 'user-9' "
                    + "AND timestamp = '\(Self.object(logged.body)["timestamp"] as? String ?? "")'"
            )
                == 1)

        // deal_stalled of this workspace: u1's latest is useful, u2's not_useful → 1/2. Across
        // workspaces (2 delivered), the foreign opinion still counts for no insight.
        for (scope, delivered) in [(["--workspace", Self.workspace], 1), ([], 2)] {
            let stats = try BTEProcess(
                ["insights", "stats", "--since", "30d", "--format", "json", "--reader-database-url", f.db.readerURL]
                    + scope)
            #expect(stats.wait(timeout: 30) == 0, "\(stats.log)")
            #expect(
                stats.log.contains(
                    #"{"insight_type":"deal_stalled","delivered":\#(delivered),"acted":0,"useful":1,"not_useful":1,"#
                        + #""positive_feedback_rate":0.5000,"#), "\(stats.log)")
        }
    }

    static func object(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
    }

    @Test func dashboardNeedsAnAdminKeyOrItsSessionAndFollowsRevocation() throws {
        let f = try Self.fixture()
        defer {
            f.server.signal(SIGKILL)
            f.db.drop()
        }
        let anonymous = Self.get(f.port, "/dashboard", key: nil)
        #expect(anonymous.status == 401)
        #expect(anonymous.body.contains("<form method=\"post\" action=\"/dashboard\">"))
        #expect(Self.get(f.port, "/dashboard", key: f.read).status == 403)
        #expect(Self.get(f.port, "/dashboard", key: "bte_unknown").status == 401)

        let page = Self.get(f.port, "/dashboard", key: f.admin)
        #expect(page.status == 200)
        #expect(page.headers["content-type"] == "text/html; charset=utf-8")
        // The latest momentum (2.5, thresholds v2; no user actions stored, so no counts) and its
        // 3-point sparkline; drop_off_point with its step.
        #expect(
            page.body.contains(
                #"<tr data-signal="momentum"><td>momentum</td><td class="num signal-value" data-value="2.5">2.50×</td>"#
            ))
        #expect(page.body.contains(#"data-count="3""#))
        #expect(page.body.contains(#"data-value="3">3 abandoned at pricing</td>"#))
        #expect(page.body.contains("3 deals in your pipeline have stalled for 2+ weeks"))

        // Sign in with the form: a session cookie; a wrong key gets the form again.
        let wrong = httpRequest(
            port: f.port, method: "POST", path: "/dashboard",
            headers: ["Content-Type": "application/x-www-form-urlencoded"], body: Array("key=\(f.read)".utf8),
            timeout: 30)
        #expect(wrong?.status == 401)
        let signIn = httpRequest(
            port: f.port, method: "POST", path: "/dashboard",
            headers: ["Content-Type": "application/x-www-form-urlencoded"], body: Array("key=\(f.admin)".utf8),
            timeout: 30)
        #expect(signIn?.status == 303)
        let cookie = (signIn?.headers["set-cookie"] ?? "").split(separator: ";").first.map(String.init) ?? ""
        #expect(cookie.hasPrefix("bte_session="))
        #expect(Self.get(f.port, "/dashboard", key: nil, headers: ["Cookie": cookie]).status == 200)
        #expect(Self.get(f.port, "/dashboard", key: nil, headers: ["Cookie": cookie + "x"]).status == 401)

        // Revoking the key ends its sessions within 5 s.
        let list = try BTEProcess(["keys", "list", "--reader-database-url", f.db.readerURL])
        _ = list.wait(timeout: 30)
        let adminID =
            list.log.split(separator: "\n").first { $0.contains(String(f.admin.prefix(12))) }?
            .split(separator: " ").first.map(String.init) ?? ""
        let revoke = try BTEProcess(["keys", "revoke", adminID, "--database-url", f.db.adminURL])
        #expect(revoke.wait(timeout: 30) == 0, "\(revoke.log)")
        #expect(
            eventually(timeout: 5) {
                Self.get(f.port, "/dashboard", key: nil, headers: ["Cookie": cookie]).status == 401
            })
    }
}

import BTETestSupport
import Foundation
import Kafka
import Testing

/// `bte serve` and `bte keys` against the real servers: collect endpoints, auth, limits.
@Suite(.serialized) struct APITests {
    static let workspace = "11111111-2222-4333-8444-555555555555"
    static let other = "99999999-2222-4333-8444-555555555555"

    /// `bte keys create`; returns the key's text.
    static func createKey(
        _ db: TestDatabase, scope: String, rate: Int = 100, burst: Int? = nil, workspace: String = workspace
    ) throws -> String {
        let process = try BTEProcess(
            [
                "keys", "create", "--workspace", workspace, "--scope", scope, "--rate", String(rate), "--database-url",
                db.adminURL, "--by", "test",
            ] + (burst.map { ["--burst", String($0)] } ?? []))
        #expect(process.wait(timeout: 30) == 0, "\(process.log)")
        return process.log.split(separator: "\n").first { $0.hasPrefix("bte_") }.map(String.init) ?? ""
    }

    static func serve(
        _ db: TestDatabase, _ topics: TestTopics, port: Int, extra: [String] = [], environment: [String: String] = [:]
    ) throws -> BTEProcess {
        let process = try BTEProcess(
            [
                "serve", "--port", String(port), "--brokers", topics.brokers, "--reader-database-url", db.readerURL,
                "--topic-prefix", topics.prefix,
            ] + extra, environment: environment)
        #expect(eventually(timeout: 30) { httpGet(port: port, path: "/healthz")?.status == 200 }, "\(process.log)")
        return process
    }

    static func post(_ port: Int, _ path: String, key: String?, _ body: String, headers: [String: String] = [:])
        -> (status: Int, headers: [String: String], body: String)
    {
        var all = headers
        all["Content-Type"] = "application/json"
        if let key { all["Authorization"] = "Bearer \(key)" }
        return httpRequest(port: port, method: "POST", path: path, headers: all, body: Array(body.utf8), timeout: 30)
            ?? (0, [:], "")
    }

    static func business(_ id: Int, workspace: String) -> String {
        """
        {"record_type":"business_event","event_id":"\(fixtureUUID(id))","event_type":"deal.created",
         "entity_type":"deal","entity_id":"\(fixtureUUID(id, prefix: "dddddddd"))","workspace_id":"\(workspace)",
         "sub_vertical_id":"33333333-3333-4333-8333-333333333333",
         "actor_user_id":"aaaaaaaa-0000-4000-8000-00000000000a",
         "timestamp":"2026-03-01T10:00:00Z"}
        """
    }

    @Test func collectValidatesEachRecordChecksTheWorkspaceAndStoresThroughIngest() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let key = try Self.createKey(db, scope: "write")
        #expect(key.hasPrefix("bte_") && key.count == 47, "\(key)")
        let port = freePort()
        let server = try Self.serve(db, topics, port: port)
        defer { server.signal(SIGKILL) }

        let interaction = """
            {"record_type":"interaction_event","event_id":"\(fixtureUUID(3))","timestamp":"2026-03-01T10:00:00Z",
             "event_type":"tap","user_id":"user-1","session_id":"s-1"}
            """
        let noType =
            #"{"record_type":"interaction_event","event_id":"\#(fixtureUUID(4))","#
            + #""timestamp":"2026-03-01T10:00:00Z","user_id":"u","session_id":"s"}"#
        let body =
            "{\"events\":[\(Self.business(1, workspace: Self.workspace)),\(Self.business(2, workspace: Self.other)),"
            + "\(interaction),\(noType)]}"
        let reply = Self.post(port, "/v1/events", key: key, body)
        #expect(reply.status == 200, "\(reply)")
        // Each reject with ingest's message, which names the field, not a value.
        #expect(
            reply.body
                == #"{"accepted":2,"rejected":[{"index":1,"code":"workspace_mismatch","#
                + #""message":"workspace_id is not the key's workspace"},"#
                + #"{"index":3,"code":"missing_field","message":"event_type is required"}]}"#, "\(reply.body)")
        // A value outside an enumeration is named (an event type is no personal value).
        let wiggle = Self.post(
            port, "/v1/events", key: key,
            "{\"events\":[\(interaction.replacingOccurrences(of: "\"tap\"", with: "\"wiggle\""))]}")
        #expect(
            wiggle.body.contains(#""code":"unknown_enum_value","message":"event_type \"wiggle\" is not one of: "#),
            "\(wiggle.body)")

        // Acknowledged by the broker, so ingest finds them: stored once each; the interaction
        // event carries the key's workspace as a kept extra field.
        _ = try ingestUntilIdle(db, topics, group: TestEnvironment.uniqueName("ingest-"))
        #expect(try db.count("SELECT count(*) FROM core.business_events") == 1)
        #expect(
            try db.admin().execute("SELECT extra->>'workspace_id' FROM core.interaction_events").rows.first?[0]
                == Self.workspace)

        // The spec is served as JSON.
        let spec = httpGet(port: port, path: "/openapi.json")
        #expect(spec?.status == 200)
        let document = try JSONSerialization.jsonObject(with: Data((spec?.body ?? "").utf8)) as? [String: Any]
        #expect((document?["paths"] as? [String: Any])?.keys.contains("/v1/events") == true)
    }

    @Test func keysScopesLimitsAndRevocation() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let write = try Self.createKey(db, scope: "write")
        let read = try Self.createKey(db, scope: "read")
        let slow = try Self.createKey(db, scope: "write", rate: 1, burst: 2)
        let port = freePort()
        let server = try Self.serve(db, topics, port: port)
        defer { server.signal(SIGKILL) }
        let one = "{\"events\":[\(Self.business(1, workspace: Self.workspace))]}"

        for key in [nil, "bte_unknown", "Basic x"] {
            let reply = Self.post(port, "/v1/events", key: key, one)
            #expect(reply.status == 401, "\(String(describing: key)): \(reply)")
            #expect(reply.body.hasPrefix(#"{"error":{"code":"unauthorized","#), "\(reply.body)")
        }
        #expect(Self.post(port, "/v1/events", key: read, one).status == 403)

        // Too large: over 1 MiB, over 500 records. Nothing accepted.
        let padding = String(repeating: " ", count: (1 << 20) + 1)
        let big = Self.post(port, "/v1/events", key: write, "{\"events\":[]}" + padding)
        #expect(big.status == 413, "\(big.status) \(big.body)")
        let many = "{\"events\":[" + Array(repeating: "{}", count: 501).joined(separator: ",") + "]}"
        let tooMany = Self.post(port, "/v1/events", key: write, many)
        #expect(tooMany.status == 413)
        #expect(tooMany.body.contains(#""code":"too_many_records""#))

        // Rate 1/s, burst 2: the third request at once is refused with Retry-After.
        let statuses = (0..<3).map { _ in Self.post(port, "/v1/events", key: slow, #"{"events":[]}"#) }
        #expect(statuses.map(\.status) == [200, 200, 429], "\(statuses)")
        #expect(statuses.last?.headers["retry-after"] == "1")

        // Revoked: refused within 5 s.
        #expect(Self.post(port, "/v1/events", key: write, #"{"events":[]}"#).status == 200)
        let list = try BTEProcess(["keys", "list", "--reader-database-url", db.readerURL])
        _ = list.wait(timeout: 30)
        let writeID =
            list.log.split(separator: "\n").first { $0.contains(String(write.prefix(12))) }?
            .split(separator: " ").first.map(String.init) ?? ""
        // Keys are an admin's: another role is told which URL may manage them, and nothing changes.
        for url in [db.ingestURL, db.readerURL] {
            for arguments in [["revoke", writeID], ["create", "--workspace", "default", "--scope", "read"]] {
                let refused = try BTEProcess(["keys"] + arguments + ["--database-url", url])
                #expect(refused.wait(timeout: 30) == 1)
                #expect(
                    refused.log.contains(
                        "may not manage API keys: give an admin's URL (a member of bte_admin) "
                            + "with --database-url or BTE_ADMIN_DATABASE_URL"), "\(refused.log)")
            }
        }
        #expect(Self.post(port, "/v1/events", key: write, #"{"events":[]}"#).status == 200)
        let revoke = try BTEProcess(
            ["keys", "revoke", writeID], environment: ["BTE_ADMIN_DATABASE_URL": db.adminURL, "BTE_DATABASE_URL": ""])
        #expect(revoke.wait(timeout: 30) == 0, "\(revoke.log)")
        let revokedAt = Date()
        #expect(eventually(timeout: 5) { Self.post(port, "/v1/events", key: write, #"{"events":[]}"#).status == 401 })
        #expect(Date().timeIntervalSince(revokedAt) < 5)
        // Only hashes are stored.
        #expect(
            try db.count("SELECT count(*) FROM bte.api_keys WHERE key_sha256 = sha256(convert_to('\(write)', 'UTF8'))")
                == 1)
        #expect(
            !(try db.admin().execute("SELECT row_to_json(k)::text FROM bte.api_keys k").rows.contains {
                $0[0]?.contains(write) == true
            }))
    }

    @Test func interactionLogAssignsIdsAndIdempotencyKeysStoreOnce() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let key = try Self.createKey(db, scope: "write")
        let port = freePort()
        let server = try Self.serve(db, topics, port: port)
        defer { server.signal(SIGKILL) }
        let body =
            #"{"user_id":"user-7","session_id":"s-7","event_type":"click","capsule_type":"task","duration_ms":120}"#
        let first = Self.post(port, "/api/v1/interactions/log", key: key, body, headers: ["Idempotency-Key": "req-1"])
        let second = Self.post(port, "/api/v1/interactions/log", key: key, body, headers: ["Idempotency-Key": "req-1"])
        #expect(first.status == 200, "\(first)")
        let a = try JSONSerialization.jsonObject(with: Data(first.body.utf8)) as? [String: Any] ?? [:]
        let b = try JSONSerialization.jsonObject(with: Data(second.body.utf8)) as? [String: Any] ?? [:]
        #expect(a["event_id"] as? String == b["event_id"] as? String)
        #expect(a["user_id"] as? String == "user-7")
        #expect(a["event_type"] as? String == "click")
        #expect(a["success"] as? Bool == true)
        #expect((a["timestamp"] as? String)?.hasSuffix("Z") == true)
        // Without the header, each request is a new event.
        let third = Self.post(port, "/api/v1/interactions/log", key: key, body)
        let c = try JSONSerialization.jsonObject(with: Data(third.body.utf8)) as? [String: Any] ?? [:]
        #expect(c["event_id"] as? String != a["event_id"] as? String)
        _ = try ingestUntilIdle(db, topics, group: TestEnvironment.uniqueName("ingest-"))
        #expect(try db.count("SELECT count(*) FROM core.interaction_events") == 2)

        // An invalid record: 400 with ingest's code.
        let invalid = Self.post(
            port, "/api/v1/interactions/log", key: key, #"{"user_id":"u","session_id":"s","event_type":"nope"}"#)
        #expect(invalid.status == 400)
        #expect(invalid.body.hasPrefix(#"{"error":{"code":"unknown_enum_value","#), "\(invalid.body)")
    }

    @Test func aBrokerThatDoesNotAcknowledgeGets503AndNothingReportedAccepted() throws {
        guard let pidFile = ProcessInfo.processInfo.environment["BTE_TEST_BROKER_PID_FILE"],
            let pid = Int32(
                (try? String(contentsOfFile: pidFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
                    ?? "")
        else {
            Issue.record("BTE_TEST_BROKER_PID_FILE not set: run with scripts/test.sh")
            return
        }
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let key = try Self.createKey(db, scope: "write")
        let port = freePort()
        let server = try Self.serve(db, topics, port: port)
        defer { server.signal(SIGKILL) }
        #expect(
            Self.post(port, "/v1/events", key: key, "{\"events\":[\(Self.business(1, workspace: Self.workspace))]}")
                .status == 200)
        #expect(eventually(timeout: 10) { httpGet(port: port, path: "/readyz")?.status == 200 })
        kill(pid, SIGSTOP)
        // Not ready while the broker doesn't answer (checked every 2 s, 2 s timeout).
        let notReady = eventually(timeout: 15) { httpGet(port: port, path: "/readyz")?.status == 503 }
        let paused = Self.post(
            port, "/v1/events", key: key, "{\"events\":[\(Self.business(2, workspace: Self.workspace))]}")
        kill(pid, SIGCONT)
        #expect(notReady)
        #expect(paused.status == 503, "\(paused)")
        #expect(eventually(timeout: 30) { httpGet(port: port, path: "/readyz")?.status == 200 })
        #expect(paused.body.hasPrefix(#"{"error":{"code":"broker_unavailable","#))
        #expect(!paused.body.contains(#""accepted":"#))
    }

    @Test func vectorsAreComputedOnRequestForTheKeysOwnUsersOnly() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let write = try Self.createKey(db, scope: "write")
        let read = try Self.createKey(db, scope: "read")
        let stranger = try Self.createKey(db, scope: "read", workspace: Self.other)
        let port = freePort()
        let server = try Self.serve(db, topics, port: port)
        defer { server.signal(SIGKILL) }
        // user-9: three taps an hour ago, in sessions s-a, s-a and s-b.
        let formatter = ISO8601DateFormatter()
        let stamp = formatter.string(from: Date().addingTimeInterval(-3_600))
        let events = ["s-a", "s-a", "s-b"].enumerated().map { n, session in
            """
            {"record_type":"interaction_event","event_id":"\(fixtureUUID(n + 1, prefix: "55555555"))",
             "timestamp":"\(stamp)","event_type":"tap","user_id":"user-9","session_id":"\(session)"}
            """
        }
        #expect(
            Self.post(port, "/v1/events", key: write, "{\"events\":[\(events.joined(separator: ","))]}").status == 200)
        _ = try ingestUntilIdle(db, topics, group: TestEnvironment.uniqueName("ingest-"))

        let reply = Self.post(port, "/api/v1/behavioral-vectors/compute", key: read, #"{"user_id":"user-9"}"#)
        #expect(reply.status == 200, "\(reply)")
        let vector = try JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Any] ?? [:]
        #expect(vector["user_id"] as? String == "user-9")
        #expect(vector["total_interactions"] as? Int == 3)
        #expect(vector["total_sessions"] as? Int == 2)
        // Another workspace's key, an unknown user: the same 404, nothing to tell them apart.
        let foreign = Self.post(port, "/api/v1/behavioral-vectors/compute", key: stranger, #"{"user_id":"user-9"}"#)
        let unknown = Self.post(port, "/api/v1/behavioral-vectors/compute", key: read, #"{"user_id":"user-0"}"#)
        #expect(foreign.status == 404)
        #expect(unknown.status == 404)
        #expect(foreign.body == unknown.body)
        #expect(
            Self.post(port, "/api/v1/behavioral-vectors/compute", key: write, #"{"user_id":"user-9"}"#).status == 403)
        #expect(Self.post(port, "/api/v1/behavioral-vectors/compute", key: read, #"{"user":"x"}"#).status == 400)
    }
}

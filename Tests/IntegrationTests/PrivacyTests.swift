import BTECompute
import BTEDomain
import BTEIngest
import BTEStore
import BTETestSupport
import Crypto
import Foundation
import Kafka
import MetricsTestKit
import Postgres
import Testing

/// Privacy requests against the real servers: suppression drops a person's new events at
/// ingest (that person only: the same user id in another workspace is someone else), the
/// request is on record with its status per user, and an export holds the person's records
/// and no one else's.
@Suite(.serialized) struct PrivacyTests {
    static let workspace = fixtureUUID(1, prefix: "9a9a9a9a")
    static let other = fixtureUUID(2, prefix: "9b9b9b9b")
    static let personA = fixtureUUID(1, prefix: "a0a0a0a0")
    static let personB = fixtureUUID(2, prefix: "b0b0b0b0")

    static func business(_ n: Int, _ workspace: String, _ actor: String, canary: String) -> KafkaOutgoingMessage {
        let value = """
            {"record_type":"business_event","event_id":"\(fixtureUUID(n, prefix: "e9e9e9e9"))",
             "event_type":"deal.created","entity_type":"deal","entity_id":"\(fixtureUUID(n, prefix: "d9d9d9d9"))",
             "workspace_id":"\(workspace)","sub_vertical_id":"\(fixtureUUID(1, prefix: "5c5c5c5c"))",
             "actor_user_id":"\(actor)","timestamp":"2026-03-0\(n % 9 + 1)T00:00:00Z","metadata":{"note":"\(canary)"}}
            """
        return KafkaOutgoingMessage(
            topic: "bte.business-events.v1", key: Array(workspace.utf8), value: Array(value.utf8))
    }

    static func action(_ n: Int, _ workspace: String, _ actor: String, canary: String) -> KafkaOutgoingMessage {
        let value = """
            {"record_type":"user_action","action_id":"\(fixtureUUID(n, prefix: "acacacac"))","action_type":"note.added",
             "workspace_id":"\(workspace)","actor_user_id":"\(actor)","timestamp":"2026-03-02T00:00:00Z",
             "metadata":{"note":"\(canary)"}}
            """
        return KafkaOutgoingMessage(
            topic: "bte.business-events.v1", key: Array(workspace.utf8), value: Array(value.utf8))
    }

    /// An interaction event of `user` (its id as sent, upper case for a UUID to show matching
    /// ignores case) in `workspace` (none: the default workspace).
    static func interaction(_ n: Int, _ workspace: String?, _ user: String, canary: String) -> KafkaOutgoingMessage {
        let scope = workspace.map { #","workspace_id":"\#($0)""# } ?? ""
        let value = """
            {"event_id":"\(fixtureUUID(n, prefix: "1e1e1e1e"))","timestamp":"2026-03-02T00:00:0\(n % 10)Z",
             "event_type":"tap","user_id":"\(user.uppercased())","session_id":"\(canary)-session"\(scope)}
            """
        return KafkaOutgoingMessage(topic: "bte.interaction-events.v1", key: Array(user.utf8), value: Array(value.utf8))
    }

    /// A person of `workspace` as the privacy records name them.
    static func ref(_ user: String, in workspace: String = Self.workspace) -> String {
        PersonReference.of(UserKey(workspaceID: workspace, userID: user))
    }

    static func sha256Hex(_ text: String) -> String {
        hexString(Array(SHA256.hash(data: Array(text.utf8))))
    }

    static func prefixed(_ topics: TestTopics, _ messages: [KafkaOutgoingMessage]) -> [KafkaOutgoingMessage] {
        messages.map { KafkaOutgoingMessage(topic: topics.prefix + $0.topic, key: $0.key, value: $0.value) }
    }

    @Test func aSuppressedPersonsNewEventsAreDroppedAtIngestAndCounted() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let store = try PrivacyStore(url: db.adminURL)
        let (request, created) = try store.file(
            workspaceID: Self.workspace, type: .suppress, userIDs: [Self.personA.uppercased(), Self.personA],
            reference: "ticket-1", by: "dpo@example.com")
        // The two spellings of A's id are one user, on record by reference (SHA-256 of
        // "<workspace>/<user id>", the UUID in lower case); the request is done at once.
        let refA = PersonReference.of(UserKey(workspaceID: Self.workspace, userID: Self.personA))
        #expect(refA == Self.sha256Hex("\(Self.workspace)/\(Self.personA)"))
        #expect(created && request.personRefs == [refA] && request.status == "completed")
        #expect(request.users.map(\.status) == ["completed"])
        #expect(request.users.first?.evidence.hasPrefix("{\"suppressed_since\":\"20") == true)
        // Filing the same reference again is the same request; with other users it is refused.
        let again = try store.file(
            workspaceID: Self.workspace, type: .suppress, userIDs: [Self.personA], reference: "ticket-1", by: "x")
        #expect(!again.created && again.request == request)
        let conflict = #expect(throws: StoreError.self) {
            try store.file(
                workspaceID: Self.workspace, type: .suppress, userIDs: [Self.personB], reference: "ticket-1", by: "x")
        }
        #expect(conflict?.code == .privacyRequestConflict)

        // A's events in the workspace (a business event, a user action, an interaction) are
        // dropped; A's id in the other workspace and in the default one is another person; B's
        // events are kept. 3 dropped, 4 stored, nothing rejected.
        try topics.produce(
            Self.prefixed(
                topics,
                [
                    Self.business(1, Self.workspace, Self.personA, canary: "canary-a1"),
                    Self.action(2, Self.workspace, Self.personA, canary: "canary-a2"),
                    Self.interaction(3, Self.workspace, Self.personA, canary: "canary-a3"),
                    Self.business(4, Self.other, Self.personA, canary: "canary-other"),
                    Self.interaction(5, nil, Self.personA, canary: "canary-default"),
                    Self.business(6, Self.workspace, Self.personB, canary: "canary-b"),
                    Self.interaction(7, Self.workspace, Self.personB, canary: "canary-b"),
                ]))
        let metrics = TestMetrics()
        let group = TestEnvironment.uniqueName("ingest-")
        let summary = try ingestUntilIdle(db, topics, group: group, metrics: metrics)
        #expect(summary.suppressed == [.businessEvents: 1, .userActions: 1, .interactionEvents: 1])
        #expect(summary.stored[.businessEvents] == 2 && summary.stored[.interactionEvents] == 2)
        #expect(summary.stored[.userActions, default: 0] == 0 && summary.totalRejected == 0)
        #expect(
            metrics.counterTotal(label: "bte_ingest_suppressed_total", dimensions: [("log", "core.business_events")])
                == 1)
        #expect(try db.count("SELECT count(*) FROM bte.rejected_events") == 0)
        for canary in ["canary-a1", "canary-a2", "canary-a3"] {
            let found = try db.count(
                """
                SELECT (SELECT count(*) FROM core.business_events WHERE metadata::text LIKE '%\(canary)%')
                     + (SELECT count(*) FROM core.user_actions WHERE metadata::text LIKE '%\(canary)%')
                     + (SELECT count(*) FROM core.interaction_events WHERE session_id LIKE '\(canary)%')
                """)
            #expect(found == 0, "\(canary)")
        }

        // Unsuppressed, A's next event is stored again.
        let lifted = try store.file(
            workspaceID: Self.workspace, type: .unsuppress, userIDs: [Self.personA], reference: nil, by: "dpo")
        #expect(lifted.request.users.map(\.evidence) == ["{\"was_suppressed\":true}"])
        try topics.produce(Self.prefixed(topics, [Self.business(8, Self.workspace, Self.personA, canary: "later")]))
        let after = try ingestUntilIdle(db, topics, group: group)
        #expect(after.stored[.businessEvents] == 1 && after.suppressed.isEmpty)
        // The requests are append-only.
        let refused = #expect(throws: PostgresError.self) {
            try db.admin().execute("DELETE FROM privacy.request_events")
        }
        #expect(refused?.sqlState == "P0001")
    }

    /// The HTTP API files requests as the key's workspace and answers for them.
    @Test func requestsThroughTheAPIAreOnRecordPerWorkspace() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let admin = try APITests.createKey(db, scope: "admin", rate: 10_000, workspace: Self.workspace)
        let otherAdmin = try APITests.createKey(db, scope: "admin", rate: 10_000, workspace: Self.other)
        let reader = try APITests.createKey(db, scope: "read", rate: 10_000, workspace: Self.workspace)
        let port = freePort()
        let server = try APITests.serve(db, topics, port: port, extra: ["--database-url", db.ingestURL])
        defer { server.signal(SIGKILL) }
        let path = "/v1/privacy/requests"
        let body = #"{"type":"suppress","user_ids":["\#(Self.personA.uppercased())"],"reference":"ticket-9"}"#
        let filed = APITests.post(port, path, key: admin, body)
        // The id of a referenced request is derived from the workspace and the reference.
        let id = UUIDv5.make(name: "privacy-request|\(Self.workspace)|ticket-9")
        #expect(filed.status == 202 && filed.body == #"{"request_id":"\#(id)","status":"completed"}"#, "\(filed)")
        // A retry is the same request; the reference for other users is a conflict.
        #expect(APITests.post(port, path, key: admin, body).body == filed.body)
        let reused = APITests.post(
            port, path, key: admin, #"{"type":"suppress","user_ids":["u2"],"reference":"ticket-9"}"#)
        #expect(reused.status == 409 && reused.body.contains("reference_reused"), "\(reused)")
        // A read key may not file; bad bodies are 400.
        #expect(APITests.post(port, path, key: reader, body).status == 403)
        #expect(APITests.post(port, path, key: admin, #"{"type":"suppress","user_ids":[]}"#).status == 400)

        let status = ReadAPITests.get(port, "\(path)/\(id)", key: admin)
        let stored = try #require(try PrivacyStore(url: db.adminURL).request(id, workspaceID: Self.workspace))
        let since = stored.users.first?.evidence ?? ""
        #expect(
            status.body
                == "{\"request_id\":\"\(id)\",\"type\":\"suppress\",\"workspace_id\":\"\(Self.workspace)\","
                + "\"status\":\"completed\",\"reference\":\"ticket-9\",\"received_at\":\"\(stored.receivedAt)\","
                + "\"due_at\":\"\(stored.dueAt)\",\"users\":[{\"user_ref\":\"\(Self.ref(Self.personA))\","
                + "\"status\":\"completed\","
                + "\"evidence\":\(since)}]}", "\(status)")
        #expect(stored.requestedBy.hasPrefix("api-key:"))
        // Due 30 days after receipt.
        let received = try #require(Timestamp(rfc3339: stored.receivedAt))
        #expect(Timestamp(rfc3339: stored.dueAt)?.microseconds == received.microseconds + 30 * 86_400_000_000)
        // Another workspace's admin doesn't see it.
        #expect(ReadAPITests.get(port, "\(path)/\(id)", key: otherAdmin).status == 404)
        #expect(ReadAPITests.get(port, "\(path)/not-an-id", key: admin).status == 404)
        #expect(try db.count("SELECT count(*) FROM privacy.suppressions") == 1)
    }

    /// Every read of a person's data through the API is on record before it is served.
    @Test func personalReadsAreRecordedInTheAccessLog() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let reader = try APITests.createKey(db, scope: "read", rate: 10_000, workspace: Self.workspace)
        let keyID = try db.count("SELECT max(id) FROM bte.api_keys")
        let port = freePort()
        let server = try APITests.serve(db, topics, port: port)
        defer { server.signal(SIGKILL) }
        // Two reads of A (nothing stored: 404 and an empty list, still reads of A), one of B's
        // engagement; a workspace read is not personal and not recorded.
        #expect(ReadAPITests.get(port, "/api/v1/behavioral-vectors/\(Self.personA)", key: reader).status == 404)
        #expect(ReadAPITests.get(port, "/v1/users/\(Self.personA)/insights/pending", key: reader).status == 200)
        #expect(ReadAPITests.get(port, "/api/v1/analytics/engagement/user-b", key: reader).status == 404)
        #expect(ReadAPITests.get(port, "/v1/workspaces/\(Self.workspace)/signals", key: reader).status == 200)
        // Unauthenticated requests read nothing and are not recorded.
        #expect(ReadAPITests.get(port, "/api/v1/behavioral-vectors/\(Self.personA)", key: nil).status == 401)
        let run = try BTEProcess(
            ["privacy", "accesses", "--workspace", Self.workspace, "--reader-database-url", db.readerURL])
        #expect(run.wait(timeout: 60) == 0, "\(run.log)")
        let lines = run.log.split(separator: "\n").map { line in
            // Without the time: key, route, user.
            line.split(separator: "\t").dropFirst().joined(separator: " ")
        }
        #expect(
            lines == [
                "", "key \(keyID) GET /api/v1/behavioral-vectors/{user_id} \(Self.ref(Self.personA))",
                "key \(keyID) GET /v1/users/{user_id}/insights/pending \(Self.ref(Self.personA))",
                "key \(keyID) GET /api/v1/analytics/engagement/{user_id} \(Self.ref("user-b"))",
            ], "\(run.log)")
        #expect(run.log.hasPrefix("3 reads of personal data in workspace \(Self.workspace)\n"))
        let refused = #expect(throws: PostgresError.self) { try db.admin().execute("DELETE FROM privacy.access_log") }
        #expect(refused?.sqlState == "P0001")
        // The reader may append to the access log and to nothing else.
        let connection = try PostgresConnection(url: db.readerURL)
        try connection.execute("BEGIN READ WRITE")
        let write = #expect(throws: PostgresError.self) {
            try connection.execute(
                "INSERT INTO privacy.suppressions VALUES ('\(Self.workspace)', 'x', gen_random_uuid())")
        }
        #expect(write?.sqlState == "42501")
    }

    /// Retention drops whole months of the interaction log, through a role that can do only
    /// that, and records each drop.
    @Test func retentionDropsWholeOldMonthsAndRecordsThem() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        func event(_ n: Int, at: String) -> KafkaOutgoingMessage {
            let value = """
                {"event_id":"\(fixtureUUID(n, prefix: "7e7e7e7e"))","timestamp":"\(at)","event_type":"tap",
                 "user_id":"u","session_id":"s","workspace_id":"\(Self.workspace)"}
                """
            return KafkaOutgoingMessage(
                topic: topics.prefix + "bte.interaction-events.v1", key: Array("u".utf8), value: Array(value.utf8))
        }
        let now = Timestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000))
        // Two events in January 2020, one in February 2020, one now: keeping 18 months drops the
        // two 2020 months (2 and 1 events) and keeps the current one.
        let old = [event(1, at: "2020-01-15T00:00:00Z"), event(2, at: "2020-01-31T23:59:59Z")]
        try topics.produce(old + [event(3, at: "2020-02-01T00:00:00Z"), event(4, at: now.rfc3339)])
        let group = TestEnvironment.uniqueName("ingest-")
        let first = try ingestUntilIdle(db, topics, group: group)
        #expect(first.stored[.interactionEvents] == 4, "\(first.render())")

        // A login that is a member of bte_retention and nothing else.
        let login = TestEnvironment.uniqueName("retention_")
        try db.admin().execute("CREATE ROLE \(login) LOGIN IN ROLE bte_retention")
        defer { _ = try? db.admin().execute("DROP ROLE IF EXISTS \(login)") }
        let url = db.adminURL.replacingOccurrences(of: "postgres@", with: "\(login)@")
        let store = try PrivacyStore(url: url)
        let expected = [
            PrivacyStore.ExpiredPartition(
                name: "interaction_events_2020_01", from: "2020-01-01T00:00:00Z", to: "2020-02-01T00:00:00Z", rows: 2),
            PrivacyStore.ExpiredPartition(
                name: "interaction_events_2020_02", from: "2020-02-01T00:00:00Z", to: "2020-03-01T00:00:00Z", rows: 1),
        ]
        // A dry run lists and drops nothing.
        #expect(try store.expirePartitions(keepMonths: 18, execute: false) == expected)
        #expect(try db.count("SELECT count(*) FROM core.interaction_events") == 4)
        #expect(try store.expirePartitions(keepMonths: 18, execute: true) == expected)
        #expect(try db.count("SELECT count(*) FROM core.interaction_events") == 1)
        #expect(
            try db.count(
                "SELECT count(*) FROM privacy.retention_drops WHERE dropped_by = '\(login)' AND keep_months = 18 "
                    + "AND row_count IN (1, 2)") == 2)
        #expect(try store.expirePartitions(keepMonths: 18, execute: true).isEmpty)
        // That login can't touch the logs otherwise.
        let connection = try PostgresConnection(url: url)
        for statement in [
            "DELETE FROM core.interaction_events", "SELECT count(*) FROM core.interaction_events",
            "DROP TABLE core.business_events",
        ] {
            let refused = #expect(throws: PostgresError.self) { try connection.execute(statement) }
            #expect(refused?.sqlState == "42501", "\(statement)")
        }
        // An old event sent again is a duplicate: its id is still claimed, nothing comes back.
        try topics.produce([old[0]])
        let again = try ingestUntilIdle(db, topics, group: group)
        #expect(again.stored[.interactionEvents, default: 0] == 0 && again.duplicates[.interactionEvents] == 1)
        #expect(try db.count("SELECT count(*) FROM core.interaction_events") == 1)
    }

    /// The business and user action logs (not partitioned) expire by month through the same
    /// role: their old rows are deleted and recorded, consent events kept, the ids stay claimed.
    @Test func retentionDeletesOldMonthsOfTheBusinessLogsKeepingConsent() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        func business(_ n: Int, _ type: String, at: String, metadata: String = "{}") -> KafkaOutgoingMessage {
            let value = """
                {"record_type":"business_event","event_id":"\(fixtureUUID(n, prefix: "e8e8e8e8"))",
                 "event_type":"\(type)","entity_type":"\(type.hasPrefix("consent") ? "consent" : "deal")",
                 "entity_id":"\(fixtureUUID(n, prefix: "d8d8d8d8"))",
                 "workspace_id":"\(Self.workspace)","sub_vertical_id":"\(fixtureUUID(1, prefix: "5c5c5c5c"))",
                 "actor_user_id":"\(Self.personA)","timestamp":"\(at)","metadata":\(metadata)}
                """
            return KafkaOutgoingMessage(
                topic: topics.prefix + "bte.business-events.v1", key: Array(Self.workspace.utf8),
                value: Array(value.utf8))
        }
        func action(_ n: Int, at: String) -> KafkaOutgoingMessage {
            let value = """
                {"record_type":"user_action","action_id":"\(fixtureUUID(n, prefix: "a8a8a8a8"))",
                 "action_type":"note.added","workspace_id":"\(Self.workspace)","actor_user_id":"\(Self.personA)",
                 "timestamp":"\(at)"}
                """
            return KafkaOutgoingMessage(
                topic: topics.prefix + "bte.business-events.v1", key: Array(Self.workspace.utf8),
                value: Array(value.utf8))
        }
        let now = Timestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000)).rfc3339
        // January 2020: two deals and a consent withdrawal; March 2020: one deal; now: one deal.
        // Actions: one in January 2020, one now.
        let oldDeal = business(1, "deal.created", at: "2020-01-10T00:00:00Z")
        try topics.produce([
            oldDeal, business(2, "deal.created", at: "2020-01-31T23:59:59Z"),
            business(
                3, "consent.withdrawn", at: "2020-01-05T00:00:00Z", metadata: #"{"purpose":"behavioral_profile"}"#),
            business(4, "deal.created", at: "2020-03-01T00:00:00Z"), business(5, "deal.created", at: now),
            action(1, at: "2020-01-20T00:00:00Z"), action(2, at: now),
        ])
        let group = TestEnvironment.uniqueName("ingest-")
        let first = try ingestUntilIdle(db, topics, group: group)
        #expect(first.stored == [.businessEvents: 5, .userActions: 2], "\(first.render())")

        let login = TestEnvironment.uniqueName("retention_")
        try db.admin().execute("CREATE ROLE \(login) LOGIN IN ROLE bte_retention")
        defer { _ = try? db.admin().execute("DROP ROLE IF EXISTS \(login)") }
        let url = db.adminURL.replacingOccurrences(of: "postgres@", with: "\(login)@")
        let store = try PrivacyStore(url: url)
        // Keeping 18 months: January 2020 (2 deals; the consent event is kept) and March 2020 (1).
        let expected = [
            PrivacyStore.ExpiredPartition(
                name: "business_events_2020_01", from: "2020-01-01T00:00:00Z", to: "2020-02-01T00:00:00Z", rows: 2),
            PrivacyStore.ExpiredPartition(
                name: "business_events_2020_03", from: "2020-03-01T00:00:00Z", to: "2020-04-01T00:00:00Z", rows: 1),
        ]
        #expect(try store.expireRows(log: "core.business_events", keepMonths: 18, execute: false) == expected)
        #expect(try db.count("SELECT count(*) FROM core.business_events") == 5)
        // The command lists both logs' months in a dry run.
        let dry = try BTEProcess(["privacy", "retention", "--log", "user_actions", "--database-url", url])
        #expect(dry.wait(timeout: 60) == 0, "\(dry.log)")
        #expect(
            dry.log.contains(
                "would delete user_actions_2020_01 [2020-01-01T00:00:00Z, 2020-02-01T00:00:00Z): 1 events"),
            "\(dry.log)")
        #expect(try store.expireRows(log: "core.business_events", keepMonths: 18, execute: true) == expected)
        #expect(try store.expireRows(log: "core.user_actions", keepMonths: 18, execute: true).map(\.rows) == [1])
        #expect(
            try db.count("SELECT count(*) FROM core.business_events WHERE event_type = 'consent.withdrawn'") == 1)
        #expect(try db.count("SELECT count(*) FROM core.business_events") == 2)
        #expect(try db.count("SELECT count(*) FROM core.user_actions") == 1)
        #expect(
            try db.count(
                "SELECT count(*) FROM privacy.retention_drops WHERE dropped_by = '\(login)' "
                    + "AND log IN ('core.business_events', 'core.user_actions')") == 3)
        #expect(try store.expireRows(log: "core.business_events", keepMonths: 18, execute: true).isEmpty)
        // Only the function can delete: the login can't, and the logs still refuse their owner.
        let connection = try PostgresConnection(url: url)
        let refused = #expect(throws: PostgresError.self) { try connection.execute("DELETE FROM core.user_actions") }
        #expect(refused?.sqlState == "42501")
        let owner = #expect(throws: PostgresError.self) { try db.admin().execute("DELETE FROM core.business_events") }
        #expect(owner?.sqlState == "P0001")
        let unknown = #expect(throws: PostgresError.self) {
            try store.expireRows(log: "core.interaction_events", keepMonths: 18, execute: true)
        }
        #expect(unknown?.sqlState == "22023")
        // An expired event sent again is a duplicate: nothing comes back.
        try topics.produce([oldDeal])
        let again = try ingestUntilIdle(db, topics, group: group)
        #expect(again.stored[.businessEvents, default: 0] == 0 && again.duplicates[.businessEvents] == 1)
    }

    @Test func anExportHoldsThePersonsRecordsAndNoOneElses() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        try topics.produce(
            Self.prefixed(
                topics,
                [
                    Self.business(1, Self.workspace, Self.personA, canary: "canary-a1"),
                    Self.action(2, Self.workspace, Self.personA, canary: "canary-a2"),
                    Self.interaction(3, Self.workspace, Self.personA, canary: "canary-a3"),
                    Self.business(4, Self.other, Self.personA, canary: "canary-other"),
                    Self.business(6, Self.workspace, Self.personB, canary: "canary-b"),
                    Self.interaction(7, Self.workspace, Self.personB, canary: "canary-b"),
                ]))
        _ = try ingestUntilIdle(db, topics, group: TestEnvironment.uniqueName("ingest-"))
        // A model segment that lists A (and one that doesn't, and one of the other workspace).
        try db.admin().execute(
            """
            INSERT INTO bte.segments (project_id, name, filter) VALUES
                ('\(Self.workspace)', 'vip', '{"user_ids":["\(Self.personA)","x"]}'),
                ('\(Self.workspace)', 'ios', '{"device_types":["ios"]}'),
                ('\(Self.other)', 'vip', '{"user_ids":["\(Self.personA)"]}')
            """)

        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            TestEnvironment.uniqueName("export-") + ".ndjson")
        defer { try? FileManager.default.removeItem(at: file) }
        let run = try BTEProcess(
            [
                "privacy", "export", "--workspace", Self.workspace, "--user", Self.personA, "--by", "dpo@example.com",
                "--reference", "export-1", "--output", file.path, "--database-url", db.adminURL,
            ])
        #expect(run.wait(timeout: 60) == 0, "\(run.log)")
        let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n").map(String.init)
        // A's three records in this workspace, the segment, the export request itself, then the
        // manifest.
        let sources = lines.dropLast().compactMap { line -> String? in
            guard case .object(let members)? = try? JSONParser.parse(Array(line.utf8)) else { return nil }
            if case .string(let source)? = members.first(where: { $0.key == "source" })?.value { return source }
            return nil
        }
        #expect(
            sources == [
                "core.business_events", "core.user_actions", "core.interaction_events", "bte.segments",
                "privacy.requests",
            ])
        let text = lines.joined(separator: "\n")
        for canary in ["canary-a1", "canary-a2", "canary-a3"] { #expect(text.contains(canary), "\(canary)") }
        for canary in ["canary-other", "canary-b"] { #expect(!text.contains(canary), "\(canary)") }
        let manifest = lines.last ?? ""
        #expect(manifest.hasPrefix("{\"manifest\":{\"request_id\":\""))
        #expect(
            manifest.contains(
                "\"records\":5,\"sources\":{\"bte.behavioral_vectors\":0,\"bte.bv_history\":0,"
                    + "\"bte.insight_deliveries\":0,\"bte.segments\":1,\"core.business_events\":1,"
                    + "\"core.interaction_events\":1,"
                    + "\"core.user_actions\":1,\"privacy.requests\":1}"), "\(manifest)")
        // The export is on record, completed, with its counts.
        let store = try PrivacyStore(url: db.adminURL)
        let again = try store.file(
            workspaceID: Self.workspace, type: .export, userIDs: [Self.personA], reference: "export-1", by: "dpo")
        #expect(!again.created && again.request.status == "completed" && again.request.requestedBy == "dpo@example.com")
        #expect(again.request.users.first?.evidence.contains("\"core.business_events\":1") == true)

        // Through the API: an export request for A and B, then each one's NDJSON.
        let admin = try APITests.createKey(db, scope: "admin", rate: 10_000, workspace: Self.workspace)
        let otherAdmin = try APITests.createKey(db, scope: "admin", rate: 10_000, workspace: Self.other)
        let reader = try APITests.createKey(db, scope: "read", rate: 10_000, workspace: Self.workspace)
        let port = freePort()
        let server = try APITests.serve(db, topics, port: port, extra: ["--database-url", db.ingestURL])
        defer { server.signal(SIGKILL) }
        let body = #"{"type":"export","user_ids":["\#(Self.personA)","\#(Self.personB)"],"reference":"e-2"}"#
        let filed = APITests.post(port, "/v1/privacy/requests", key: admin, body)
        let id = UUIDv5.make(name: "privacy-request|\(Self.workspace)|e-2")
        #expect(filed.status == 202 && filed.body == #"{"request_id":"\#(id)","status":"received"}"#, "\(filed)")
        let path = "/v1/privacy/requests/\(id)/export"
        let exportA = ReadAPITests.get(port, "\(path)?user_id=\(Self.personA.uppercased())", key: admin)
        #expect(exportA.status == 200, "\(exportA)")
        let apiLines = exportA.body.split(separator: "\n").map(String.init)
        // The same four records as the command's export (the logs' three and the segment), then
        // both export requests naming A, then the manifest of this request.
        #expect(apiLines.count == 7 && Array(apiLines.prefix(4)) == Array(lines.prefix(4)), "\(exportA.body)")
        #expect(apiLines[4].contains("\"reference\":\"export-1\"") && apiLines[5].contains("\"reference\":\"e-2\""))
        let head: String =
            "{\"manifest\":{\"request_id\":\"\(id)\",\"workspace_id\":\"\(Self.workspace)\","
            + "\"user_id\":\"\(Self.personA)\",\"records\":6,"
        let counts: String =
            "\"sources\":{\"bte.behavioral_vectors\":0,\"bte.bv_history\":0,\"bte.insight_deliveries\":0,"
            + "\"bte.segments\":1,\"core.business_events\":1,\"core.interaction_events\":1,\"core.user_actions\":1,"
            + "\"privacy.requests\":2},"
        let left: String =
            "\"not_included\":{\"agent.intent_events\":\"intent telemetry names no workspace; its actor ids are "
            + "reviewed with bte intents\",\"bte.rejected_events\":\"a rejected message is not attributed to a "
            + "person; bte rejects export lists them\"}}}"
        #expect(apiLines.last == head + counts + left)
        for canary in ["canary-other", "canary-b"] { #expect(!exportA.body.contains(canary), "\(canary)") }
        // One of two people exported: the request is running; with B's, completed.
        var status = try #require(try store.request(id, workspaceID: Self.workspace))
        #expect(status.status == "running" && status.users.map(\.status) == ["completed", "received"])
        let exportB = ReadAPITests.get(port, "\(path)?user_id=\(Self.personB)", key: admin)
        #expect(exportB.status == 200 && exportB.body.contains("canary-b") && !exportB.body.contains("canary-a"))
        status = try #require(try store.request(id, workspaceID: Self.workspace))
        #expect(status.status == "completed" && status.users.map(\.status) == ["completed", "completed"])
        // Someone the request doesn't name, another workspace, a read key, no user: nothing.
        #expect(ReadAPITests.get(port, "\(path)?user_id=someone-else", key: admin).status == 404)
        #expect(ReadAPITests.get(port, "\(path)?user_id=\(Self.personA)", key: otherAdmin).status == 404)
        #expect(ReadAPITests.get(port, "\(path)?user_id=\(Self.personA)", key: reader).status == 403)
        #expect(ReadAPITests.get(port, path, key: admin).status == 400)
        // A request of another type has no export.
        let suppress = APITests.post(
            port, "/v1/privacy/requests", key: admin, #"{"type":"suppress","user_ids":["x"],"reference":"s"}"#)
        #expect(suppress.status == 202)
        let suppressID = UUIDv5.make(name: "privacy-request|\(Self.workspace)|s")
        #expect(ReadAPITests.get(port, "/v1/privacy/requests/\(suppressID)/export?user_id=x", key: admin).status == 404)
        // Each download is a read of the person on record.
        #expect(
            try db.count(
                "SELECT count(*) FROM privacy.access_log WHERE route = 'GET /v1/privacy/requests/{request_id}/export'")
                == 2)
    }
}

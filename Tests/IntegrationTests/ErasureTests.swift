import BTEDomain
import BTEStore
import BTETestSupport
import Foundation
import Kafka
import Postgres
import Testing

/// Erasure on append-only logs, end to end against the real servers: three people with unique
/// canary strings in every personal field (A; B, A's user id in another workspace; C, A's
/// workspace), the whole pipeline run (ingest, projector, sink, API), then A erased. Nothing of
/// A's is readable anywhere in the database, A's reads are 404, B's and C's stored outputs are
/// the same bytes, a rebuild from the logs republishes exactly what it did minus A's, A's events
/// sent again store nothing, and the logs still refuse every change.
@Suite(.serialized) struct ErasureTests {
    static let workspace = fixtureUUID(1, prefix: "e5e5e5e5")
    static let other = fixtureUUID(2, prefix: "e6e6e6e6")
    static let userA = fixtureUUID(10, prefix: "aaaa0000")
    static let userC = fixtureUUID(11, prefix: "cccc0000")

    /// A person's events, each personal field holding `canary` (ids numbered from `base`).
    static func events(_ prefix: String, workspace: String, user: String, canary: String, base: Int)
        -> [KafkaOutgoingMessage]
    {
        var out: [KafkaOutgoingMessage] = []
        for n in 0..<3 {
            let value = """
                {"event_id":"\(fixtureUUID(base + n, prefix: "1e1e1e1e"))","timestamp":"2026-03-02T10:0\(n):00Z",
                 "event_type":"tap","user_id":"\(user)","session_id":"\(canary)-session",
                 "device_id":"\(canary)-device","interaction_data":{"note":"\(canary)-data"},
                 "error_message":"\(canary)-error","context":{"page":"\(canary)-context"},
                 "nickname":"\(canary)-extra","workspace_id":"\(workspace)"}
                """
            out.append(
                KafkaOutgoingMessage(
                    topic: prefix + "bte.interaction-events.v1", key: Array(user.utf8), value: Array(value.utf8)))
        }
        let business = """
            {"record_type":"business_event","event_id":"\(fixtureUUID(base, prefix: "b1b1b1b1"))",
             "event_type":"deal.created","entity_type":"deal","entity_id":"\(fixtureUUID(base, prefix: "d1d1d1d1"))",
             "workspace_id":"\(workspace)","sub_vertical_id":"\(fixtureUUID(1, prefix: "5c5c5c5c"))",
             "actor_user_id":"\(user)","timestamp":"2026-03-02T09:00:00Z","metadata":{"amount":100},
             "nickname":"\(canary)-business"}
            """
        let action = """
            {"record_type":"user_action","action_id":"\(fixtureUUID(base, prefix: "acacacac"))",
             "action_type":"note.added","workspace_id":"\(workspace)","actor_user_id":"\(user)",
             "timestamp":"2026-03-02T09:30:00Z","metadata":{"note":"\(canary)-action"}}
            """
        for value in [business, action] {
            out.append(
                KafkaOutgoingMessage(
                    topic: prefix + "bte.business-events.v1", key: Array(workspace.utf8), value: Array(value.utf8)))
        }
        return out
    }

    /// A record ingest refuses (an unknown event type), kept with its payload.
    static func refused(_ prefix: String, user: String, canary: String) -> KafkaOutgoingMessage {
        let value = """
            {"event_id":"\(fixtureUUID(99, prefix: "1e1e1e1e"))","timestamp":"2026-03-02T10:00:00Z",
             "event_type":"not-a-type","user_id":"\(user)","session_id":"\(canary)-reject",
             "workspace_id":"\(workspace)"}
            """
        return KafkaOutgoingMessage(
            topic: prefix + "bte.interaction-events.v1", key: Array(user.utf8), value: Array(value.utf8))
    }

    /// Rows of every table of BTE's schemas holding `needle`, in their text form or, for binary
    /// columns, in their bytes: what a dump of the database would show.
    static func rowsHolding(_ needle: String, _ db: TestDatabase) throws -> [String] {
        let admin = try db.admin()
        let tables = try admin.execute(
            """
            SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
              AND n.nspname IN ('core', 'agent', 'bte', 'privacy', 'bte_keys')
            ORDER BY 1
            """
        ).rows.compactMap { $0[0] }
        var found: [String] = []
        for table in tables {
            let binary = try admin.execute(
                """
                SELECT attname FROM pg_attribute
                WHERE attrelid = $1::regclass AND atttypid = 'bytea'::regtype AND attnum > 0 AND NOT attisdropped
                """, [table]
            ).rows.compactMap { $0[0] }
            let inBytes = binary.map {
                "position(convert_to(\(sqlLiteral(needle)), 'UTF8') IN coalesce(t.\($0), ''))>0"
            }
            let condition = (["t::text LIKE \(sqlLiteral("%" + needle + "%"))"] + inBytes).joined(separator: " OR ")
            let count = try db.count("SELECT count(*) FROM \(table) t WHERE \(condition)")
            if count > 0 { found.append("\(table): \(count)") }
        }
        return found
    }

    /// The stored outputs of one person, in a stable order.
    static func outputs(_ db: TestDatabase, workspace: String, user: String) throws -> [[String?]] {
        let admin = try db.admin()
        return try admin.execute(
            "SELECT record FROM bte.behavioral_vectors WHERE workspace_id = $1 AND user_id = $2",
            [workspace, user]
        ).rows
            + admin.execute(
                "SELECT id::text, record FROM bte.bv_history WHERE workspace_id = $1 AND user_id = $2 ORDER BY id",
                [workspace, user]
            ).rows
            + admin.execute(
                "SELECT id::text, record FROM bte.insight_deliveries WHERE workspace_id = $1 AND user_id = $2 "
                    + "ORDER BY id", [workspace, user]
            ).rows
    }

    @Test func anErasedPersonLeavesNothingReadableAndEveryoneElseStaysTheSame() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        try ReplayIdentityTests.createOutputTopics(topics)
        try createOutputTopics(topics)
        let prefix = topics.prefix
        try topics.produce(
            Self.events(prefix, workspace: Self.workspace, user: Self.userA, canary: "canary-A", base: 10)
                + Self.events(prefix, workspace: Self.other, user: Self.userA, canary: "canary-B", base: 20)
                + Self.events(prefix, workspace: Self.workspace, user: Self.userC, canary: "canary-C", base: 30)
                + [Self.refused(prefix, user: Self.userA, canary: "canary-A")])
        let ingestGroup = TestEnvironment.uniqueName("ingest-")
        let ingested = try ingestUntilIdle(db, topics, group: ingestGroup)
        // 3 people × (3 interactions, 1 business event, 1 action); A's bad record refused.
        #expect(ingested.stored == [.interactionEvents: 9, .businessEvents: 3, .userActions: 3], "\(ingested)")
        #expect(ingested.totalRejected == 1)
        // Stored under subjects: no log row holds a canary or A's id as sent.
        #expect(
            try db.count("SELECT count(*) FROM core.interaction_events WHERE user_id = '\(Self.userA)'") == 0)

        let env = ["BTE_KAFKA_BROKERS": topics.brokers, "BTE_READER_DATABASE_URL": db.readerURL]
        let project = ["project", "--until-idle", "--topic-prefix", prefix, "--ingest-group", ingestGroup]
        let firstLog = try runBTE(project + ["--group", TestEnvironment.uniqueName("projector-a-")], env)
        let firstRun = try ReplayIdentityTests.records(topics)
        _ = try sinkUntilIdle(db, topics)
        // Each person's three interactions: three vectors in the history, the newest one current.
        for (workspace, user) in [(Self.workspace, Self.userA), (Self.other, Self.userA), (Self.workspace, Self.userC)]
        {
            #expect(try Self.outputs(db, workspace: workspace, user: user).count == 1 + 3, "\(workspace)/\(user)")
        }
        let beforeB = try Self.outputs(db, workspace: Self.other, user: Self.userA)
        let beforeC = try Self.outputs(db, workspace: Self.workspace, user: Self.userC)

        let reader = try APITests.createKey(db, scope: "read", rate: 10_000, workspace: Self.workspace)
        let port = freePort()
        let server = try APITests.serve(db, topics, port: port)
        defer { server.signal(SIGKILL) }
        let vectorA = "/api/v1/behavioral-vectors/\(Self.userA)"
        let vectorC = "/api/v1/behavioral-vectors/\(Self.userC)"
        #expect(ReadAPITests.get(port, vectorA, key: reader).status == 200)
        let servedC = ReadAPITests.get(port, vectorC, key: reader)
        #expect(servedC.status == 200)

        // Erase A, and keep A's new events out.
        let erase = try BTEProcess([
            "privacy", "erase", "--workspace", Self.workspace, Self.userA, "--suppress", "--by", "dpo@example.com",
            "--reference", "ticket-erase-1", "--database-url", db.adminURL, "--brokers", topics.brokers,
            "--topic-prefix", prefix,
        ])
        #expect(erase.wait(timeout: 60) == 0, "\(erase.log)")
        // A's key on the compacted vectors topic ends with a tombstone: compaction drops A's
        // vectors (the broker's compaction itself is its own; the topic bounds when it runs).
        let keyOfA = "\(Self.workspace)/\(Self.userA)"
        let onTopic = try topics.readAll(prefix + "bte.behavioral-vectors.v1").filter {
            $0.key.map { String(decoding: $0, as: UTF8.self) } == keyOfA
        }
        #expect(onTopic.count == 4 && onTopic.last?.value == nil, "\(onTopic.map { $0.value?.count ?? -1 })")
        // The sink passes over the tombstone: nothing stored again, nothing dead-lettered (the
        // dead-letter topic holds only ingest's reject of A's bad record, until its retention).
        _ = try sinkUntilIdle(db, topics)
        let letters = try topics.readAll(prefix + "bte.dead-letter.v1").map {
            String(decoding: $0.value ?? [], as: UTF8.self)
        }
        #expect(letters.count == 1 && letters.allSatisfy { $0.contains("bte.interaction-events.v1") }, "\(letters)")
        // Its evidence: the subject, 1 latest vector and 3 in the history, the reject; nothing
        // stored before subjects existed.
        #expect(erase.log.contains("erase_and_suppress of 1 users"), "\(erase.log)")
        #expect(
            erase.log.contains(
                "\tcompleted\t{\"deliveries\":0,\"rejects\":1,\"subject_deleted\":true,\"suppressed_since\":\"20"),
            "\(erase.log)")
        #expect(erase.log.contains("\"unsealed_rows\":0,\"vector_history\":3,\"vectors\":1}"), "\(erase.log)")

        // Nothing of A's is readable in any table. B's and C's personal content is sealed at rest
        // too (their export below opens it).
        for canary in ["canary-A", "canary-B", "canary-C"] {
            #expect(try Self.rowsHolding(canary, db) == [], "\(canary)")
        }
        // A's id: B has the same id in the other workspace, so only rows of the other workspace
        // may hold it, and they are B's.
        for table in ["bte.behavioral_vectors", "bte.bv_history", "bte.insight_deliveries", "bte_keys.subjects"] {
            #expect(
                try db.count(
                    "SELECT count(*) FROM \(table) WHERE workspace_id = '\(Self.workspace)' "
                        + "AND user_id = '\(Self.userA)'"
                ) == 0, "\(table)")
        }
        #expect(
            try db.count(
                "SELECT count(*) FROM core.interaction_events_live WHERE workspace_id = '\(Self.workspace)' "
                    + "AND user_id = '\(Self.userA)'") == 0)
        #expect(try db.count("SELECT count(*) FROM bte.rejected_events") == 0)

        // A's reads are 404; C's answer is the same bytes.
        #expect(ReadAPITests.get(port, vectorA, key: reader).status == 404)
        #expect(ReadAPITests.get(port, "/api/v1/analytics/engagement/\(Self.userA)", key: reader).status == 404)
        #expect(ReadAPITests.get(port, vectorC, key: reader).body == servedC.body)
        // B's and C's stored outputs are unchanged.
        #expect(try Self.outputs(db, workspace: Self.other, user: Self.userA) == beforeB)
        #expect(try Self.outputs(db, workspace: Self.workspace, user: Self.userC) == beforeC)

        // An export of A finds nothing but the request; B's export opens B's sealed content.
        let exportA = try BTEProcess([
            "privacy", "export", "--workspace", Self.workspace, "--user", Self.userA, "--by", "dpo",
            "--database-url", db.adminURL,
        ])
        #expect(exportA.wait(timeout: 60) == 0, "\(exportA.log)")
        #expect(!exportA.log.contains("canary-A"))
        #expect(exportA.log.contains("\"records\":2,"), "\(exportA.log)")
        let exportB = try BTEProcess([
            "privacy", "export", "--workspace", Self.other, "--user", Self.userA, "--by", "dpo",
            "--database-url", db.adminURL,
        ])
        #expect(exportB.wait(timeout: 60) == 0, "\(exportB.log)")
        for field in ["session", "device", "data", "error", "context", "extra", "business", "action"] {
            #expect(exportB.log.contains("canary-B-\(field)"), "\(field)")
        }
        #expect(exportB.log.contains("\"user_id\":\"\(Self.userA)\""))

        // A's events sent again (and one new) store nothing: A is suppressed.
        try topics.produce(
            Self.events(prefix, workspace: Self.workspace, user: Self.userA, canary: "canary-A", base: 40)
                + [Self.refused(prefix, user: Self.userA, canary: "canary-A")])
        let again = try ingestUntilIdle(db, topics, group: ingestGroup)
        #expect(again.suppressed == [.interactionEvents: 3, .businessEvents: 1, .userActions: 1], "\(again)")
        #expect(again.stored.values.reduce(0, +) == 0)
        #expect(try Self.rowsHolding("canary-A", db) == [])

        // A rebuild from the logs (a new projector group, from the start) publishes what the
        // first run did, byte for byte, except A's vectors: over both runs, each record twice and
        // A's three vectors once.
        let rebuildLog = try runBTE(project + ["--group", TestEnvironment.uniqueName("projector-b-")], env)
        // Both runs' records, and the erasure's tombstone (an empty value).
        let withTombstone = try ReplayIdentityTests.records(topics)
        #expect(withTombstone.filter { $0 == "bte.behavioral-vectors.v1 " }.count == 1)
        let both = withTombstone.filter { $0 != "bte.behavioral-vectors.v1 " }
        let keyA = "\"user_id\":\"\(Self.userA)\""
        let ofA = firstRun.filter {
            $0.hasPrefix("bte.behavioral-vectors.v1 ") && $0.contains(keyA) && $0.contains(Self.workspace)
        }
        #expect(ofA.count == 3)
        var expected: [String: Int] = [:]
        for record in firstRun { expected[record, default: 0] += 2 }
        for record in ofA { expected[record, default: 0] -= 1 }
        var published: [String: Int] = [:]
        for record in both { published[record, default: 0] += 1 }
        #expect(published == expected)

        // No worker's log line quoted any of it either.
        for log in [firstLog, rebuildLog, server.log] {
            #expect(!log.contains("canary-") && !log.contains(Self.userA), "\(log.prefix(2_000))")
        }

        // The logs still refuse every change, erasure or not.
        for statement in [
            "UPDATE core.interaction_events SET event_type = 'tap'", "DELETE FROM core.business_events",
            "TRUNCATE core.user_actions",
        ] {
            let refused = #expect(throws: PostgresError.self) { try db.admin().execute(statement) }
            #expect(refused?.sqlState == "P0001", "\(statement)")
        }
    }

    /// A plain erasure: A's events sent again store nothing and bring no key back; A's next new
    /// event is someone new (a new subject); a suppression made before stays.
    @Test func aPlainErasureLeavesNoKeyBehindAndKeepsASuppression() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let prefix = topics.prefix
        let events = Self.events(prefix, workspace: Self.workspace, user: Self.userA, canary: "canary-A", base: 10)
        try topics.produce(events)
        let group = TestEnvironment.uniqueName("ingest-")
        #expect(try ingestUntilIdle(db, topics, group: group).stored.values.reduce(0, +) == 5)
        let subjectOf = "SELECT subject::text FROM bte_keys.subjects WHERE workspace_id = '\(Self.workspace)' "
        let before = try db.admin().execute(subjectOf + "AND user_id = '\(Self.userA)'").rows
        #expect(before.count == 1)

        let store = try PrivacyStore(url: db.adminURL)
        // C is suppressed first, then erased (plainly): still suppressed.
        _ = try store.file(
            workspaceID: Self.workspace, type: .suppress, userIDs: [Self.userC], reference: nil, by: "dpo")
        let erased = try store.file(
            workspaceID: Self.workspace, type: .erase, userIDs: [Self.userA, Self.userC], reference: nil, by: "dpo")
        #expect(
            erased.request.status == "completed" && erased.request.users.map(\.status) == ["completed", "completed"])
        #expect(try db.count("SELECT count(*) FROM privacy.suppressions") == 1)

        // The same events again: duplicates of rows that are already there, no subject made.
        try topics.produce(events)
        let again = try ingestUntilIdle(db, topics, group: group)
        #expect(again.stored.values.reduce(0, +) == 0 && again.duplicates.values.reduce(0, +) == 5, "\(again)")
        #expect(try db.admin().execute(subjectOf + "AND user_id = '\(Self.userA)'").rows.isEmpty)

        // A new event of the same user id: a new person, under a new subject.
        try topics.produce(Self.events(prefix, workspace: Self.workspace, user: Self.userA, canary: "new", base: 50))
        #expect(try ingestUntilIdle(db, topics, group: group).stored.values.reduce(0, +) == 5)
        let after = try db.admin().execute(subjectOf + "AND user_id = '\(Self.userA)'").rows
        #expect(after.count == 1 && after != before)
        // Only the new person's rows read as A's.
        #expect(
            try db.count(
                "SELECT count(*) FROM core.interaction_events_live WHERE workspace_id = '\(Self.workspace)' "
                    + "AND user_id = '\(Self.userA)'") == 3)
    }

    /// An erasure and a computation that publishes wait for each other: an erasure waits until a
    /// projector batch in flight has published (its vectors precede the tombstones), and a
    /// batch that starts while an erasure runs waits for it to commit (it then reads the logs
    /// without the person).
    @Test func erasuresAndPublishingComputationsWaitForEachOther() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        try ReplayIdentityTests.createOutputTopics(topics)
        let prefix = topics.prefix
        try topics.produce(Self.events(prefix, workspace: Self.workspace, user: Self.userA, canary: "a", base: 10))
        let ingestGroup = TestEnvironment.uniqueName("ingest-")
        #expect(try ingestUntilIdle(db, topics, group: ingestGroup).stored.values.reduce(0, +) == 5)

        // A batch in flight (the fence held shared, as the projector holds it from its snapshot
        // to its publish): the erasure waits, nothing of it committed.
        let batch = try HistoryReader(url: db.readerURL)
        try batch.holdErasures()
        let erase = try BTEProcess([
            "privacy", "erase", "--workspace", Self.workspace, Self.userA, "--by", "dpo", "--reference", "e-1",
            "--database-url", db.adminURL, "--brokers", topics.brokers, "--topic-prefix", prefix,
        ])
        #expect(erase.wait(timeout: 3) == nil, "\(erase.log)")
        #expect(try db.count("SELECT count(*) FROM privacy.requests") == 0)
        #expect(try db.count("SELECT count(*) FROM bte_keys.subjects") == 1)
        batch.releaseErasures()
        #expect(erase.wait(timeout: 60) == 0, "\(erase.log)")
        #expect(try db.count("SELECT count(*) FROM bte_keys.subjects") == 0)

        // An erasure between its lock and its commit (the fence held exclusively): a projector
        // publishes nothing until it ends.
        let erasure = try PostgresConnection(url: db.adminURL)
        try erasure.execute("SELECT pg_advisory_lock(hashtext('bte.erasure'), 0)")
        try topics.produce(Self.events(prefix, workspace: Self.workspace, user: Self.userC, canary: "c", base: 30))
        #expect(try ingestUntilIdle(db, topics, group: ingestGroup).stored.values.reduce(0, +) == 5)
        let project = try BTEProcess(
            [
                "project", "--until-idle", "--topic-prefix", prefix, "--ingest-group", ingestGroup, "--group",
                TestEnvironment.uniqueName("projector-"),
            ], environment: ["BTE_KAFKA_BROKERS": topics.brokers, "BTE_READER_DATABASE_URL": db.readerURL])
        #expect(project.wait(timeout: 5) == nil, "\(project.log)")
        #expect(try topics.readAll(prefix + "bte.behavioral-vectors.v1").filter { $0.value != nil }.isEmpty)
        try erasure.execute("SELECT pg_advisory_unlock(hashtext('bte.erasure'), 0)")
        #expect(project.wait(timeout: 120) == 0, "\(project.log)")
        // C's three vectors; A's interactions are gone from the logs' views: none of A's.
        let keys = try topics.readAll(prefix + "bte.behavioral-vectors.v1").filter { $0.value != nil }.map {
            String(decoding: $0.key ?? [], as: UTF8.self)
        }
        #expect(keys == Array(repeating: "\(Self.workspace)/\(Self.userC)", count: 3), "\(keys)")
    }

    /// The database computes a person's reference exactly as BTE does.
    @Test func theDatabaseAndBTEAgreeOnReferences() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        for user in ["user-1", Self.userA, Self.userA.uppercased(), "Ünïcode ✓"] {
            let sql = try db.admin().execute(
                "SELECT privacy.person_ref($1::uuid, $2)", [Self.workspace, user]
            ).rows.first?[0]
            #expect(sql == PersonReference.of(UserKey(workspaceID: Self.workspace, userID: user)), "\(user)")
        }
    }
}

import BTEDomain
import BTEStore
import BTETestSupport
import Foundation
import Kafka
import Postgres
import Testing

/// A scratch PostgreSQL cluster started by `scripts/pg-cluster.sh`, stopped and removed on
/// `remove()`.
final class ScratchCluster: @unchecked Sendable {
    let directory: String
    let port: Int
    var url: String { "postgresql://postgres@127.0.0.1:\(port)" }

    init(directory: String, port: Int) {
        self.directory = directory
        self.port = port
    }

    /// Stops it if it runs (a test may have stopped it already).
    func stop() { _ = try? runScript("pg-cluster.sh", ["stop", directory, "immediate"], expectSuccess: false) }
}

/// Runs one of the project's scripts; expects exit 0 and returns what it printed. Spawned and
/// reaped directly, its output in a file: a server the script starts outlives it and keeps
/// whatever it inherited open.
@discardableResult
func runScript(_ name: String, _ arguments: [String], _ env: [String: String] = [:], expectSuccess: Bool = true)
    throws -> String
{
    let log = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("script-"))
    defer { try? FileManager.default.removeItem(at: log) }
    let script = TestEnvironment.packageRoot.appendingPathComponent("scripts/" + name).path
    var environment = ProcessInfo.processInfo.environment
    for (key, value) in env { environment[key] = value }
    let code = spawn(["/bin/bash", script] + arguments, output: log.path, environment: environment).map(waitForExit)
    guard let code else {
        Issue.record("scripts/\(name) could not be started")
        return ""
    }
    let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
    #expect(code == 0 || !expectSuccess, "scripts/\(name) \(arguments.joined(separator: " ")) exited \(code): \(text)")
    return text
}

/// The restore drill against real servers: a cluster archiving its WAL with pgBackRest is backed
/// up, keeps ingesting, erases and suppresses people, and is restored to a time T between the
/// two into a new cluster. The copy holds exactly what was committed at T (rows, ingest offsets);
/// the privacy ledger brings back the erasure and suppression it missed; ingest resumes from the
/// restored offsets and completes the logs from Kafka with nothing doubled (the same rows as the
/// original, byte for byte), and the projection rebuilt on the copy publishes the same records.
@Suite(.serialized) struct RestoreDrillTests {
    static let workspace = fixtureUUID(1, prefix: "d7d7d7d7")
    static let erased = fixtureUUID(1, prefix: "aaaa1111")
    static let suppressed = fixtureUUID(2, prefix: "aaaa1111")
    static let kept = fixtureUUID(3, prefix: "aaaa1111")
    static let late = fixtureUUID(4, prefix: "aaaa1111")

    /// Ingest's next offset per topic and partition.
    static func offsets(_ db: TestDatabase) throws -> [String] {
        try db.admin().execute(
            "SELECT topic || '/' || partition || '=' || next_offset FROM bte.ingest_offsets ORDER BY 1"
        ).rows.map { $0[0] ?? "" }
    }

    static func subjects(_ db: TestDatabase, _ user: String) throws -> Int {
        try db.count("SELECT count(*) FROM bte_keys.subjects WHERE user_id = '\(user)'")
    }

    @Test func aRestoreToATimeHoldsWhatWasCommittedThenAndCatchesUpWithNothingDoubled() throws {
        let root = "/var/tmp/" + TestEnvironment.uniqueName("bte-drill-")
        let primary = ScratchCluster(directory: root + "/primary", port: freePort())
        let restored = ScratchCluster(directory: root + "/restored", port: freePort())
        defer {
            primary.stop()
            restored.stop()
            try? FileManager.default.removeItem(atPath: root)
        }
        var backupEnv = [
            "BTE_BACKUP_DIR": root + "/backup", "BTE_BACKUP_PGDATA": primary.directory,
            "BTE_BACKUP_PGPORT": String(primary.port),
        ]
        try runScript("pg-cluster.sh", ["init", primary.directory])
        try runScript("backup.sh", ["configure", "--apply"], backupEnv)
        try runScript("pg-cluster.sh", ["start", primary.directory, String(primary.port)])
        try runScript("backup.sh", ["stanza"], backupEnv)

        let db = try TestDatabase(cluster: primary.url)
        backupEnv["BTE_BACKUP_DATABASE_URL"] = db.adminURL
        let topics = try TestTopics()
        try ReplayIdentityTests.createOutputTopics(topics)
        let prefix = topics.prefix
        func person(_ user: String, base: Int) -> [KafkaOutgoingMessage] {
            ErasureTests.events(prefix, workspace: Self.workspace, user: user, canary: "drill-\(base)", base: base)
        }
        let group = TestEnvironment.uniqueName("ingest-")
        // Each person sends 3 interactions, 1 business event and 1 action.
        try topics.produce(person(Self.erased, base: 10) + person(Self.kept, base: 20))
        #expect(
            try ingestUntilIdle(db, topics, group: group).stored == [
                .interactionEvents: 6, .businessEvents: 2, .userActions: 2,
            ])
        try runScript("backup.sh", ["full"], backupEnv)
        // The backup is on record, and the status says so with the archive's state.
        #expect(try db.count("SELECT count(*) FROM bte.backups WHERE backup_type = 'full'") == 1)
        let status = try BTEProcess(
            ["status", "--format", "json", "--topic-prefix", topics.prefix],
            environment: ["BTE_KAFKA_BROKERS": topics.brokers, "BTE_READER_DATABASE_URL": db.readerURL])
        _ = status.wait(timeout: 60)
        #expect(status.log.contains(#""last_backup_type":"full""#), "\(status.log)")
        #expect(status.log.contains(#""archiving":true"#), "\(status.log)")

        // After the backup, before T: the WAL archive alone carries these.
        try topics.produce(person(Self.suppressed, base: 30))
        _ = try ingestUntilIdle(db, topics, group: group)
        let countsAtT = try storedCounts(db)
        #expect(
            countsAtT == [.interactionEvents: 9, .businessEvents: 3, .userActions: 3, .intentEvents: 0, .chatEvents: 0])
        let offsetsAtT = try Self.offsets(db)
        let digestAtT = try contentDigest(db)
        Thread.sleep(forTimeInterval: 0.2)
        let target =
            try db.admin().execute(
                "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'"
            ).rows.first?[0] ?? ""
        Thread.sleep(forTimeInterval: 0.2)

        // After T: the person to be erased sends more, is erased; another is suppressed; a third
        // person's events and the suppressed person's new ones arrive.
        try topics.produce(person(Self.erased, base: 40))
        _ = try ingestUntilIdle(db, topics, group: group)
        let env = ["BTE_KAFKA_BROKERS": topics.brokers, "BTE_DATABASE_URL": db.adminURL]
        try runBTE(
            [
                "privacy", "erase", "--workspace", Self.workspace, Self.erased, "--by", "drill", "--reference",
                "drill-erase", "--topic-prefix", prefix,
            ], env)
        try runBTE(
            [
                "privacy", "suppress", "--workspace", Self.workspace, Self.suppressed, "--by", "drill",
                "--reference", "drill-suppress",
            ], env)
        try topics.produce(person(Self.late, base: 50) + person(Self.suppressed, base: 60))
        let afterT = try ingestUntilIdle(db, topics, group: group)
        #expect(afterT.stored == [.interactionEvents: 3, .businessEvents: 1, .userActions: 1])
        #expect(afterT.suppressed == [.interactionEvents: 3, .businessEvents: 1, .userActions: 1])
        let countsAtEnd = try storedCounts(db)
        #expect(
            countsAtEnd == [
                .interactionEvents: 15, .businessEvents: 5, .userActions: 5, .intentEvents: 0, .chatEvents: 0,
            ])
        let offsetsAtEnd = try Self.offsets(db)
        let digestAtEnd = try contentDigest(db)
        #expect(try Self.subjects(db, Self.erased) == 0)
        let ledgerFile = root + "/ledger.ndjson"
        try runBTE(["privacy", "ledger", "--output", ledgerFile, "--reader-database-url", db.readerURL], env)
        try runScript("backup.sh", ["check"], backupEnv)

        // Restore to T into a new cluster, archiving off.
        try runScript("backup.sh", ["restore", target, restored.directory], backupEnv)
        try runScript("pg-cluster.sh", ["start", restored.directory, String(restored.port)])
        try runScript("pg-cluster.sh", ["ready", String(restored.port)])
        let copy = try TestDatabase(cluster: restored.url, existing: db.name)
        // Exactly what was committed at T: rows (by content and coordinates), offsets; the
        // erasure after T is not there, so the erased person's subject is back.
        #expect(try storedCounts(copy) == countsAtT)
        #expect(try Self.offsets(copy) == offsetsAtT)
        #expect(try contentDigest(copy) == digestAtT)
        #expect(try Self.subjects(copy, Self.erased) == 1)
        #expect(try copy.count("SELECT count(*) FROM privacy.requests") == 0)

        let copyEnv = ["BTE_KAFKA_BROKERS": topics.brokers, "BTE_DATABASE_URL": copy.adminURL]
        let first = try runBTE(["privacy", "reapply", ledgerFile], copyEnv)
        #expect(
            first.contains(
                "reapplied 2 of 2 requests (0 held already): 1 user ids erased (1 subjects deleted), 1 suppressed, "
                    + "0 unsuppressed"), "\(first)")
        #expect(try Self.subjects(copy, Self.erased) == 0)

        // Ingest resumes from the restored offsets: the same rows as the original, none twice.
        // The erased person's events sent after T are stored again, under a new subject.
        let resumed = try ingestUntilIdle(copy, topics, group: group)
        #expect(resumed.stored == [.interactionEvents: 6, .businessEvents: 2, .userActions: 2], "\(resumed)")
        #expect(resumed.suppressed == [.interactionEvents: 3, .businessEvents: 1, .userActions: 1])
        #expect(try storedCounts(copy) == countsAtEnd)
        #expect(try Self.offsets(copy) == offsetsAtEnd)
        #expect(try contentDigest(copy) == digestAtEnd)
        #expect(try Self.subjects(copy, Self.erased) == 1)
        let second = try runBTE(["privacy", "reapply", "--caught-up", ledgerFile], copyEnv)
        #expect(
            second.contains(
                "reapplied 0 of 2 requests (2 held already): 1 user ids erased (1 subjects deleted), 0 suppressed, "
                    + "0 unsuppressed"), "\(second)")
        #expect(try Self.subjects(copy, Self.erased) == 0)
        // The same people are suppressed, by the same request; the requests carry their history.
        let suppressions = "SELECT string_agg(person_ref || ' ' || request_id, ',') FROM privacy.suppressions"
        #expect(try copy.admin().execute(suppressions).rows == db.admin().execute(suppressions).rows)
        let history =
            "SELECT string_agg(request_id || ' ' || coalesce(person_ref, '-') || ' ' || status, ',' ORDER BY seq) "
            + "FROM privacy.request_events WHERE NOT evidence ? 'reapplied_after_restore'"
        #expect(try copy.admin().execute(history).rows == db.admin().execute(history).rows)

        // The projection rebuilt on each cluster publishes the same records, byte for byte.
        let project = ["project", "--until-idle", "--topic-prefix", prefix, "--ingest-group", group]
        try runBTE(
            project + ["--group", TestEnvironment.uniqueName("projector-a-")],
            ["BTE_KAFKA_BROKERS": topics.brokers, "BTE_READER_DATABASE_URL": db.readerURL])
        let fromOriginal = try ReplayIdentityTests.published(topics)
        #expect(fromOriginal.keys.contains { $0.hasPrefix("bte.signals.v1 ") })
        try runBTE(
            project + ["--group", TestEnvironment.uniqueName("projector-b-")],
            ["BTE_KAFKA_BROKERS": topics.brokers, "BTE_READER_DATABASE_URL": copy.readerURL])
        let both = try ReplayIdentityTests.published(topics)
        #expect(Set(both.keys) == Set(fromOriginal.keys))
        let differing = both.filter { Set($0.value).count != 1 || $0.value.count != 2 }.keys.sorted()
        #expect(differing.isEmpty, "records not published identically by both: \(differing.prefix(5))")
    }
}

import BTEDomain
import BTEFixtures
import BTEIngest
import BTETestSupport
import Foundation
import Postgres
import Testing

/// Ingest as a separate process, so it can be killed or signalled like in production.
private func startIngest(_ db: TestDatabase, _ topics: TestTopics, group: String, untilIdle: Bool, batch: Int = 300)
    throws -> BTEProcess
{
    var arguments = [
        "ingest", "--brokers", topics.brokers, "--database-url", db.ingestURL, "--topic-prefix", topics.prefix,
        "--group", group, "--batch-size", String(batch), "--session-timeout-ms", "6000", "--summary",
    ]
    if untilIdle { arguments.append("--until-idle") }
    return try BTEProcess(arguments, environment: ["BTE_LOG_LEVEL": "info"])
}

private func storedTotal(_ db: TestDatabase) throws -> Int {
    try storedCounts(db).values.reduce(0, +)
}

@Suite(.serialized) struct FailureTests {
    /// kill -9 at several points of a long stream, restart each time: the result is identical
    /// to a run without crashes.
    @Test func killNineAndRestartChangesNothing() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let reference = try TestDatabase()
        defer { reference.drop() }
        let topics = try TestTopics()
        let stream = demoStream(topics, events: 20_000, seed: 21, badRounds: 2)
        try topics.produce(stream.messages)
        let group = TestEnvironment.uniqueName("crash-")

        var kills = 0
        for threshold in [2_000, 7_000, 12_000, 17_000] {
            let process = try startIngest(db, topics, group: group, untilIdle: false)
            let reached = try eventually(timeout: 90) { try storedTotal(db) >= threshold }
            #expect(reached, "stored count never reached \(threshold):\n\(process.log)")
            process.signal(SIGKILL)
            _ = process.wait(timeout: 10)
            #expect(process.terminationReason == .uncaughtSignal)
            kills += 1
        }
        let last = try startIngest(db, topics, group: group, untilIdle: true)
        let status = last.wait(timeout: 180)
        #expect(status == 0, "final run:\n\(last.log)")
        #expect(kills == 4)

        _ = try ingestUntilIdle(reference, topics, group: TestEnvironment.uniqueName("reference-"))
        #expect(try storedCounts(db) == stream.expectedStored)
        #expect(try rejectedCounts(db) == expectedCodes(stream))
        #expect(try contentDigest(db) == contentDigest(reference))
    }

    /// PostgreSQL restarted and the broker paused mid-stream: ingest pauses, retries, resumes,
    /// and the result is exact. SIGTERM then drains and exits 0.
    @Test func survivesPostgresRestartAndBrokerPause() throws {
        guard let pgDir = ProcessInfo.processInfo.environment["BTE_TEST_PG_DIR"],
            let pidFile = ProcessInfo.processInfo.environment["BTE_TEST_BROKER_PID_FILE"],
            let brokerPID = Int32(
                (try String(contentsOfFile: pidFile, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            Issue.record("BTE_TEST_PG_DIR / BTE_TEST_BROKER_PID_FILE not set: run with scripts/test.sh")
            return
        }
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let stream = demoStream(topics, events: 12_000, seed: 33, badRounds: 1)
        let half = stream.messages.count / 2
        try topics.produce(Array(stream.messages[..<half]))
        let process = try startIngest(
            db, topics, group: TestEnvironment.uniqueName("outage-"), untilIdle: false, batch: 200)
        defer { if process.process.isRunning { process.signal(SIGKILL) } }
        #expect(try eventually(timeout: 60) { try storedTotal(db) > 1_000 }, "\(process.log)")

        // PostgreSQL goes away under a running ingest and comes back.
        // postmaster.opts holds the command line the server was started with (port, socket dir).
        let startOptions =
            try String(contentsOfFile: pgDir + "/postmaster.opts", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ", maxSplits: 1).last.map(String.init)
            ?? ""
        #expect(runAsPostgres(["/usr/lib/postgresql/15/bin/pg_ctl", "-D", pgDir, "-m", "fast", "-w", "stop"]) == 0)
        Thread.sleep(forTimeInterval: 2)
        #expect(
            runAsPostgres([
                "/usr/lib/postgresql/15/bin/pg_ctl", "-D", pgDir, "-w", "-l", pgDir + "/log", "-o", startOptions,
                "start",
            ]) == 0)

        try topics.produce(Array(stream.messages[half...]))
        // The broker stops answering for a while.
        kill(brokerPID, SIGSTOP)
        defer { kill(brokerPID, SIGCONT) }
        Thread.sleep(forTimeInterval: 4)
        kill(brokerPID, SIGCONT)

        let complete = try eventually(timeout: 120) {
            try storedTotal(db) == stream.totalStored && (try rejectedCounts(db)) == expectedCodes(stream)
        }
        #expect(complete, "\(process.log)")
        process.signal(SIGTERM)
        #expect(process.wait(timeout: 30) == 0, "SIGTERM must drain and exit 0:\n\(process.log)")
        #expect(process.log.contains("pausing and retrying"), "ingest never saw the outage:\n\(process.log)")
        #expect(try storedCounts(db) == stream.expectedStored)
        #expect(try rejectedCounts(db) == expectedCodes(stream))
        // Offsets cover every message exactly.
        #expect(try db.count("SELECT sum(next_offset) FROM bte.ingest_offsets") == stream.total)
    }
}

/// Runs a command as the postgres user and waits for it. posix_spawn + waitpid rather than
/// Foundation.Process, whose exit monitoring can miss a child that leaves a daemon behind.
extension FailureTests {
    /// A missing privilege is infrastructure, not bad data: nothing is rejected, ingest waits,
    /// and once the grant is back everything is stored.
    @Test func missingPermissionPausesInsteadOfRejecting() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let stream = demoStream(topics, events: 1_500, seed: 44, badRounds: 0)
        try db.admin().execute("REVOKE INSERT ON core.interaction_events FROM bte_ingest")
        try topics.produce(stream.messages)
        let process = try startIngest(db, topics, group: TestEnvironment.uniqueName("perm-"), untilIdle: false)
        defer { if process.process.isRunning { process.signal(SIGKILL) } }
        #expect(eventually(timeout: 60) { process.log.contains("pausing and retrying") }, "\(process.log)")
        Thread.sleep(forTimeInterval: 1)
        #expect(try db.count("SELECT count(*) FROM bte.rejected_events") == 0)
        #expect(try db.count("SELECT count(*) FROM core.interaction_events") == 0)
        try db.admin().execute("GRANT INSERT ON core.interaction_events TO bte_ingest")
        #expect(try eventually(timeout: 60) { try storedTotal(db) == stream.totalStored }, "\(process.log)")
        process.signal(SIGTERM)
        #expect(process.wait(timeout: 30) == 0)
        #expect(try storedCounts(db) == stream.expectedStored)
        #expect(try db.count("SELECT count(*) FROM bte.rejected_events") == 0)
        #expect(process.log.contains("42501"))
    }
}

extension FailureTests {
    /// SIGTERM while PostgreSQL is down, then while the broker is paused: `bte ingest` exits 0
    /// within a few seconds each time, and a later run stores everything exactly once (nothing
    /// was committed past unwritten data).
    @Test func sigtermExitsPromptlyWhilePostgresIsDownOrTheBrokerPaused() throws {
        guard let pgDir = ProcessInfo.processInfo.environment["BTE_TEST_PG_DIR"],
            let pidFile = ProcessInfo.processInfo.environment["BTE_TEST_BROKER_PID_FILE"],
            let brokerPID = Int32(
                (try String(contentsOfFile: pidFile, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            Issue.record("BTE_TEST_PG_DIR / BTE_TEST_BROKER_PID_FILE not set: run with scripts/test.sh")
            return
        }
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let stream = demoStream(topics, events: 8_000, seed: 55, badRounds: 1)
        try topics.produce(stream.messages)
        let group = TestEnvironment.uniqueName("sigterm-")
        let startOptions =
            try String(contentsOfFile: pgDir + "/postmaster.opts", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ", maxSplits: 1).last.map(String.init)
            ?? ""

        // PostgreSQL down.
        let first = try startIngest(db, topics, group: group, untilIdle: false, batch: 200)
        defer { if first.process.isRunning { first.signal(SIGKILL) } }
        #expect(try eventually(timeout: 60) { try storedTotal(db) > 500 }, "\(first.log)")
        #expect(runAsPostgres(["/usr/lib/postgresql/15/bin/pg_ctl", "-D", pgDir, "-m", "fast", "-w", "stop"]) == 0)
        #expect(
            eventually(timeout: 30) {
                first.log.contains("pausing and retrying") || first.log.contains("PostgreSQL unavailable")
            }, "\(first.log)")
        let downAt = Date()
        first.signal(SIGTERM)
        let firstStatus = first.wait(timeout: 20)
        let firstSeconds = Date().timeIntervalSince(downAt)
        #expect(
            runAsPostgres([
                "/usr/lib/postgresql/15/bin/pg_ctl", "-D", pgDir, "-w", "-l", pgDir + "/log", "-o", startOptions,
                "start",
            ]) == 0)
        #expect(firstStatus == 0, "\(first.log)")
        #expect(firstSeconds < 8, "exit took \(firstSeconds) s")

        // The broker paused.
        let second = try startIngest(db, topics, group: group, untilIdle: false, batch: 200)
        defer { if second.process.isRunning { second.signal(SIGKILL) } }
        #expect(eventually(timeout: 60) { second.log.contains("partitions assigned") }, "\(second.log)")
        Thread.sleep(forTimeInterval: 1)
        kill(brokerPID, SIGSTOP)
        defer { kill(brokerPID, SIGCONT) }
        Thread.sleep(forTimeInterval: 2)
        let pausedAt = Date()
        second.signal(SIGTERM)
        let secondStatus = second.wait(timeout: 20)
        let secondSeconds = Date().timeIntervalSince(pausedAt)
        kill(brokerPID, SIGCONT)
        #expect(secondStatus == 0, "\(second.log)")
        #expect(secondSeconds < 8, "exit took \(secondSeconds) s")

        // Everything exactly once after a last run.
        let last = try startIngest(db, topics, group: group, untilIdle: true)
        #expect(last.wait(timeout: 180) == 0, "\(last.log)")
        #expect(try storedCounts(db) == stream.expectedStored)
        #expect(try rejectedCounts(db) == expectedCodes(stream))
        #expect(try db.count("SELECT sum(next_offset) FROM bte.ingest_offsets") == stream.total)
    }
}

func runAsPostgres(_ command: [String]) -> Int32 {
    guard let pid = spawn(["/usr/sbin/runuser", "-u", "postgres", "--"] + command, output: "/dev/null") else {
        return -1
    }
    return waitForExit(pid)
}

/// Starts `argv` (an absolute path first) with standard input from /dev/null and its output
/// appended to the file `output`: spawned directly, so a server it starts holds no end of the
/// test's pipes (Foundation.Process's exit monitoring can miss a child that leaves one behind).
func spawn(_ argv: [String], output: String, environment: [String: String]? = nil) -> pid_t? {
    let arguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    let variables: [UnsafeMutablePointer<CChar>?]? = environment.map {
        $0.map { strdup("\($0.key)=\($0.value)") } + [nil]
    }
    defer { for pointer in arguments + (variables ?? []) { free(pointer) } }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    var pid: pid_t = 0
    let started =
        variables.map { posix_spawn(&pid, argv[0], &actions, nil, arguments, $0) }
        ?? posix_spawn(&pid, argv[0], &actions, nil, arguments, environ)
    return started == 0 ? pid : nil
}

/// Waits for a spawned child; its exit status.
func waitForExit(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    return (status >> 8) & 0xff
}

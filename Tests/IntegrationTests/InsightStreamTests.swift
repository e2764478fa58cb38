import BTEDomain
import BTETestSupport
import Foundation
import Postgres
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// An HTTP/1.1 client of one streamed response: everything received is kept, and `read` answers
/// the head and the body so far with the chunk framing removed.
final class StreamClient {
    let raw: RawClient
    private var received: [UInt8] = []

    init(port: Int, request: String) throws {
        raw = try RawClient(port: port)
        raw.send(request)
    }

    /// The head, then the body so far without the chunk framing (sizes in hex, CR LF after each).
    var text: String {
        let crlf: [UInt8] = [13, 10]
        func find(_ pattern: [UInt8], from start: Int) -> Int? {
            guard received.count >= pattern.count, start <= received.count - pattern.count else { return nil }
            return (start...(received.count - pattern.count)).first {
                Array(received[$0..<$0 + pattern.count]) == pattern
            }
        }
        guard let headEnd = find(crlf + crlf, from: 0) else { return String(decoding: received, as: UTF8.self) }
        var out = Array(received[..<(headEnd + 4)])
        var at = headEnd + 4
        while let line = find(crlf, from: at),
            let size = Int(String(decoding: received[at..<line], as: UTF8.self), radix: 16)
        {
            let start = line + 2
            let end = min(start + size, received.count)
            out += received[start..<end]
            if end < start + size { break }
            at = end + 2
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The response is over: its last chunk, of size 0, came.
    var ended: Bool { Array(received.suffix(5)) == [0x30, 13, 10, 13, 10] }

    /// Reads without looking at the whole (large streams): until the newest bytes hold `needle`,
    /// the response ends, or `timeout` passes.
    func drain(until needle: String? = nil, timeout: TimeInterval) {
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while Date() < deadline, !ended {
            var descriptor = pollfd(fd: raw.fd, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 100) > 0 else { continue }
            let count = recv(raw.fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            received += buffer[0..<count]
            if let needle, String(decoding: received.suffix(count + needle.utf8.count), as: UTF8.self).contains(needle)
            {
                break
            }
        }
    }

    /// Waits until the response so far holds `needle` or `timeout` passes; returns it.
    func read(until needle: String, timeout: TimeInterval) -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline, !text.contains(needle) {
            var descriptor = pollfd(fd: raw.fd, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 100) > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(raw.fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            received += buffer[0..<count]
        }
        return text
    }
}

/// `GET /v1/users/{user_id}/insights/stream`: Server-Sent Events of a user's delivered insights,
/// the key's workspace only, resumed exactly by `Last-Event-ID`, and never cut by the limits that
/// bound requests (the response is the server's).
@Suite(.serialized) struct InsightStreamTests {
    static let user = "aaaaaaaa-0000-4000-8000-0000000000f1"

    @Test func aStreamSendsTheUsersDeliveriesAndResumesAfterTheLastEventID() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let readA = try APITests.createKey(db, scope: "read", rate: 10_000)
        let readB = try APITests.createKey(db, scope: "read", rate: 10_000, workspace: APITests.other)
        let admin = try db.admin()
        let port = freePort()
        func store(
            _ n: Int, _ workspace: String, _ outcome: String, record: String? = nil,
            decided: String = "2026-03-20T00:00:00Z"
        ) throws {
            try admin.execute(
                """
                INSERT INTO bte.insight_deliveries
                    (id, workspace_id, user_id, insight_type, outcome, decided_at, thresholds_version, record)
                VALUES ($1::uuid, $2::uuid, $3, 'deal_stalled', $4, $5::timestamptz, 2, $6)
                """,
                [fixtureUUID(n, prefix: "d0d0d0d0"), workspace, Self.user, outcome, decided, record ?? #"{"n":\#(n)}"#])
        }
        func event(_ n: Int) -> String {
            "id: \(fixtureUUID(n, prefix: "d0d0d0d0"))\nevent: insight\ndata: {\"n\":\(n)}\n\n"
        }
        func open(_ key: String?, lastEventID: Int? = nil) throws -> StreamClient {
            try StreamClient(
                port: port,
                request: "GET /v1/users/\(Self.user)/insights/stream HTTP/1.1\r\nHost: x\r\n"
                    + (key.map { "Authorization: Bearer \($0)\r\n" } ?? "")
                    + (lastEventID.map { "Last-Event-ID: \(fixtureUUID($0, prefix: "d0d0d0d0"))\r\n" } ?? "") + "\r\n")
        }

        try store(1, APITests.workspace, "delivered")
        // Read timeout 2 s, request deadline 3 s: a stream outlives both.
        let server = try APITests.serve(
            db, topics, port: port, extra: ["--read-timeout", "2", "--request-timeout", "3"])
        defer { server.signal(SIGKILL) }

        // A new stream starts after the user's newest stored delivery (1 is history: the
        // pending endpoint has it).
        let live = try open(readA)
        let head = live.read(until: "retry: 2000\n\n", timeout: 10)
        #expect(head.hasPrefix("HTTP/1.1 200"), "\(head)")
        #expect(head.lowercased().contains("content-type: text/event-stream"), "\(head)")
        Thread.sleep(forTimeInterval: 4)
        // Delivered to the user (2, 5); suppressed (3) and another workspace's namesake (4) are not sent.
        try store(2, APITests.workspace, "delivered")
        try store(3, APITests.workspace, "suppressed")
        try store(4, APITests.other, "delivered")
        try store(5, APITests.workspace, "delivered")
        let sent = live.read(until: event(5), timeout: 10)
        #expect(sent.hasSuffix(event(2) + event(5)), "\(sent)")
        #expect(!sent.contains(event(1)) && !sent.contains("\"n\":3") && !sent.contains("\"n\":4"), "\(sent)")

        // Resumed after 2: exactly 5, once.
        let resumed = try open(readA, lastEventID: 2)
        let again = resumed.read(until: event(5), timeout: 10)
        #expect(again.hasSuffix("retry: 2000\n\n" + event(5)), "\(again)")
        // After 5 nothing is pending until 6 is stored.
        let caughtUp = try open(readA, lastEventID: 5)
        _ = caughtUp.read(until: "retry: 2000\n\n", timeout: 10)
        try store(6, APITests.workspace, "delivered")
        #expect(caughtUp.read(until: event(6), timeout: 10).hasSuffix(event(6)))
        // The first stream is still open and got 6 too.
        #expect(live.read(until: event(6), timeout: 10).hasSuffix(event(6)))
        // An interrupt decided 10 minutes or more ago is stale and not sent; a fresh one is.
        let fresh = Timestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000)).rfc3339
        try store(7, APITests.workspace, "delivered", record: #"{"n":7,"mode":"interrupt"}"#)
        try store(8, APITests.workspace, "delivered", record: #"{"n":8,"mode":"interrupt"}"#, decided: fresh)
        let interrupts = caughtUp.read(until: "\"n\":8", timeout: 10)
        #expect(
            interrupts.hasSuffix(
                event(6) + "id: \(fixtureUUID(8, prefix: "d0d0d0d0"))\nevent: insight\n"
                    + "data: {\"n\":8,\"mode\":\"interrupt\"}\n\n"), "\(interrupts)")

        // Another workspace's key: its own user only; an id of workspace A's resumes nothing of A's.
        let other = try open(readB, lastEventID: 2)
        let theirs = other.read(until: "never", timeout: 2)
        #expect(theirs.hasSuffix("retry: 2000\n\n") && !theirs.contains("\"n\""), "\(theirs)")
        // Without a key: 401, an error in JSON, not a stream.
        let anonymous = try open(nil).read(until: "}}", timeout: 5)
        #expect(anonymous.hasPrefix("HTTP/1.1 401"), "\(anonymous)")
    }
}

/// The streams of a server share one reader of new deliveries: it never passes a row stored by a
/// transaction that ended after a later one (two sink members), nor does a slow client hold
/// more than its bounded buffer.
@Suite(.serialized) struct InsightFeedTests {
    static let workspace = APITests.workspace

    static func insert(_ connection: PostgresConnection, _ n: Int, user: String, pad: Int = 0) throws {
        try connection.execute(
            """
            INSERT INTO bte.insight_deliveries
                (id, workspace_id, user_id, insight_type, outcome, decided_at, thresholds_version, record)
            VALUES ($1::uuid, $2::uuid, $3, 'deal_stalled', 'delivered', '2026-03-20T00:00:00Z', 2, $4)
            """, [fixtureUUID(n, prefix: "d2d2d2d2"), workspace, user, #"{"n":\#(n)}"#])
    }

    static func open(_ port: Int, _ key: String, user: String, after: Int? = nil) throws -> StreamClient {
        try StreamClient(
            port: port,
            request: "GET /v1/users/\(user)/insights/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\n"
                + (after.map { "Last-Event-ID: \(fixtureUUID($0, prefix: "d2d2d2d2"))\r\n" } ?? "") + "\r\n")
    }

    static func event(_ n: Int) -> String {
        "id: \(fixtureUUID(n, prefix: "d2d2d2d2"))\nevent: insight\ndata: {\"n\":\(n)}\n\n"
    }

    @Test func aRowCommittedAfterALaterSeqIsStreamedAndStreamsShareOneReader() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let read = try APITests.createKey(db, scope: "read", rate: 10_000)
        let port = freePort()
        let server = try APITests.serve(db, topics, port: port)
        defer { server.signal(SIGKILL) }
        let a = try Self.open(port, read, user: "user-a")
        let b = try Self.open(port, read, user: "user-b")
        for client in [a, b] { _ = client.read(until: "retry: 2000\n\n", timeout: 10) }

        // Two writers: the first takes seq 1 for user-a and commits after the second stored
        // seq 2 for user-b and the feed read it. user-a's row must still come.
        let slow = try db.admin()
        let fast = try db.admin()
        try slow.execute("BEGIN")
        try Self.insert(slow, 1, user: "user-a")
        try Self.insert(fast, 2, user: "user-b")
        #expect(b.read(until: Self.event(2), timeout: 10).hasSuffix(Self.event(2)))
        Thread.sleep(forTimeInterval: 0.5)
        try slow.execute("COMMIT")
        #expect(a.read(until: Self.event(1), timeout: 10).hasSuffix("retry: 2000\n\n" + Self.event(1)))

        // Forty more streams for 3 s: the database sees one reader polling every 100 ms
        // (about 30 transactions), not one per stream (40 × 30 = 1,200 at the same pace).
        let more = try (0..<40).map { try Self.open(port, read, user: "user-\($0)") }
        for client in more { _ = client.read(until: "retry: 2000\n\n", timeout: 10) }
        let transactions =
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '\(db.name)'"
        let admin = try db.admin()
        Thread.sleep(forTimeInterval: 1.5)  // the statistics are flushed within a second
        let before = try db.count(transactions)
        Thread.sleep(forTimeInterval: 3)
        try admin.execute("SELECT pg_stat_clear_snapshot()")
        let during = try db.count(transactions) - before
        #expect(during < 200, "\(during) transactions in 3 s with 42 streams")
        let metrics = httpGet(port: port, path: "/metrics")?.body ?? ""
        #expect(metrics.contains("bte_insight_streams_open 42"), "\(metrics.prefix(2_000))")
    }

    @Test func aClientThatFallsBehindIsEndedWithoutSlowingOthersAndResumesExactly() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let read = try APITests.createKey(db, scope: "read", rate: 10_000)
        let port = freePort()
        let server = try APITests.serve(db, topics, port: port)
        defer { server.signal(SIGKILL) }
        let stalled = try Self.open(port, read, user: "stalled")
        let other = try Self.open(port, read, user: "other")
        for client in [stalled, other] { _ = client.read(until: "retry: 2000\n\n", timeout: 10) }

        // 2,000 deliveries of 16 KiB (32 MiB, beyond what the sockets hold) to a client that
        // reads nothing: its stream holds at most 256 of them, then is ended.
        let admin = try db.admin()
        try admin.execute(
            """
            INSERT INTO bte.insight_deliveries
                (id, workspace_id, user_id, insight_type, outcome, decided_at, thresholds_version, record)
            SELECT ('d3d3d3d3-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, $1::uuid, 'stalled',
                'deal_stalled', 'delivered', '2026-03-20T00:00:00Z', 2,
                '{"n":' || n || ',"pad":"' || repeat('x', 16384) || '"}'
            FROM generate_series(1, 2000) AS n
            """, [Self.workspace])
        // Another user's delivery comes at once all the same.
        try Self.insert(admin, 1, user: "other")
        #expect(other.read(until: Self.event(1), timeout: 5).hasSuffix(Self.event(1)))
        let overflowed = eventually(timeout: 30) {
            (httpGet(port: port, path: "/metrics")?.body ?? "").contains("bte_insight_stream_overflows_total 1")
        }
        #expect(overflowed)

        // The stalled client reads on: a first part of its deliveries, in order, then the end.
        stalled.drain(timeout: 60)
        #expect(stalled.ended)
        let ids = stalled.text.split(separator: "\n").filter { $0.hasPrefix("id: ") }.map { String($0.dropFirst(4)) }
        let expected = (1...2000).map {
            "d3d3d3d3-0000-4000-8000-" + String(repeating: "0", count: 12 - String($0).count) + String($0)
        }
        #expect(!ids.isEmpty && ids.count < 2000 && ids == Array(expected.prefix(ids.count)), "\(ids.count) received")

        // It resumes after the last one it got: the rest, each once.
        let resumed = try StreamClient(
            port: port,
            request: "GET /v1/users/stalled/insights/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(read)\r\n"
                + "Last-Event-ID: \(ids.last ?? "")\r\n\r\n")
        resumed.drain(until: "\"n\":2000,", timeout: 60)
        let rest = resumed.text.split(separator: "\n").filter { $0.hasPrefix("id: ") }.map { String($0.dropFirst(4)) }
        #expect(rest == Array(expected.dropFirst(ids.count)), "\(rest.count) resumed")
    }
}

/// `bte insights deliveries`: what became of the in-context deliveries, from the stored
/// decisions and the feedback that names them.
@Suite(.serialized) struct InsightDeliveryStatsTests {
    @Test func ratesAndWowMomentsFromDecisionsAndTheirFeedback() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let admin = try db.admin()
        let a = APITests.workspace
        let hourAgo = Timestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000) - 3_600_000_000).rfc3339
        func delivery(_ n: Int, _ workspace: String, _ user: Int, _ type: String, _ outcome: String, _ reason: String)
            throws
        {
            try admin.execute(
                """
                INSERT INTO bte.insight_deliveries
                    (id, workspace_id, user_id, insight_type, outcome, decided_at, thresholds_version, record)
                VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6::timestamptz, 2, $7)
                """,
                [
                    fixtureUUID(n, prefix: "d1d1d1d1"), workspace, "u\(user)", type, outcome, hourAgo,
                    #"{"reason":"\#(reason)"}"#,
                ])
        }
        var offset = 0
        func feedback(_ n: Int?, _ workspace: String, _ verdict: String) throws {
            offset += 1
            let metadata =
                n.map { #"{"verdict":"\#(verdict)","delivery_id":"\#(fixtureUUID($0, prefix: "d1d1d1d1"))"}"# }
                ?? #"{"verdict":"\#(verdict)"}"#
            try admin.execute(
                """
                INSERT INTO core.business_events (event_id, event_type, entity_type, entity_id, workspace_id,
                    sub_vertical_id, actor_user_id, timestamp, metadata, content_hash, source_topic, source_partition,
                    source_offset)
                VALUES (gen_random_uuid(), 'insight.feedback', 'insight', gen_random_uuid(), $1, $1,
                    gen_random_uuid(), $2::timestamptz, $3::jsonb, 0, 't', 0, $4)
                """, [workspace, hourAgo, metadata, String(offset)])
        }
        // Workspace A: deal_stalled delivered to u1 (1) and u2 (2), next_best_action to u1 (3),
        // two deal_stalled suppressed (spacing, seen), one held out. Another workspace's delivery (7).
        try delivery(1, a, 1, "deal_stalled", "delivered", "at_once")
        try delivery(2, a, 2, "deal_stalled", "delivered", "breakpoint")
        try delivery(3, a, 1, "next_best_action", "delivered", "at_once")
        try delivery(4, a, 1, "deal_stalled", "suppressed", "spacing")
        try delivery(5, a, 2, "deal_stalled", "suppressed", "seen")
        try delivery(6, a, 3, "deal_stalled", "control", "holdout")
        try delivery(7, APITests.other, 1, "deal_stalled", "delivered", "at_once")
        // 1: shown, opened, useful (twice: counted once). 2: shown, dismissed. 3: shown, acted.
        // Feedback without a delivery, and on the other workspace's delivery, don't count for A.
        for (n, verdict) in [
            (1, "impression"), (1, "clicked"), (1, "useful"), (1, "useful"), (2, "impression"), (2, "dismissed"),
            (3, "impression"), (3, "acted"),
        ] {
            try feedback(n, a, verdict)
        }
        try feedback(nil, a, "useful")
        try feedback(7, APITests.other, "useful")

        let process = try BTEProcess([
            "insights", "deliveries", "--since", "7d", "--workspace", a, "--reader-database-url", db.readerURL,
        ])
        #expect(process.wait(timeout: 60) == 0, "\(process.log)")
        let line = process.log.split(separator: "\n").first { $0.hasPrefix("{") }.map(String.init) ?? ""
        let json = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
        // Users delivered to: u1, u2. Wow moments: 1 (useful) and 3 (acted) = 2; over 7 days,
        // one week: 2 ÷ 2 users ÷ 1 week = 1.
        #expect(json["users"] as? Int == 2 && json["wow_moments"] as? Int == 2)
        #expect(json["wow_moments_per_user_week"] as? Double == 1)
        let types = try #require(json["insight_types"] as? [[String: Any]])
        func type(_ name: String) -> [String: Any] { types.first { $0["insight_type"] as? String == name } ?? [:] }
        let stalled = type("deal_stalled")
        // deal_stalled: 2 delivered, 1 control, 2 suppressed; 2 impressions, 1 click, 1 useful,
        // 1 dismissed: impression 2/2, click 1/2, action 0/2, positive 1/1, dismiss 1/2.
        #expect(
            [
                "delivered", "control", "suppressed", "impressions", "clicks", "acted", "useful", "not_useful",
                "dismissed",
            ].map { stalled[$0] as? Int } == [2, 1, 2, 2, 1, 0, 1, 0, 1], "\(stalled)")
        #expect(
            ["impression_rate", "click_rate", "action_rate", "positive_rate", "dismiss_rate"].map {
                stalled[$0] as? Double
            } == [1, 0.5, 0, 1, 0.5], "\(stalled)")
        // next_best_action: 1 delivered, shown and acted: action 1/1; no opinion: positive null.
        let next = type("next_best_action")
        #expect(next["delivered"] as? Int == 1 && next["acted"] as? Int == 1 && next["action_rate"] as? Double == 1)
        #expect(next["positive_rate"] is NSNull)
        #expect(
            type("repeat_customer")["delivered"] as? Int == 0 && type("repeat_customer")["impression_rate"] is NSNull)
        let suppressions = try #require(json["suppressions"] as? [[String: Any]])
        #expect(suppressions.map { "\($0["reason"] ?? "") \($0["count"] ?? "")" } == ["seen 1", "spacing 1"])
    }
}

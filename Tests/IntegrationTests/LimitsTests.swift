import BTETestSupport
import Foundation
import Testing

@testable import BTEAPI

#if canImport(Glibc)
    import Glibc
#endif

/// Every caller's work is bounded: connections, the time a request may take to arrive, failed
/// authentications per address, the sign-in body; the dashboard shows a workspace's admin that
/// workspace only.
@Suite(.serialized) struct LimitsTests {
    static func serve(_ db: TestDatabase, _ topics: TestTopics, _ extra: [String]) throws -> (BTEProcess, Int) {
        let port = freePort()
        let server = try BTEProcess(
            [
                "serve", "--port", String(port), "--brokers", topics.brokers, "--reader-database-url", db.readerURL,
                "--topic-prefix", topics.prefix,
            ] + extra)
        #expect(eventually(timeout: 30) { httpGet(port: port, path: "/healthz")?.status == 200 }, "\(server.log)")
        return (server, port)
    }

    /// A body trickled to an endpoint that never reads it (Hummingbird drains it, and each byte
    /// resets the idle timer) is cut off at the request deadline; connections past the cap are
    /// closed at once, and served again once others closed.
    @Test func slowBodiesAndConnectionFloodsAreBounded() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let (server, port) = try Self.serve(
            db, topics, ["--read-timeout", "2", "--request-timeout", "3", "--max-connections", "3"])
        defer { server.signal(SIGKILL) }

        let trickle = try RawClient(port: port)
        trickle.send("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        let started = Date()
        var closed = false
        for _ in 0..<12 {
            guard trickle.send("x") else {
                closed = true
                break
            }
            if trickle.readUntilClosed(timeout: 1).closed {
                closed = true
                break
            }
        }
        // Closed at the 3 s deadline, far before the 100 bytes (100 s) were sent.
        #expect(closed)
        #expect(Date().timeIntervalSince(started) < 8, "\(Date().timeIntervalSince(started))")

        // Three idle connections fill the cap; a fourth is closed without an answer.
        let held = try (0..<3).map { _ in try RawClient(port: port) }
        usleep(200_000)
        let refused = try RawClient(port: port)
        refused.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        let answer = refused.readUntilClosed(timeout: 2)
        #expect(answer.closed && answer.text.isEmpty, "\(answer)")
        withExtendedLifetime(held) {}
        // The held ones time out (2 s of silence); then connections are served again.
        #expect(eventually(timeout: 10) { httpGet(port: port, path: "/healthz")?.status == 200 })
    }

    /// Unknown keys from one address: 20 are answered 401 (the burst), then 429 with
    /// Retry-After and no lookup; a valid key stays usable.
    @Test func failedAuthenticationsAreLimitedPerAddress() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let read = try APITests.createKey(db, scope: "read", rate: 10_000)
        let (server, port) = try Self.serve(db, topics, [])
        defer { server.signal(SIGKILL) }
        let path = "/v1/workspaces/\(APITests.workspace)/signals"
        var statuses: [Int] = []
        for n in 0..<25 { statuses.append(ReadAPITests.get(port, path, key: "bte_unknown_\(n)").status) }
        #expect(statuses == Array(repeating: 401, count: 20) + Array(repeating: 429, count: 5), "\(statuses)")
        let throttled = ReadAPITests.get(port, path, key: "bte_unknown_x")
        #expect(throttled.headers["retry-after"] != nil, "\(throttled)")
        #expect(throttled.body.contains("too_many_failed_authentications"))
        // Tokens come back at 5 a second: within a second a valid key is looked up again.
        #expect(eventually(timeout: 5) { ReadAPITests.get(port, path, key: read).status == 200 })
    }

    /// Unknown tokens are remembered apart: ten thousand of them never evict a valid key.
    @Test func unknownTokensNeverEvictValidKeys() async throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let token = try APITests.createKey(db, scope: "read", rate: 10)
        let keys = KeyDirectory(readerURL: db.readerURL, ttl: .seconds(600))
        let valid = ApiKeyHash.sha256(token)
        #expect(try await keys.key(sha256: valid) != nil)
        for n in 0..<(KeyDirectory.unknownCapacity + 50) {
            var hash = [UInt8](repeating: 0, count: 32)
            withUnsafeBytes(of: UInt64(n + 1).bigEndian) { hash.replaceSubrange(0..<8, with: $0) }
            _ = try await keys.key(sha256: hash)
        }
        guard case .key(let cached?) = keys.cached(sha256: valid) else {
            Issue.record("the valid key was evicted")
            return
        }
        #expect(cached.sha256 == valid)
    }

    /// The sign-in form: a small body, from this server's own page; the cookie is Secure behind
    /// TLS. An admin's page shows its workspace only; the pipeline is an operator's.
    @Test func signInAndTheDashboardAreScoped() throws {
        let f = try ReadAPITests.fixture()
        defer {
            f.server.signal(SIGKILL)
            f.db.drop()
        }
        let form = ["Content-Type": "application/x-www-form-urlencoded"]
        func signIn(_ body: String, _ headers: [String: String]) -> (
            status: Int, headers: [String: String], body: String
        ) {
            httpRequest(
                port: f.port, method: "POST", path: "/dashboard", headers: form.merging(headers) { $1 },
                body: Array(body.utf8), timeout: 30) ?? (0, [:], "")
        }
        let large = signIn("key=" + String(repeating: "a", count: 5_000), [:])
        #expect(large.status == 413, "\(large)")
        let foreign = signIn("key=\(f.admin)", ["Origin": "https://evil.example"])
        #expect(foreign.status == 403 && foreign.body.contains("cross_origin"), "\(foreign)")
        // The test client names the host without a port, as its Host header.
        let own = signIn("key=\(f.admin)", ["Origin": "http://127.0.0.1"])
        #expect(own.status == 303, "\(own)")
        #expect(own.headers["set-cookie"]?.contains("Secure") == false)
        let proxied = signIn("key=\(f.admin)", ["X-Forwarded-Proto": "https"])
        #expect(proxied.headers["set-cookie"]?.contains("; Secure;") == true, "\(proxied)")

        let admin = ReadAPITests.get(f.port, "/dashboard", key: f.admin)
        #expect(admin.status == 200)
        #expect(admin.body.contains("id=\"pipeline-note\""))
        #expect(!admin.body.contains("id=\"lag\"") && !admin.body.contains("id=\"rejects\""))
        #expect(admin.body.contains("ingest rate of this workspace"))
        let operatorKey = try APITests.createKey(f.db, scope: "operator", rate: 100)
        let pipeline = ReadAPITests.get(f.port, "/dashboard", key: operatorKey)
        #expect(pipeline.status == 200)
        #expect(pipeline.body.contains("id=\"lag\"") && pipeline.body.contains("data-group=\"bte-ingest\""))
        #expect(pipeline.body.contains("ingest rate of all workspaces"))
        // An operator key is for the dashboard only.
        #expect(
            ReadAPITests.get(f.port, "/v1/workspaces/\(APITests.workspace)/signals", key: operatorKey).status == 403)
    }
}

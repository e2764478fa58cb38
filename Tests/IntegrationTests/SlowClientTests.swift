import BTETestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A raw TCP client, to behave as a slow or stalled HTTP client does.
final class RawClient {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
    }

    deinit { close(fd) }

    @discardableResult
    func send(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return Glibc.send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count
    }

    /// What the server sends until it closes the connection or `timeout` passes; `closed` tells.
    func readUntilClosed(timeout: TimeInterval) -> (text: String, closed: Bool) {
        var received: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 100) > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { return (String(decoding: received, as: UTF8.self), true) }
            received += buffer[0..<count]
        }
        return (String(decoding: received, as: UTF8.self), false)
    }
}

/// Slow and stalled clients can't hold `bte serve`'s connections: an unfinished head or body
/// is closed after the read timeout, a body dribbled in too slowly gets 408, and other requests
/// are served meanwhile.
@Suite(.serialized) struct SlowClientTests {
    @Test func stalledAndDribblingClientsAreCutOff() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let key = try APITests.createKey(db, scope: "write", rate: 1_000)
        let port = freePort()
        // Read timeout 2 s: a body must be whole within 3 × 2 = 6 s.
        let server = try BTEProcess([
            "serve", "--port", String(port), "--brokers", topics.brokers, "--reader-database-url", db.readerURL,
            "--topic-prefix", topics.prefix, "--read-timeout", "2",
        ])
        defer { server.signal(SIGKILL) }
        #expect(eventually(timeout: 30) { httpGet(port: port, path: "/healthz")?.status == 200 }, "\(server.log)")

        // A head never finished, and a body stalled after 10 of 100 bytes.
        let head = try RawClient(port: port)
        head.send("POST /v1/events HTTP/1.1\r\nHost: x\r\n")
        let body = try RawClient(port: port)
        body.send(
            "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\n"
                + "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"events\":")
        let started = Date()
        // Meanwhile the server answers others at once.
        let other = httpGet(port: port, path: "/healthz")
        #expect(other?.status == 200)
        #expect(Date().timeIntervalSince(started) < 1.5)
        let headEnd = head.readUntilClosed(timeout: 10)
        let bodyEnd = body.readUntilClosed(timeout: 10)
        let waited = Date().timeIntervalSince(started)
        #expect(headEnd.closed && bodyEnd.closed, "\(headEnd) \(bodyEnd)")
        #expect(!bodyEnd.text.contains("200 OK"))
        // Closed after about 2 s of silence (well before 10).
        #expect(waited >= 1.5 && waited < 8, "\(waited)")

        // A body sent one byte a second never goes silent for 2 s, but is not whole within 6 s: 408.
        let dribble = try RawClient(port: port)
        dribble.send(
            "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\n"
                + "Content-Type: application/json\r\nContent-Length: 40\r\n\r\n")
        var reply = ""
        for _ in 0..<15 {
            guard dribble.send(" ") else { break }
            let part = dribble.readUntilClosed(timeout: 1)
            reply += part.text
            if part.closed || reply.contains("\r\n\r\n{") { break }
        }
        #expect(reply.hasPrefix("HTTP/1.1 408"), "\(reply)")
        #expect(reply.contains(#"{"error":{"code":"request_timeout","#))
    }
}

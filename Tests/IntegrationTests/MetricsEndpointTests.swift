import BTETestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP client of the metrics endpoint, in the ways real clients misbehave.
private struct Client {
    let fd: Int32

    init?(port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(port.bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            Glibc.close(fd)
            return nil
        }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        self.fd = fd
    }

    func send(_ text: String) {
        _ = text.utf8CString.withUnsafeBufferPointer {
            Glibc.send(fd, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL))
        }
    }

    /// Everything the server sends until it closes (or 5 s pass).
    func readAll() -> String {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            data += buffer[0..<n]
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Closes with a reset instead of a graceful close.
    func reset() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        Glibc.close(fd)
    }

    func close() { Glibc.close(fd) }
}

@Suite(.serialized) struct MetricsEndpointTests {
    @Test func aPortOutOfRangeIsAUsageError() throws {
        let process = try BTEProcess([
            "ingest", "--brokers", "127.0.0.1:1", "--database-url", "postgresql://nobody@127.0.0.1:1/x",
            "--metrics-port", "70000",
        ])
        #expect(process.wait(timeout: 30) == 1)
        #expect(process.terminationReason == .exit)
        #expect(process.log == "bte: error: bte_usage: metrics: port 70000 is outside 0...65535\n")
    }

    /// An idle client doesn't hold the endpoint, and clients that reset the connection don't
    /// kill the process.
    @Test func idleAndResettingClientsDoNotStopScrapes() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let port = UInt16.random(in: 40_000...49_999)
        let process = try BTEProcess(
            [
                "ingest", "--brokers", topics.brokers, "--database-url", db.ingestURL, "--topic-prefix", topics.prefix,
                "--group", TestEnvironment.uniqueName("metrics-"), "--session-timeout-ms", "6000", "--metrics-port",
                String(port),
            ],
            environment: ["BTE_LOG_LEVEL": "info"])
        defer { if process.process.isRunning { process.signal(SIGKILL) } }
        // The line is logged once the endpoint's socket is bound.
        #expect(eventually(timeout: 30) { process.log.contains("metrics on http://") }, "\(process.log)")

        let idle = try #require(Client(port: port))
        defer { idle.close() }
        let scrape = try #require(Client(port: port))
        scrape.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        let answer = scrape.readAll()
        scrape.close()
        #expect(answer.hasPrefix("HTTP/1.1 200 OK"), "scrape behind an idle client: \(answer.prefix(200))")

        for _ in 0..<20 {
            guard let rude = Client(port: port) else { continue }
            rude.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            rude.reset()
        }
        Thread.sleep(forTimeInterval: 0.5)
        #expect(process.process.isRunning, "\(process.log)")
        let after = try #require(Client(port: port))
        after.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(after.readAll().hasPrefix("HTTP/1.1 200 OK"))
        after.close()
        process.signal(SIGTERM)
        #expect(process.wait(timeout: 30) == 0, "\(process.log)")
    }
}

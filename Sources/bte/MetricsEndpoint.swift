import Foundation
import Metrics
import Prometheus
#if canImport(Glibc)
import Glibc
#endif

/// Serves the Prometheus text format on `GET /metrics` (any path answers) from one thread.
/// Deliberately tiny: scrapes are rare and small, so no HTTP framework is needed here.
final class MetricsEndpoint: @unchecked Sendable {
    let registry = PrometheusCollectorRegistry()
    private let socketFD: Int32

    /// Binds 127.0.0.1:`port` unless `host` says otherwise; port 0 disables nothing (any port).
    init(host: String, port: Int) throws {
        guard let port = UInt16(exactly: port) else { throw CLIError("metrics: port \(port) is outside 0...65535") }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CLIError("metrics: socket() failed: errno \(errno)") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(port.bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            close(fd)
            throw CLIError("metrics: \(host) is not an IPv4 address")
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let code = errno
            close(fd)
            throw CLIError("metrics: cannot listen on \(host):\(port) (errno \(code))")
        }
        socketFD = fd
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    func serveInBackground() {
        let thread = Thread { [self] in
            while true {
                let client = accept(socketFD, nil, nil)
                if client < 0 { continue }
                // One thread serves every scrape: a client that sends nothing, or stops reading,
                // may hold it for a second at most.
                var timeout = timeval(tv_sec: 1, tv_usec: 0)
                setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                var request = [UInt8](repeating: 0, count: 4096)
                _ = read(client, &request, request.count)
                let body = registry.emitToBuffer()
                var response = Array("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8)
                response += body
                response.withUnsafeBytes { raw in
                    var offset = 0
                    while offset < raw.count, let base = raw.baseAddress {
                        // MSG_NOSIGNAL: a client that reset the connection is an error here, not SIGPIPE.
                        let written = send(client, base + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                        if written <= 0 { break }
                        offset += written
                    }
                }
                close(client)
            }
        }
        thread.name = "metrics"
        thread.start()
    }
}

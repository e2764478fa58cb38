import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `GET path` on 127.0.0.1:`port` with a plain socket: the status code and body, or nil if
/// nothing answers within 5 s.
public func httpGet(port: Int, path: String) -> (status: Int, body: String)? {
    httpRequest(port: port, method: "GET", path: path).map { ($0.status, $0.body) }
}

/// Any request on 127.0.0.1:`port` with a plain socket: status, headers (lowercased names) and
/// body, or nil if nothing answers within `timeout` seconds.
public func httpRequest(
    port: Int, method: String, path: String, headers: [String: String] = [:], body: [UInt8] = [], timeout: Int = 5
) -> (status: Int, headers: [String: String], body: String)? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else { return nil }
    var limit = timeval(tv_sec: timeout, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    for (name, value) in headers.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
    if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
    let request = Array((head + "\r\n").utf8) + body
    var sent = 0
    while sent < request.count {
        let n = request[sent...].withUnsafeBufferPointer { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { break }
        sent += n
    }
    var data: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n <= 0 { break }
        data += buffer[0..<n]
    }
    let text = String(decoding: data, as: UTF8.self)
    guard let statusLine = text.split(separator: "\r\n").first,
        let code = statusLine.split(separator: " ").dropFirst().first,
        let status = Int(code)
    else { return nil }
    var fields: [String: String] = [:]
    let headEnd = text.range(of: "\r\n\r\n")
    for line in text[..<(headEnd?.lowerBound ?? text.endIndex)].split(separator: "\r\n").dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    var responseBody = headEnd.map { String(text[$0.upperBound...]) } ?? ""
    if fields["transfer-encoding"]?.lowercased() == "chunked" { responseBody = dechunked(Array(responseBody.utf8)) }
    return (status, fields, responseBody)
}

/// A chunked body's content: each `<hex size>\r\n<bytes>\r\n` in turn, up to the `0` chunk
/// (what is there of a body cut short).
func dechunked(_ bytes: [UInt8]) -> String {
    var content: [UInt8] = []
    var index = 0
    while let end = bytes[index...].firstIndex(of: 0x0D), end + 1 < bytes.count, bytes[end + 1] == 0x0A {
        let sizeText = String(decoding: bytes[index..<end], as: UTF8.self).split(separator: ";").first ?? ""
        guard let size = Int(sizeText, radix: 16), size > 0 else { break }
        let start = end + 2
        let stop = min(start + size, bytes.count)
        content += bytes[start..<stop]
        index = stop + 2
        guard index < bytes.count else { break }
    }
    return String(decoding: content, as: UTF8.self)
}

/// A TCP port on 127.0.0.1 nothing listens on now: the kernel picks it (bind to port 0), so it
/// can't be one in use, as a random choice could be (e.g. a client connection's local port).
public func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return Int.random(in: 40_000...49_999) }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    guard bound else { return Int.random(in: 40_000...49_999) }
    return Int(UInt16(bigEndian: address.sin_port))
}

import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A histogram in Prometheus' text format: cumulative counts per upper bound, summed over every
/// series of the name (several projectors, several label sets). Pure, so it is tested alone.
struct PrometheusHistogram: Equatable, Sendable {
    /// Upper bound → cumulative count; `+Inf` is `.infinity`.
    var buckets: [Double: Double] = [:]

    var count: Double { buckets[.infinity] ?? buckets.values.max() ?? 0 }

    /// Adds the `<name>_bucket` lines of an exposition; lines of other names are skipped.
    mutating func add(exposition text: String, name: String) {
        let prefix = name + "_bucket{"
        for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
            guard let close = line.lastIndex(of: "}"),
                let value = Double(line[line.index(after: close)...].trimmingCharacters(in: .whitespaces)),
                value.isFinite, value >= 0,
                let le = line[..<close].range(of: "le=\"")
            else { continue }
            let rest = line[le.upperBound..<close]
            guard let quote = rest.firstIndex(of: "\"") else { continue }
            let text = String(rest[..<quote])
            guard let bound = text == "+Inf" ? Double.infinity : Double(text) else { continue }
            buckets[bound, default: 0] += value
        }
    }

    /// What was observed since `earlier` (a counter reset, a projector restarted, reads as all new).
    func since(_ earlier: PrometheusHistogram) -> PrometheusHistogram {
        var delta = PrometheusHistogram()
        for (bound, value) in buckets {
            let before = earlier.buckets[bound] ?? 0
            delta.buckets[bound] = value >= before ? value - before : value
        }
        return delta
    }

    /// The `q` quantile as Prometheus' `histogram_quantile` gives it: linear within the bucket
    /// that holds it; the highest finite bound when it falls in `+Inf`; nil without observations.
    func quantile(_ q: Double) -> Double? {
        let sorted = buckets.sorted { $0.key < $1.key }
        guard let total = sorted.last?.value, total > 0 else { return nil }
        let rank = q * total
        var lowerBound = 0.0
        var lowerCount = 0.0
        for (bound, cumulative) in sorted {
            if cumulative >= rank {
                if bound == .infinity { return lowerBound }
                let inBucket = cumulative - lowerCount
                guard inBucket > 0 else { return bound }
                return lowerBound + (bound - lowerBound) * (rank - lowerCount) / inBucket
            }
            lowerBound = bound
            lowerCount = cumulative
        }
        return lowerBound
    }
}

/// The projectors' produce → publish p99, read off their `/metrics`
/// (`bte_projector_freshness_seconds`): over what they observed since the previous reading, or
/// since they started on the first one.
public actor ProjectorFreshness {
    struct Reading: Sendable, Equatable {
        /// nil: nothing was published in the period.
        var p99: Double?
        var published: Int
        /// Seconds the reading covers; nil when it covers the projectors' lifetime.
        var window: Double?
        var answered: Int
        var asked: Int
    }

    private let endpoints: [(host: String, port: Int, path: String)]
    private var previous: (histogram: PrometheusHistogram, at: Date)?

    init(urls: [String]) {
        endpoints = urls.compactMap(Self.endpoint)
    }

    var configured: Bool { !endpoints.isEmpty }

    /// `http://host:port/path` (the path defaults to `/metrics`); nil for anything else.
    public static func endpoint(_ url: String) -> (host: String, port: Int, path: String)? {
        guard let components = URLComponents(string: url), components.scheme == "http",
            let host = components.host, !host.isEmpty
        else { return nil }
        let path = components.path.isEmpty ? "/metrics" : components.path
        return (host, components.port ?? 80, path)
    }

    func read() async -> Reading? {
        guard !endpoints.isEmpty else { return nil }
        var histogram = PrometheusHistogram()
        var answered = 0
        for endpoint in endpoints {
            guard let text = try? await Self.get(endpoint.host, endpoint.port, endpoint.path) else { continue }
            histogram.add(exposition: text, name: "bte_projector_freshness_seconds")
            answered += 1
        }
        guard answered > 0 else {
            return Reading(p99: nil, published: 0, window: nil, answered: 0, asked: endpoints.count)
        }
        let now = Date()
        let period = previous.map { histogram.since($0.histogram) } ?? histogram
        let window = previous.map { now.timeIntervalSince($0.at) }
        previous = (histogram, now)
        return Reading(
            p99: period.quantile(0.99), published: Int(period.count), window: window, answered: answered,
            asked: endpoints.count)
    }

    /// The body of `GET path` on host:port within 2 s (a metrics endpoint: small, plain text).
    static func get(_ host: String, _ port: Int, _ path: String) async throws -> String {
        try await withThrowingTaskGroup(of: String.self) { group in
            group.addTask {
                let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connectTimeout(.seconds(2))
                    .connect(host: host, port: port) { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHTTPClientHandlers()
                            return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                                wrappingChannelSynchronously: channel)
                        }
                    }
                return try await channel.executeThenClose { inbound, outbound in
                    var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
                    head.headers.add(name: "Host", value: host)
                    head.headers.add(name: "Connection", value: "close")
                    try await outbound.write(.head(head))
                    try await outbound.write(.end(nil))
                    var body = ByteBuffer()
                    var ok = false
                    loop: for try await part in inbound {
                        switch part {
                        case .head(let response): ok = response.status == .ok
                        case .body(var chunk):
                            guard body.readableBytes + chunk.readableBytes <= 8 << 20 else { break loop }
                            body.writeBuffer(&chunk)
                        case .end: break loop
                        }
                    }
                    guard ok else { throw ProbeError() }
                    return String(buffer: body)
                }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(2))
                throw ProbeError()
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw ProbeError() }
            return first
        }
    }

    struct ProbeError: Error {}
}

import BTEDomain
import BTEFixtures
import BTEIngest
import BTEProjection
import BTEStore
import BTEWorker
import Foundation
import Kafka
import Logging
import Postgres

#if canImport(Glibc)
    import Glibc
#endif

/// In-context delivery end to end: `streams` users hold an insight stream open on a `bte serve`
/// (a child process) while ingest, the projector and the sink run here on mixed traffic at
/// `rate` events/s; each user views a stalled deal's page once. Measures page view produced →
/// its delivery read off the user's stream, and the server's resident memory with no stream,
/// with every stream open, and after the run.
struct DeliveryBenchmark {
    let brokers: String
    let adminURL: String
    let executable: String
    let logger: Logger
    var rate = 1_000
    var seconds = 20
    var streams = 1_000
    var workspaces = 10

    struct Result {
        var streams = 0
        var pageViews = 0
        var received = 0
        var achievedRate = 0.0
        var p50 = 0.0
        var p95 = 0.0
        var p99 = 0.0
        var max = 0.0
        var rssIdle = 0
        var rssOpen = 0
        var rssAfter = 0
        var queriesPerSecond = 0.0

        func render() -> String {
            let perStream = streams > 0 ? Double(rssOpen - rssIdle) / Double(streams) : 0
            return """
                insight delivery: page view produced -> delivery read off its user's stream
                  \(streams) streams open, \(pageViews) page views in mixed traffic at \
                \(String(format: "%.0f", achievedRate)) events/s; \(received) deliveries received
                  p50 \(String(format: "%.0f", p50)) ms   p95 \(String(format: "%.0f", p95)) ms   \
                p99 \(String(format: "%.0f", p99)) ms   max \(String(format: "%.0f", max)) ms
                  bte serve resident memory: \(rssIdle / 1024) MiB with no stream, \(rssOpen / 1024) MiB with \
                \(streams) open (\(String(format: "%.1f", perStream)) KiB a stream), \
                \(rssAfter / 1024) MiB after the run
                  database transactions of the server's reader while the streams were open: \
                \(String(format: "%.1f", queriesPerSecond))/s
                """
        }
    }

    func run() throws -> Result {
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)

        let name = "bte_bench_deliver_\(UInt32.random(in: 0...UInt32.max))"
        let admin = try PostgresConnection(url: adminURL)
        try admin.execute("CREATE DATABASE \(name)")
        defer { _ = try? admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        let url = with(adminURL, database: name)
        try Migrator().apply(url: url)
        let prefix = "deliver\(UInt32.random(in: 0...UInt32.max))."
        _ = try KafkaAdmin(configuration: KafkaClientConfiguration(brokers: brokers)).createTopics(
            (InputKind.allCases.map(\.rawValue) + OutputTopic.allCases.map(\.rawValue)).map {
                KafkaNewTopic(name: prefix + $0, partitions: 6, replicationFactor: 1)
            })

        // Each workspace: a read key, and a deal created 20 days ago and untouched since (stalled).
        let now = Date()
        let micros = { (date: Date) in Int64(date.timeIntervalSince1970 * 1_000_000) }
        let workspaceIDs = (0..<workspaces).map { String(format: "be000000-0000-4000-8000-%012d", $0) }
        let deal = "dea10000-0000-4000-8000-000000000001"
        let keys = try workspaceIDs.map { try createKey(url: url, workspace: $0) }
        func business(_ id: String, _ workspace: String, _ type: String, actor: String, at: Int64, _ metadata: String)
            -> KafkaOutgoingMessage
        {
            let value = """
                {"record_type":"business_event","event_id":"\(id)","event_type":"\(type)",\
                "entity_type":"\(type.split(separator: ".")[0])","entity_id":"\(deal)","workspace_id":"\(workspace)",\
                "sub_vertical_id":"5b000000-0000-4000-8000-000000000001","actor_user_id":"\(actor)",\
                "timestamp":"\(Timestamp(microseconds: at).rfc3339)","metadata":\(metadata)}
                """
            return KafkaOutgoingMessage(
                topic: prefix + InputKind.business.rawValue, key: Array(workspace.utf8), value: Array(value.utf8))
        }
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(client: KafkaClientConfiguration(brokers: brokers)))
        try producer.send(
            workspaceIDs.enumerated().map { n, workspace in
                business(
                    String(format: "c0000000-0000-4000-8000-%012d", n), workspace, "deal.created",
                    actor: "ac000000-0000-4000-8000-000000000000", at: micros(now) - 20 * 86_400_000_000, "{}")
            })

        var ingest = IngestConfiguration(brokers: brokers, databaseURL: with(url, user: "bte_ingest"))
        ingest.topicPrefix = prefix
        ingest.group = prefix + "ingest"
        ingest.sessionTimeoutMilliseconds = 6_000
        var projector = Projector.Configuration(brokers: brokers, readerURL: with(url, user: "bte_reader"))
        projector.topicPrefix = prefix
        projector.group = prefix + "projector"
        projector.ingestGroup = ingest.group
        projector.sessionTimeoutMilliseconds = 6_000
        var sink = IngestConfiguration(brokers: brokers, databaseURL: with(url, user: "bte_ingest"))
        sink.topicPrefix = prefix
        sink.group = prefix + "sink"
        sink.sessionTimeoutMilliseconds = 6_000
        sink.maxBatchWaitMilliseconds = 20
        let stop = StopSignal()
        let group = DispatchGroup()
        let logger = self.logger
        let (ic, pc, sc) = (ingest, projector, sink)
        for work in [
            { _ = try? IngestWorker(configuration: ic, logger: logger).run(stop: stop) },
            { _ = try? Projector(configuration: pc, logger: logger).run(stop: stop) },
            { _ = try? SinkWorker(configuration: sc, logger: logger).run(stop: stop) },
        ] as [@Sendable () -> Void] {
            group.enter()
            Thread {
                work()
                group.leave()
            }.start()
        }
        defer {
            stop.stop()
            group.wait()
        }

        let port = Int.random(in: 20_000...40_000)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: executable)
        server.arguments = [
            "serve", "--port", String(port), "--brokers", brokers, "--reader-database-url",
            with(url, user: "bte_reader"), "--topic-prefix", prefix, "--max-connections", String(streams + 100),
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["BTE_LOG_LEVEL"] = "error"
        server.environment = environment
        try server.run()
        defer {
            // Drained within 10 s, or killed: a server left behind would weigh on the next run.
            server.terminate()
            let deadline = Date().addingTimeInterval(10)
            while server.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
            if server.isRunning { kill(server.processIdentifier, SIGKILL) }
        }
        var result = Result()
        result.streams = streams
        let clients = StreamClients()
        defer { clients.close() }
        // The server answers, and the pipeline has stored the deals and joined its groups.
        Thread.sleep(forTimeInterval: 10)
        result.rssIdle = residentKilobytes(server.processIdentifier)

        let users = (0..<streams).map { String(format: "ab000000-0000-4000-8000-%012d", $0) }
        for (n, user) in users.enumerated() {
            try clients.open(
                port: port, path: "/v1/users/\(user)/insights/stream", key: keys[n % workspaces])
        }
        clients.start()
        guard clients.waitUntilOpen(streams, timeout: 60) else {
            throw BenchError("only \(clients.openCount) of \(streams) streams opened")
        }
        Thread.sleep(forTimeInterval: 2)
        result.rssOpen = residentKilobytes(server.processIdentifier)
        let transactions = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '\(name)'"
        let before = try admin.execute(transactions).rows.first?[0].flatMap { Int($0) } ?? 0
        let quietStarted = Date()
        Thread.sleep(forTimeInterval: 5)
        _ = try admin.execute("SELECT pg_stat_clear_snapshot()")
        let after = try admin.execute(transactions).rows.first?[0].flatMap { Int($0) } ?? 0
        result.queriesPerSecond = Double(after - before) / Date().timeIntervalSince(quietStarted)

        // Mixed traffic: the demo stream's business events and interactions in other workspaces,
        // and each user's page view spread over the run.
        var options = DemoStream.Options()
        options.events = max(rate * seconds - streams, 0)
        options.seed = 8
        options.badRounds = 0
        options.duplicateEvery = 0
        options.interactionShare = 0.5
        options.topicPrefix = prefix
        options.spanDays = 1
        options.end = Timestamp(microseconds: micros(now) + 86_400_000_000)
        options.workspaceCount = 50
        options.workspaceSeed = 42
        let background = DemoStream(options: options).messages.filter {
            $0.topic != prefix + InputKind.intent.rawValue
        }
        let total = background.count + users.count
        let every = max(total / max(users.count, 1), 1)
        let tick = 0.05
        let perTick = max(Int(Double(rate) * tick), 1)
        var produced: [String: Date] = [:]
        var nextUser = 0
        var backgroundIndex = 0
        var sent = 0
        let started = Date()
        while sent < total {
            let due = started.addingTimeInterval(Double(sent / perTick) * tick)
            let wait = due.timeIntervalSinceNow
            if wait > 0 { Thread.sleep(forTimeInterval: wait) }
            var batch: [KafkaOutgoingMessage] = []
            var views: [String] = []
            let sendTime = Date()
            while batch.count < perTick, sent < total {
                if nextUser < users.count, sent % every == 0 || backgroundIndex >= background.count {
                    let id = String(format: "ee000000-0000-4000-8000-%012d", nextUser)
                    let workspace = workspaceIDs[nextUser % workspaces]
                    batch.append(
                        business(
                            id, workspace, "page.viewed", actor: users[nextUser], at: micros(sendTime),
                            #"{"subject_type":"deal","subject_id":"\#(deal)"}"#))
                    views.append(id)
                    nextUser += 1
                } else if backgroundIndex < background.count {
                    batch.append(background[backgroundIndex])
                    backgroundIndex += 1
                }
                sent += 1
            }
            for id in views { produced[id] = sendTime }
            try producer.send(batch)
        }
        result.achievedRate = Double(total) / Date().timeIntervalSince(started)
        result.pageViews = nextUser
        let deadline = Date().addingTimeInterval(30)
        while clients.receivedCount < nextUser, Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
        let received = clients.received
        let latencies = received.compactMap { id, at in produced[id].map { at.timeIntervalSince($0) * 1000 } }.sorted()
        result.received = latencies.count
        if !latencies.isEmpty {
            result.p50 = latencies[latencies.count / 2]
            result.p95 = latencies[min(latencies.count - 1, latencies.count * 95 / 100)]
            result.p99 = latencies[min(latencies.count - 1, latencies.count * 99 / 100)]
            result.max = latencies[latencies.count - 1]
        }
        result.rssAfter = residentKilobytes(server.processIdentifier)
        return result
    }
}

extension DeliveryBenchmark {
    /// A read key of the workspace, made by `bte keys create` as an operator would.
    func createKey(url: String, workspace: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [
            "keys", "create", "--workspace", workspace, "--scope", "read", "--rate", "100000", "--database-url", url,
            "--by", "bench",
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0,
            let key = text.split(separator: "\n").first(where: { $0.hasPrefix("bte_") })
        else { throw BenchError("bte keys create failed: \(text)") }
        return String(key)
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A process's resident memory in KiB (VmRSS), 0 when it can't be read.
func residentKilobytes(_ pid: Int32) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
    else { return 0 }
    return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
}

/// Many streamed responses read by one thread: the trigger event id of each delivery read,
/// with the time it was read.
final class StreamClients: @unchecked Sendable {
    private let lock = NSLock()
    private var sockets: [Int32] = []
    private var buffers: [Int32: [UInt8]] = [:]
    private var opened: Set<Int32> = []
    private var seen: [String: Date] = [:]
    private var running = true
    private var thread: Thread?

    func open(port: Int, path: String, key: String) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            Glibc.close(fd)
            throw BenchError("can't connect to the server on port \(port)")
        }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer \(key)\r\n\r\n".utf8)
        _ = send(fd, request, request.count, Int32(MSG_NOSIGNAL))
        lock.withLock {
            sockets.append(fd)
            buffers[fd] = []
        }
    }

    func start() {
        let thread = Thread { [self] in loop() }
        self.thread = thread
        thread.start()
    }

    var openCount: Int { lock.withLock { opened.count } }
    var receivedCount: Int { lock.withLock { seen.count } }
    var received: [String: Date] { lock.withLock { seen } }

    func waitUntilOpen(_ count: Int, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while openCount < count, Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        return openCount >= count
    }

    func close() {
        lock.withLock { running = false }
        Thread.sleep(forTimeInterval: 0.3)
        lock.withLock {
            for fd in sockets { Glibc.close(fd) }
            sockets = []
        }
    }

    private func loop() {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let marker = Array("\"trigger\":{\"kind\":\"page_view\",\"event_id\":\"".utf8)
        let opening = Array("retry: 2000".utf8)
        while lock.withLock({ running }) {
            var descriptors = lock.withLock { sockets.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) } }
            guard poll(&descriptors, nfds_t(descriptors.count), 100) > 0 else { continue }
            let now = Date()
            for descriptor in descriptors where descriptor.revents & Int16(POLLIN) != 0 {
                let count = recv(descriptor.fd, &buffer, buffer.count, 0)
                guard count > 0 else { continue }
                lock.withLock {
                    var bytes = (buffers[descriptor.fd] ?? []) + buffer[0..<count]
                    if !opened.contains(descriptor.fd), bytes.firstRange(of: opening) != nil {
                        opened.insert(descriptor.fd)
                    }
                    while let found = bytes.firstRange(of: marker) {
                        let start = found.upperBound
                        guard bytes.count >= start + 36 else { break }
                        seen[String(decoding: bytes[start..<start + 36], as: UTF8.self)] =
                            seen[
                                String(decoding: bytes[start..<start + 36], as: UTF8.self)] ?? now
                        bytes.removeSubrange(0..<start + 36)
                    }
                    // Keep only a tail that may hold the start of a marker.
                    if bytes.count > 4_096 { bytes.removeFirst(bytes.count - 4_096) }
                    buffers[descriptor.fd] = bytes
                }
            }
        }
    }
}

import BTEDomain
import Foundation
import Kafka
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Peak resident memory of `bte ingest --until-idle` (a child process) over a burst of large
/// messages, against the same run over small ones in the same session.
public struct MemoryBenchmark: Sendable {
    public struct Run: Sendable {
        public var messages = 0
        public var messageBytes = 0
        public var peakKilobytes = 0
    }

    public struct Result: Sendable {
        public var baseline = Run()
        public var burst = Run()

        public func render() -> String {
            func line(_ run: Run) -> String {
                "\(run.messages) × \(run.messageBytes) bytes: peak RSS \(run.peakKilobytes / 1024) MiB"
            }
            let ratio = baseline.peakKilobytes > 0 ? Double(burst.peakKilobytes) / Double(baseline.peakKilobytes) : 0
            return """
                bte ingest peak memory (--until-idle, one process)
                  baseline \(line(baseline))
                  burst    \(line(burst))
                  ratio burst / baseline: \(String(format: "%.2f", ratio))
                """
        }
    }

    public var brokers: String
    public var adminURL: String
    /// The `bte` executable to run.
    public var executable: String
    public var messages = 400
    public var burstBytes = 200 * 1024
    public var baselineBytes = 1024
    public var logger: Logger

    public init(brokers: String, adminURL: String, executable: String, logger: Logger) {
        self.brokers = brokers
        self.adminURL = adminURL
        self.executable = executable
        self.logger = logger
    }

    public func run() throws -> Result {
        Result(baseline: try measure(bytes: baselineBytes), burst: try measure(bytes: burstBytes))
    }

    /// Interaction events padded by an unknown field to about `bytes` each (those over the
    /// field limit are rejects, which ingest holds in memory the same way).
    private func measure(bytes: Int) throws -> Run {
        let prefix = "mem\(UInt32.random(in: 0...UInt32.max))."
        return try withScratchDatabase(adminURL: adminURL, "memory") { url in
            let admin = try KafkaAdmin(configuration: KafkaClientConfiguration(brokers: brokers))
            _ = try admin.createTopics(
                (InputKind.allCases.map(\.rawValue) + [OutputTopic.deadLetter.rawValue]).map {
                    KafkaNewTopic(name: prefix + $0, partitions: 3, replicationFactor: 1)
                })
            let padding = String(repeating: "x", count: max(bytes - 200, 0))
            let outgoing = (0..<messages).map { n -> KafkaOutgoingMessage in
                let user = "user-\(n % 20)"
                let value = """
                    {"event_id":"\(UUID().uuidString.lowercased())","timestamp":"2026-03-01T10:00:00Z",\
                    "event_type":"tap","user_id":"\(user)","session_id":"s","padding":"\(padding)"}
                    """
                return KafkaOutgoingMessage(
                    topic: prefix + InputKind.interaction.rawValue, key: Array(user.utf8), value: Array(value.utf8))
            }
            let producer = try KafkaProducer(
                configuration: KafkaProducerConfiguration(client: KafkaClientConfiguration(brokers: brokers)))
            try producer.send(outgoing)
            let arguments = [
                "ingest", "--until-idle", "--brokers", brokers, "--database-url", with(url, user: "bte_ingest"),
                "--topic-prefix", prefix, "--group", prefix + "ingest", "--session-timeout-ms", "6000",
            ]
            let peak = try peakKilobytes(of: [executable] + arguments)
            return Run(messages: messages, messageBytes: outgoing.first?.value?.count ?? 0, peakKilobytes: peak)
        }
    }

    /// Runs the command to its end and returns its maximum resident set size (KiB).
    private func peakKilobytes(of command: [String]) throws -> Int {
        let argv = command.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, command[0], nil, nil, argv, environ) == 0 else {
            throw BenchmarkError(message: "cannot start \(command[0])")
        }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) == -1 && errno == EINTR {}
        guard (status & 0x7f) == 0, (status >> 8) & 0xff == 0 else {
            throw BenchmarkError(message: "bte ingest ended with status \(status)")
        }
        return usage.ru_maxrss
    }
}

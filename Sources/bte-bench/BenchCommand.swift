import ArgumentParser
import BTECLI
import BTEIngest
import BTEWorker
import Foundation

@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bte-bench",
        abstract:
            "Benchmarks on this machine: ingest vs raw COPY, projection, intent review (prints figures and ratios).")
    @OptionGroup var options: ConnectionOptions
    @Option(help: "Interaction events to load.") var events = 200_000
    @Option(help: "URL of a role that may create databases (env BTE_ADMIN_DATABASE_URL).") var adminDatabaseURL: String?
    @Option(help: "Ingest batch size.") var batchSize = 10_000
    @Option(help: "Ingest writers.") var writers = 2
    @Option(
        help: """
            ingest (raw COPY vs ingest), project (projector throughput, freshness, sweep), sweep (the \
            project suite's sweep alone, with its stages), \
            freshness (the project suite's freshness run alone), memory (peak RSS of ingest over a burst of \
            400 × 200 KiB messages), \
            deliveries (page view → delivery read off an insight stream, with --streams open, at --rate), \
            tracing (the freshness run without trace context, with it, and with spans exported to \
            --otlp-endpoint), intents (report on stored intent events) or models (EM fit and simulation; no \
            servers).
            """
    ) var suite = "ingest"
    @Option(help: "Stored intent events (intents suite).") var intentEvents = 1_000_000
    @Option(help: "Stored business events for the sweep figure (project suite).") var sweepEvents = 1_000_000
    @Option(help: "Events per second of the freshness run (project suite) or of the deliveries suite's traffic.")
    var rate = 5_000
    @Option(help: "Insight streams held open (deliveries suite).") var streams = 1_000
    @Option(help: "Seconds of the freshness run (project suite).") var seconds = 20
    @Option(
        help: """
            Business events stored before the freshness stream (freshness suite): the stream runs once \
            without and once with them, beside the pipeline's floor.
            """
    ) var history = 0
    @Option(help: "Workspaces of the freshness stream and its history.") var workspaces = 50
    @Option(help: "Share of interaction events in the freshness stream (0…1).") var interactionShare = 0.5
    @Option(
        help: """
            The bte executable whose ingest the memory suite measures (and that the deliveries suite serves with); \
            default this one (another build gives a same-run baseline).
            """
    )
    var ingestExecutable: String?
    @Option(help: "OTLP/HTTP collector the tracing suite exports spans to, e.g. http://127.0.0.1:4318.")
    var otlpEndpoint: String?

    func run() async throws {
        try await guarded {
            if suite == "models" {
                let benchmark = ModelsBenchmark()
                print(try await onThread("bench") { try benchmark.run() }.render())
                return
            }
            let admin = try Setting.admin.resolve(adminDatabaseURL)
            if suite == "project" || suite == "freshness" || suite == "sweep" || suite == "tracing" {
                var benchmark = ProjectorBenchmark(
                    brokers: try options.resolvedBrokers(), adminURL: admin, logger: try options.makeLogger("bte.bench")
                )
                benchmark.events = events
                benchmark.sweepEvents = sweepEvents
                benchmark.rate = rate
                benchmark.seconds = seconds
                benchmark.history = history
                benchmark.workspaces = workspaces
                benchmark.interactionShare = interactionShare
                if suite == "tracing" {
                    guard let otlpEndpoint else {
                        let collector = "scripts/otlp-receiver.py PORT --discard"
                        throw CLIError("the tracing suite needs --otlp-endpoint (a collector: \(collector))")
                    }
                    print(try await TracingBenchmark(projector: benchmark, endpoint: otlpEndpoint).run().render())
                    return
                }
                let bench = benchmark
                let freshnessOnly = suite == "freshness"
                let sweepOnly = suite == "sweep"
                print(
                    try await onThread("bench") { try bench.run(freshnessOnly: freshnessOnly, sweepOnly: sweepOnly) }
                        .render())
                return
            }
            if suite == "memory" {
                // Default: the bte built next to this executable.
                let own =
                    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                    ?? CommandLine.arguments[0]
                let executable =
                    ingestExecutable
                    ?? URL(fileURLWithPath: own).deletingLastPathComponent().appendingPathComponent("bte").path
                let benchmark = MemoryBenchmark(
                    brokers: try options.resolvedBrokers(), adminURL: admin, executable: executable,
                    logger: try options.makeLogger("bte.bench"))
                print(try await onThread("bench") { try benchmark.run() }.render())
                return
            }
            if suite == "deliveries" {
                let own =
                    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                    ?? CommandLine.arguments[0]
                var benchmark = DeliveryBenchmark(
                    brokers: try options.resolvedBrokers(), adminURL: admin,
                    executable: ingestExecutable
                        ?? URL(fileURLWithPath: own).deletingLastPathComponent().appendingPathComponent("bte").path,
                    logger: try options.makeLogger("bte.bench"))
                benchmark.rate = rate
                benchmark.seconds = seconds
                benchmark.streams = streams
                let bench = benchmark
                print(try await onThread("bench") { try bench.run() }.render())
                return
            }
            if suite == "intents" {
                var benchmark = IntentReportBenchmark(adminURL: admin)
                benchmark.events = intentEvents
                let bench = benchmark
                print(try await onThread("bench") { try bench.run() }.render())
                return
            }
            guard suite == "ingest" else {
                let suites = "ingest, project, freshness, sweep, tracing, memory, deliveries, intents or models"
                throw CLIError("--suite is \(suites), not \(suite)")
            }
            var benchmark = IngestBenchmark(
                brokers: try options.resolvedBrokers(), adminURL: admin, logger: try options.makeLogger("bte.bench"))
            benchmark.events = events
            benchmark.batchSize = batchSize
            benchmark.writers = writers
            let bench = benchmark
            let result = try await onThread("bench") { try bench.run() }
            print(result.render())
        }
    }
}

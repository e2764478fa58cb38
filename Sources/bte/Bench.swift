import ArgumentParser
import BTEPipeline
import Foundation

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark ingest against raw COPY on this machine (prints events/s and the ratio).")
    @OptionGroup var options: ConnectionOptions
    @Option(help: "Interaction events to load.") var events = 200_000
    @Option(help: "URL of a role that may create databases (env BTE_ADMIN_DATABASE_URL).") var adminDatabaseURL: String?
    @Option(help: "Ingest batch size.") var batchSize = 5_000
    @Option(help: "Ingest writers.") var writers = 2

    func run() async throws {
        try await BTECommand.guarded {
            guard let admin = adminDatabaseURL ?? ProcessInfo.processInfo.environment["BTE_ADMIN_DATABASE_URL"] else {
                throw CLIError("pass --admin-database-url or set BTE_ADMIN_DATABASE_URL")
            }
            var benchmark = IngestBenchmark(brokers: try options.resolvedBrokers(), adminURL: admin, logger: options.makeLogger("bte.bench"))
            benchmark.events = events
            benchmark.batchSize = batchSize
            benchmark.writers = writers
            let bench = benchmark
            let result = try await onThread("bench") { try bench.run() }
            print(result.render())
        }
    }
}

import ArgumentParser
import BTECLI
import BTEOperations
import BTEWorker
import Foundation

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Lag per group and partition, rejects of the last 24 h, versions.",
        discussion: "Exit code 0 healthy, 1 degraded (a partition's lag over --max-lag-seconds), 2 unreachable.")
    @Option(help: "Kafka bootstrap servers (env BTE_KAFKA_BROKERS).") var brokers: String?
    @Option(help: "libpq URI of a reader (env BTE_READER_DATABASE_URL).") var readerDatabaseURL: String?
    @Option(help: "Prefix for every topic name; empty in production.") var topicPrefix = ""
    @Option(help: "The ingest group.") var ingestGroup = "bte-ingest"
    @Option(help: "The projector group.") var projectorGroup = "bte-projector"
    @Option(help: "Also report this sink group (bte-sink), whose offsets are in PostgreSQL.") var sinkGroup: String?
    @Option(help: "Degraded when a partition's oldest unprocessed message is older than this.")
    var maxLagSeconds = 300.0
    @Option(help: "Degraded when the last recorded backup (scripts/backup.sh) finished longer ago than this.")
    var maxBackupAgeHours = 26.0
    @Option(help: "table or json.") var format = "table"
    @OptionGroup var kafka: KafkaOptions

    func run() async throws {
        try await guarded {
            guard format == "table" || format == "json" else { throw CLIError("--format is table or json") }
            guard maxLagSeconds >= 0 else { throw CLIError("--max-lag-seconds must not be negative") }
            guard maxBackupAgeHours > 0, maxBackupAgeHours.isFinite else {
                throw CLIError("--max-backup-age-hours must be a positive number")
            }
            var configuration = Status.Configuration(
                brokers: try Setting.brokers.resolve(brokers), readerURL: try Setting.reader.resolve(readerDatabaseURL))
            configuration.kafkaProperties = try kafka.resolve()
            configuration.topicPrefix = topicPrefix
            configuration.ingestGroup = ingestGroup
            configuration.projectorGroup = projectorGroup
            configuration.sinkGroup = sinkGroup
            configuration.maxLagSeconds = maxLagSeconds
            configuration.maxBackupAgeSeconds = maxBackupAgeHours * 3_600
            let status = Status(configuration: configuration)
            let report = try await onThread("status") { try status.report() }
            print(format == "json" ? report.json() : report.table())
            if report.health != .healthy { throw ExitCode(report.health.rawValue) }
        }
    }
}

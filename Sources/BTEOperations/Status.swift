import BTECompute
import BTEDomain
import BTEStore
import Foundation
import Kafka

/// `bte status`: how far behind each group is, in messages and in seconds, what was rejected
/// in the last 24 hours, and which versions are running. Exit code 0 healthy, 1 degraded (a
/// partition's lag over the limit), 2 unreachable.
public struct Status: Sendable {
    public struct Configuration: Sendable {
        public var brokers: String
        public var kafkaProperties: [String: String] = [:]
        public var readerURL: String
        public var ingestGroup = "bte-ingest"
        public var projectorGroup = "bte-projector"
        /// The sink's group (offsets in PostgreSQL, over the output topics); nil: not reported.
        public var sinkGroup: String?
        public var topicPrefix = ""
        public var maxLagSeconds = 300.0
        /// A recorded backup older than this is a problem (none recorded is only reported).
        public var maxBackupAgeSeconds = 26 * 3_600.0
        public var timeoutMilliseconds: Int32 = 5_000
        public var nowMilliseconds: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }

        public init(brokers: String, readerURL: String) {
            self.brokers = brokers
            self.readerURL = readerURL
        }
    }

    public struct PartitionLag: Sendable, Equatable {
        public var topic: String
        public var partition: Int32
        /// The group's next offset (nil: none yet; it starts at the first message).
        public var offset: Int64?
        public var end: Int64
        public var lagMessages: Int64
        /// Age of the oldest message not processed yet; 0 when caught up.
        public var lagSeconds: Double
    }

    public struct GroupLag: Sendable {
        public var group: String
        public var offsetsIn: OffsetHome
        public var partitions: [PartitionLag]
    }

    public enum Health: Int32, Sendable {
        case healthy = 0
        case degraded = 1
        case unreachable = 2
    }

    public struct Report: Sendable {
        public var health: Health = .healthy
        public var problems: [String] = []
        public var schemaVersion: String?
        public var thresholdsVersion: Int?
        public var groups: [GroupLag] = []
        public var rejectsLast24Hours: [String: Int] = [:]
        public var maxLagSeconds = 300.0
        public var database: DatabaseHealth?

        public var worstLagSeconds: Double { groups.flatMap(\.partitions).map(\.lagSeconds).max() ?? 0 }

        public func table() -> String {
            let state = health == .healthy ? "healthy" : health == .degraded ? "degraded" : "unreachable"
            var lines = [
                "bte status: \(state) (largest lag \(format(worstLagSeconds)) s, limit \(format(maxLagSeconds)) s)"
            ]
            lines += problems.map { "  problem: \($0)" }
            lines.append(
                "versions: engine \(engineVersion), schema \(schemaVersion ?? "unknown"), "
                    + "thresholds \(thresholdsVersion.map(String.init) ?? "unknown")")
            for group in groups {
                let messages = group.partitions.reduce(Int64(0)) { $0 + $1.lagMessages }
                lines.append(
                    "group \(group.group) (offsets in \(group.offsetsIn == .postgresql ? "PostgreSQL" : "Kafka")): "
                        + "lag \(messages) messages")
                for p in group.partitions {
                    lines.append(
                        "  \(p.topic)[\(p.partition)]  offset \(p.offset.map(String.init) ?? "none")  end \(p.end)  "
                            + "lag \(p.lagMessages) messages, \(format(p.lagSeconds)) s")
                }
            }
            if let database { lines.append(Self.describe(database)) }
            let total = rejectsLast24Hours.values.reduce(0, +)
            lines.append(
                "rejects in the last 24 h: \(total)"
                    + (total == 0
                        ? ""
                        : " ("
                            + rejectsLast24Hours.keys.sorted().map { "\($0) \(rejectsLast24Hours[$0] ?? 0)" }
                            .joined(separator: ", ") + ")"))
            return lines.joined(separator: "\n")
        }

        public func json() -> String {
            let state = health == .healthy ? "healthy" : health == .degraded ? "degraded" : "unreachable"
            let groups = self.groups.map { group in
                let partitions = group.partitions.map { p in
                    "{\"topic\":\(JSONValue.quoted(p.topic)),\"partition\":\(p.partition),"
                        + "\"offset\":\(p.offset.map(String.init) ?? "null"),\"end\":\(p.end),"
                        + "\"lag_messages\":\(p.lagMessages),\"lag_seconds\":\(format(p.lagSeconds))}"
                }
                return "{\"group\":\(JSONValue.quoted(group.group)),\"offsets_in\":\"\(group.offsetsIn.rawValue)\","
                    + "\"partitions\":[\(partitions.joined(separator: ","))]}"
            }
            let rejects = rejectsLast24Hours.keys.sorted().map {
                "\(JSONValue.quoted($0)):\(rejectsLast24Hours[$0] ?? 0)"
            }
            return "{\"status\":\"\(state)\",\"exit_code\":\(health.rawValue),"
                + "\"problems\":[\(problems.map(JSONValue.quoted).joined(separator: ","))],"
                + "\"max_lag_seconds\":\(format(maxLagSeconds)),\"largest_lag_seconds\":\(format(worstLagSeconds)),"
                + "\"versions\":{\"engine\":\(JSONValue.quoted(engineVersion)),"
                + "\"schema\":\(schemaVersion.map(JSONValue.quoted) ?? "null"),"
                + "\"thresholds\":\(thresholdsVersion.map(String.init) ?? "null")},"
                + "\"groups\":[\(groups.joined(separator: ","))],"
                + "\"rejects_last_24h\":{\(rejects.joined(separator: ","))},"
                + "\"database\":\(database.map(Self.json) ?? "null")}"
        }

        /// One line: the server's role, the last backup, the WAL archive, the standbys.
        static func describe(_ db: DatabaseHealth) -> String {
            func age(_ seconds: Double) -> String {
                seconds < 120
                    ? String(format: "%.0f s", seconds)
                    : seconds < 7_200
                        ? String(format: "%.0f min", seconds / 60) : String(format: "%.1f h", seconds / 3_600)
            }
            var parts = [db.inRecovery ? "database: a standby (read-only)" : "database: primary"]
            if let type = db.lastBackupType, let backup = db.backupAgeSeconds {
                parts.append("last backup \(type) \(age(backup)) ago")
            } else {
                parts.append("no backup recorded (scripts/backup.sh records them)")
            }
            if db.archiving {
                let last = db.archiveAgeSeconds.map { "last WAL archived \(age($0)) ago" } ?? "no WAL archived yet"
                parts.append(last + ", \(db.archiveFailures) archive failures")
            } else {
                parts.append("WAL archiving off")
            }
            if db.inRecovery, let replayed = db.lastReplayedAt {
                parts.append("last replayed commit \(age(max(db.now - replayed, 0))) old")
            }
            for standby in db.standbys {
                let lag = standby.lagSeconds.map { String(format: "%.1f s behind", $0) } ?? "lag unknown"
                parts.append("standby \(standby.name) \(standby.state ?? "state unknown"), \(lag)")
            }
            return parts.joined(separator: "; ")
        }

        static func json(_ db: DatabaseHealth) -> String {
            func number(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "null" }
            let standbys = db.standbys.map {
                "{\"name\":\(JSONValue.quoted($0.name)),\"state\":\($0.state.map(JSONValue.quoted) ?? "null"),"
                    + "\"lag_seconds\":\(number($0.lagSeconds))}"
            }
            return "{\"role\":\"\(db.inRecovery ? "standby" : "primary")\","
                + "\"last_backup_type\":\(db.lastBackupType.map(JSONValue.quoted) ?? "null"),"
                + "\"backup_age_seconds\":\(number(db.backupAgeSeconds)),\"archiving\":\(db.archiving),"
                + "\"archive_age_seconds\":\(number(db.archiveAgeSeconds)),\"archive_failures\":\(db.archiveFailures),"
                + "\"standbys\":[\(standbys.joined(separator: ","))]}"
        }

        private func format(_ seconds: Double) -> String { String(format: "%.1f", seconds) }
    }

    public let configuration: Configuration

    public init(configuration: Configuration) { self.configuration = configuration }

    /// An unreachable server is reported (exit code 2), not thrown; only settings librdkafka
    /// refuses are thrown, as the usage errors they are.
    public func report() throws -> Report {
        var report = Report()
        report.maxLagSeconds = configuration.maxLagSeconds
        var store: StatusStore?
        do {
            let opened = try StatusStore(url: configuration.readerURL)
            report.schemaVersion = try opened.schemaVersion()
            report.thresholdsVersion = try opened.thresholdsVersion()
            report.rejectsLast24Hours = try opened.rejectsByCode(hours: 24)
            // Reported when it can be read (a schema before backups were recorded can't say).
            if let database = try? opened.databaseHealth() {
                report.database = database
                if let age = database.backupAgeSeconds, age > configuration.maxBackupAgeSeconds {
                    let limit = String(format: "%.0f", configuration.maxBackupAgeSeconds / 3_600)
                    report.health = .degraded
                    report.problems.append(
                        "the last backup finished \(String(format: "%.1f", age / 3_600)) h ago "
                            + "(more than --max-backup-age-hours \(limit))")
                }
                if database.archiving, database.archiveFailures > 0,
                    let failed = database.lastArchiveFailureAt, failed > (database.lastArchivedAt ?? 0)
                {
                    report.health = .degraded
                    report.problems.append(
                        "WAL archiving fails: the last attempt failed and nothing was archived since")
                }
            }
            store = opened
        } catch {
            report.health = .unreachable
            report.problems.append("PostgreSQL: \(oneLine(error))")
        }
        let inputs = InputKind.allCases.map { TopicSelection(topic: $0.name(prefix: configuration.topicPrefix)) }
        let projected = [InputKind.business, .interaction].map {
            TopicSelection(topic: $0.name(prefix: configuration.topicPrefix))
        }
        var groups = [
            (configuration.ingestGroup, OffsetHome.postgresql, inputs),
            (configuration.projectorGroup, OffsetHome.kafka, projected),
        ]
        if let sink = configuration.sinkGroup {
            let outputs = [OutputTopic.signals, .behavioralVectors, .insights].map {
                TopicSelection(topic: $0.name(prefix: configuration.topicPrefix))
            }
            groups.append((sink, .postgresql, outputs))
        }
        for (group, home, topics) in groups {
            if home == .postgresql && store == nil { continue }
            // One unreachable broker is enough to say so; don't wait for it once per group.
            if report.problems.contains(where: { $0.hasPrefix("Kafka") }) { continue }
            do {
                let inspector = try OffsetInspector(
                    brokers: configuration.brokers, properties: configuration.kafkaProperties, group: group,
                    timeoutMilliseconds: configuration.timeoutMilliseconds)
                let partitions = try inspector.partitions(topics)
                let offsets: [KafkaTopicPartition: Int64]
                if home == .postgresql, let store {
                    offsets = try store.ingestOffsets(group: group).offsets(of: partitions)
                } else {
                    offsets = try inspector.committed(partitions)
                }
                let bounds = try inspector.bounds(partitions)
                let now = configuration.nowMilliseconds()
                var lags: [PartitionLag] = []
                for tp in partitions {
                    let (low, end) = bounds[tp] ?? (0, 0)
                    let position = max(offsets[tp] ?? low, low)
                    let behind = max(end - position, 0)
                    var seconds = 0.0
                    if behind > 0, let stamp = try inspector.timestamp(tp, at: position) {
                        // A producer sets a message's time: any Int64, so the difference is checked.
                        let (age, overflow) = now.subtractingReportingOverflow(stamp)
                        seconds = overflow ? 0 : max(Double(age) / 1000, 0)
                    }
                    lags.append(
                        PartitionLag(
                            topic: tp.topic, partition: tp.partition, offset: offsets[tp], end: end,
                            lagMessages: behind,
                            lagSeconds: seconds))
                }
                report.groups.append(GroupLag(group: group, offsetsIn: home, partitions: lags))
            } catch let error as KafkaError where error.code == .configuration || error.code == .clientCreation {
                throw error
            } catch {
                report.health = .unreachable
                report.problems.append("Kafka (group \(group)): \(oneLine(error))")
            }
        }
        if report.health == .healthy, report.worstLagSeconds > configuration.maxLagSeconds {
            report.health = .degraded
            report.problems.append(
                "a partition is \(String(format: "%.1f", report.worstLagSeconds)) s behind "
                    + "(more than --max-lag-seconds \(String(format: "%.0f", configuration.maxLagSeconds)))")
        }
        return report
    }
}

/// libpq's messages span lines; a report line must not.
func oneLine(_ error: any Error) -> String {
    "\(error)".split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
}

import BTEDomain
import BTEStore
import Foundation
import Kafka

/// `bte replay`: moves a consumer group's offsets so its messages are processed again (or
/// skipped). An ingest group keeps its offsets in PostgreSQL, next to the events, so they move
/// there, in one transaction with the record of the replay; any other group (the projector)
/// keeps them in Kafka, so they are committed there, inside the same transaction as the
/// record. Either way it refuses while the group has live members or workers hold its lock.
public struct Replay: Sendable {
    public struct Configuration: Sendable {
        public var brokers: String
        public var kafkaProperties: [String: String] = [:]
        /// The ingest role: it may move `bte.ingest_offsets` and append to `bte.replay_log`.
        public var databaseURL: String
        public var group: String
        public var target: ReplayTarget
        /// nil: the topics the group consumes.
        public var topics: [TopicSelection]?
        public var topicPrefix = ""
        public var by = "unknown"
        public var why = ""
        /// The clock for `--by-duration` (tests pin it).
        public var nowMilliseconds: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }

        public init(brokers: String, databaseURL: String, group: String, target: ReplayTarget) {
            self.brokers = brokers
            self.databaseURL = databaseURL
            self.group = group
            self.target = target
        }
    }

    public struct Plan: Sendable {
        public var group: String
        public var offsetsIn: OffsetHome
        public var target: ReplayTarget
        public var rows: [ReplayRow]
        /// Set once executed: the id of its `bte.replay_log` record.
        public var replayID: Int64?

        /// A table for people.
        public func table() -> String {
            var lines = [
                "group \(group) (offsets in \(offsetsIn == .postgresql ? "PostgreSQL" : "Kafka")), "
                    + "target \(target.flag)" + (replayID.map { ", applied as replay \($0)" } ?? ", dry run")
            ]
            let header = ["topic", "partition", "current", "target", "end", "reprocess", "skip"]
            var cells = [header]
            for row in rows {
                cells.append([
                    row.bounds.topic, String(row.bounds.partition), row.bounds.current.map(String.init) ?? "none",
                    String(row.target), String(row.bounds.end), String(row.reprocess), String(row.skip),
                ])
            }
            let widths = header.indices.map { column in cells.map { $0[column].count }.max() ?? 0 }
            for line in cells {
                lines.append(
                    line.enumerated().map { index, cell in
                        index == 0
                            ? cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
                            : String(repeating: " ", count: widths[index] - cell.count) + cell
                    }.joined(separator: "  "))
            }
            lines.append(
                "total: \(rows.reduce(0) { $0 + $1.reprocess }) to re-process, "
                    + "\(rows.reduce(0) { $0 + $1.skip }) to skip"
                    + (replayID == nil
                        ? " (dry run: --execute --why TEXT [--by NAME] moves the offsets to target, "
                            + "records who and why in bte.replay_log, and refuses while the group has live members)"
                        : ""))
            return lines.joined(separator: "\n")
        }

        /// JSON for scripts.
        public func json() -> String {
            let partitions = rows.map { row in
                "{\"topic\":\(JSONValue.quoted(row.bounds.topic)),\"partition\":\(row.bounds.partition),"
                    + "\"current\":\(row.bounds.current.map(String.init) ?? "null"),\"target\":\(row.target),"
                    + "\"low\":\(row.bounds.low),\"end\":\(row.bounds.end),"
                    + "\"reprocess\":\(row.reprocess),\"skip\":\(row.skip)}"
            }
            return "{\"group\":\(JSONValue.quoted(group)),\"offsets_in\":\"\(offsetsIn.rawValue)\","
                + "\"target\":\(JSONValue.quoted(target.flag)),\"executed\":\(replayID != nil),"
                + "\"replay_id\":\(replayID.map(String.init) ?? "null"),"
                + "\"partitions\":[\(partitions.joined(separator: ","))]}"
        }
    }

    public let configuration: Configuration

    public init(configuration: Configuration) { self.configuration = configuration }

    /// The topics the group consumes: the sink's output topics, an ingest group's inputs, or a
    /// projector group's.
    func defaultTopics(_ home: OffsetHome, sink: Bool) -> [TopicSelection] {
        if sink {
            return [OutputTopic.signals, .behavioralVectors, .insights].map {
                TopicSelection(topic: $0.name(prefix: configuration.topicPrefix))
            }
        }
        let kinds: [InputKind] = home == .postgresql ? InputKind.allCases : [.business, .interaction]
        return kinds.map { TopicSelection(topic: $0.name(prefix: configuration.topicPrefix)) }
    }

    /// Where the group keeps its offsets: PostgreSQL for an ingest or sink group (`bte-ingest`,
    /// `bte-sink`, or any group with offsets in `bte.ingest_offsets`), Kafka otherwise.
    func home(_ store: ReplayStore) throws -> OffsetHome {
        if configuration.group == "bte-ingest" || configuration.group == "bte-sink" { return .postgresql }
        return try store.storesOffsets(group: configuration.group) ? .postgresql : .kafka
    }

    /// A sink group: `bte-sink`, or a group whose stored offsets are all of output topics.
    func isSink(_ store: ReplayStore) throws -> Bool {
        if configuration.group == "bte-sink" { return true }
        let outputs = Set(
            [OutputTopic.signals, .behavioralVectors, .insights].map { $0.name(prefix: configuration.topicPrefix) })
        let stored = Set(try store.ingestOffsets(group: configuration.group).keys.map(\.topic))
        return !stored.isEmpty && stored.isSubset(of: outputs)
    }

    /// What `--execute` would do, read now; changes nothing.
    public func plan() throws -> Plan {
        let store = try ReplayStore(url: configuration.databaseURL)
        let inspector = try OffsetInspector(
            brokers: configuration.brokers, properties: configuration.kafkaProperties, group: configuration.group)
        return try plan(store: store, inspector: inspector)
    }

    private func plan(store: ReplayStore, inspector: OffsetInspector) throws -> Plan {
        let home = try home(store)
        let partitions = try inspector.partitions(
            configuration.topics ?? defaultTopics(home, sink: home == .postgresql && isSink(store)))
        let current: [KafkaTopicPartition: Int64]
        switch home {
        case .postgresql:
            current = try store.ingestOffsets(group: configuration.group).offsets(of: partitions)
        case .kafka:
            current = try inspector.committed(partitions)
        }
        let bounds = try inspector.bounds(partitions)
        var atTime: [KafkaTopicPartition: Int64?] = [:]
        if let instant = configuration.target.instant(nowMilliseconds: configuration.nowMilliseconds()) {
            atTime = try inspector.offsets(at: instant, partitions, bounds: bounds)
        }
        let rows = partitions.map { tp in
            let (low, end) = bounds[tp] ?? (0, 0)
            let partition = PartitionBounds(
                topic: tp.topic, partition: tp.partition, current: current[tp], low: low, end: end)
            return ReplayRow(
                bounds: partition, target: configuration.target.offset(for: partition, atTime: atTime[tp]))
        }
        return Plan(group: configuration.group, offsetsIn: home, target: configuration.target, rows: rows)
    }

    /// Plans and applies every partition in one step; refuses while the group has live members
    /// (Kafka) or workers holding its lock (PostgreSQL).
    public func execute() throws -> Plan {
        let store = try ReplayStore(url: configuration.databaseURL)
        let inspector = try OffsetInspector(
            brokers: configuration.brokers, properties: configuration.kafkaProperties, group: configuration.group)
        if let state = try inspector.groupState(configuration.group), state.members > 0 {
            throw OperationsError(
                .groupActive,
                "group \(configuration.group) has \(state.members) live member\(state.members == 1 ? "" : "s") "
                    + "(state \(state.state)); stop its workers first")
        }
        var plan = try plan(store: store, inspector: inspector)
        let request = ReplayRequest(
            group: configuration.group, offsetsIn: plan.offsetsIn, target: configuration.target.flag,
            by: configuration.by, why: configuration.why,
            changes: plan.rows.map {
                ReplayChange(
                    topic: $0.bounds.topic, partition: $0.bounds.partition, before: $0.bounds.current, after: $0.target)
            })
        let home = plan.offsetsIn
        let rows = plan.rows
        plan.replayID = try store.apply(request) {
            guard home == .kafka else { return }
            try inspector.commit(
                Dictionary(
                    uniqueKeysWithValues: rows.map {
                        (KafkaTopicPartition(topic: $0.bounds.topic, partition: $0.bounds.partition), $0.target)
                    }))
        }
        return plan
    }
}

import BTECompute
import BTEDomain
import BTEStore
import Kafka
import Logging
import Metrics

/// What the projector keeps between batches, in memory only: each workspace's and user's
/// partial aggregates and the successes of every workspace (peers). It is a cache of the logs:
/// an entity missing from it (never seen, evicted, or dropped after a failed batch or a
/// rebalance) is rebuilt from the rows stored before the batch, so the outputs never depend on
/// whether it was there.
final class ProjectionState {
    struct Limits {
        var workspaces = 10_000
        var users = 200_000
    }

    private var workspaces: [String: WorkspaceState] = [:]
    private var users: [UserKey: UserState] = [:]
    private var lastUsed: [String: Int] = [:]
    private var lastUsedUsers: [UserKey: Int] = [:]
    private var peers: PeerIndex?
    private var peerCursor: [Int32: Int64] = [:]
    private var batch = 0
    let limits: Limits
    /// Rebalance generation the state was built under.
    var generation = 0

    private let loadedWorkspaces: Counter
    private let loadedUsers: Counter
    private let heldEntities: Gauge

    init(limits: Limits, metrics: any MetricsFactory) {
        self.limits = limits
        loadedWorkspaces = Counter(
            label: "bte_projector_state_loads_total", dimensions: [("entity", "workspace")], factory: metrics)
        loadedUsers = Counter(
            label: "bte_projector_state_loads_total", dimensions: [("entity", "user")], factory: metrics)
        heldEntities = Gauge(label: "bte_projector_state_entities", factory: metrics)
    }

    /// Forgets everything: the next batch rebuilds what it touches from the logs.
    func reset() {
        workspaces = [:]
        users = [:]
        lastUsed = [:]
        lastUsedUsers = [:]
        peers = nil
        peerCursor = [:]
    }

    /// Inside the reader's snapshot: applies the rows the batch stored, in log order, and returns
    /// each entity's outputs as of every event (its newest event time so far).
    func project(
        ranges: [OffsetRange], reader: HistoryReader, businessTopic: String, ingestGroup: String,
        thresholds: Thresholds, topicPrefix: String, failures: ComputationFailures, clock: inout StageClock
    ) throws -> ProjectionOutputs {
        batch += 1
        try refreshPeers(reader: reader, businessTopic: businessTopic, ingestGroup: ingestGroup)
        clock.lap("peers")
        let peers = self.peers ?? PeerIndex([])
        let rows = try reader.rows(in: ranges)
        clock.lap("rows")
        try load(rows: rows, ranges: ranges, reader: reader)
        clock.lap("load")

        var outputs = ProjectionOutputs(thresholdsVersion: thresholds.version)
        let computer = SignalComputer(thresholds: thresholds)
        let vectorsTopic = OutputTopic.behavioralVectors.name(prefix: topicPrefix)
        for (_, row) in rows {
            switch row {
            case .business(let event):
                workspaces[event.workspaceID]?.apply(event)
                emit(workspace: event.workspaceID, computer: computer, peers: peers, failures: failures, into: &outputs)
            case .action(let action):
                workspaces[action.workspaceID]?.apply(action)
                emit(
                    workspace: action.workspaceID, computer: computer, peers: peers, failures: failures, into: &outputs)
            case .interaction(let interaction):
                users[interaction.user]?.apply(interaction)
                guard let state = users[interaction.user], let vector = state.vector() else {
                    continue
                }
                let bytes = vector.json(thresholdsVersion: thresholds.version, computedFrom: vector.totalInteractions)
                outputs.vectors.append(
                    KafkaOutgoingMessage(topic: vectorsTopic, key: Array(interaction.user.topicKey.utf8), value: bytes))
            }
        }
        evict()
        heldEntities.record(workspaces.count + users.count)
        clock.lap("compute")
        return outputs
    }

    private func emit(
        workspace: String, computer: SignalComputer, peers: PeerIndex, failures: ComputationFailures,
        into outputs: inout ProjectionOutputs
    ) {
        guard let state = workspaces[workspace], let micros = state.asOf else { return }
        let asOf = Timestamp(microseconds: micros)
        let (records, failed) = computer.records(
            workspaceID: workspace, aggregates: state.signalAggregates(thresholds: computer.thresholds, peers: peers),
            asOf: asOf)
        outputs.signals += records
        outputs.failures += failures.report(workspaceID: workspace, failed: failed, asOf: asOf)
        let insights = state.insightAggregates(peers: peers)
        for insight in insights.insights() {
            let record = InsightRecord(
                workspaceID: workspace, insight: insight, asOf: asOf, thresholdsVersion: computer.thresholds.version,
                computedFrom: insights.used)
            outputs.insights.append(record)
        }
    }

    /// Rebuilds, before the first batch, the workspaces stored in `partitions` of the business
    /// topic that were active in the 30 days before its newest event (at most the limit, the most
    /// recent first), and the peers: the work a cold batch would otherwise do while its events wait.
    /// Returns how many workspaces it built.
    func warm(
        reader: HistoryReader, businessTopic: String, ingestGroup: String, committed: [Int32: Int64],
        progress: (_ built: Int, _ of: Int) -> Void
    ) throws -> Int {
        reset()
        try refreshPeers(reader: reader, businessTopic: businessTopic, ingestGroup: ingestGroup)
        guard !committed.isEmpty else { return 0 }
        let ranges = committed.map {
            OffsetRange(topic: businessTopic, partition: $0.key, from: $0.value, to: $0.value)
        }
        let active = try reader.recentWorkspaces(
            topic: businessTopic, partitions: committed.keys.sorted(), limit: limits.workspaces)
        // In chunks: each query's rows stay small, and a long rebuild says how far it is.
        var built = 0
        while built < active.count {
            let chunk = Array(active[built..<min(built + 200, active.count)])
            for workspace in chunk { workspaces[workspace] = WorkspaceState(workspaceID: workspace) }
            for row in try reader.workspacePrefix(chunk, before: ranges) {
                switch row {
                case .business(let event): workspaces[event.workspaceID]?.apply(event)
                case .action(let action): workspaces[action.workspaceID]?.apply(action)
                case .interaction: break
                }
            }
            built += chunk.count
            loadedWorkspaces.increment(by: chunk.count)
            progress(built, active.count)
        }
        return active.count
    }

    /// Builds the entities the batch touches and the state lacks from the rows stored before it.
    private func load(rows: [(LogPosition, LoggedRow)], ranges: [OffsetRange], reader: HistoryReader) throws {
        var coldWorkspaces: Set<String> = []
        var coldUsers: Set<UserKey> = []
        for (_, row) in rows {
            switch row {
            case .business(let event):
                lastUsed[event.workspaceID] = batch
                if workspaces[event.workspaceID] == nil { coldWorkspaces.insert(event.workspaceID) }
            case .action(let action):
                lastUsed[action.workspaceID] = batch
                if workspaces[action.workspaceID] == nil { coldWorkspaces.insert(action.workspaceID) }
            case .interaction(let interaction):
                lastUsedUsers[interaction.user] = batch
                if users[interaction.user] == nil { coldUsers.insert(interaction.user) }
            }
        }
        if !coldWorkspaces.isEmpty {
            for workspace in coldWorkspaces { workspaces[workspace] = WorkspaceState(workspaceID: workspace) }
            for row in try reader.workspacePrefix(coldWorkspaces.sorted(), before: ranges) {
                switch row {
                case .business(let event): workspaces[event.workspaceID]?.apply(event)
                case .action(let action): workspaces[action.workspaceID]?.apply(action)
                case .interaction: break
                }
            }
            loadedWorkspaces.increment(by: coldWorkspaces.count)
        }
        if !coldUsers.isEmpty {
            for user in coldUsers { users[user] = UserState(user: user) }
            for interaction in try reader.userPrefix(coldUsers.sorted(), before: ranges) {
                users[interaction.user]?.apply(interaction)
            }
            loadedUsers.increment(by: coldUsers.count)
        }
    }

    /// Every success stored since the last batch, of every partition: ingest's stored offsets,
    /// read in the same snapshot as the rows, say exactly what is complete.
    private func refreshPeers(reader: HistoryReader, businessTopic: String, ingestGroup: String) throws {
        let stored = try reader.storedOffsets(group: ingestGroup, topic: businessTopic)
        guard var index = peers else {
            peers = PeerIndex(try reader.successes(in: nil))
            peerCursor = stored
            return
        }
        let ranges = stored.sorted { $0.key < $1.key }.compactMap { partition, next -> OffsetRange? in
            let from = peerCursor[partition] ?? 0
            return next > from ? OffsetRange(topic: businessTopic, partition: partition, from: from, to: next) : nil
        }
        if !ranges.isEmpty {
            for success in try reader.successes(in: ranges) { index.insert(success) }
            peers = index
        }
        peerCursor = stored
    }

    /// Drops the least recently used entities beyond the limits (they are rebuilt when touched).
    private func evict() {
        if workspaces.count > limits.workspaces {
            let drop = workspaces.keys.sorted { (lastUsed[$0] ?? 0) < (lastUsed[$1] ?? 0) }
                .prefix(workspaces.count - limits.workspaces * 9 / 10)
            for workspace in drop {
                workspaces[workspace] = nil
                lastUsed[workspace] = nil
            }
        }
        if users.count > limits.users {
            let drop = users.keys.sorted { (lastUsedUsers[$0] ?? 0) < (lastUsedUsers[$1] ?? 0) }
                .prefix(users.count - limits.users * 9 / 10)
            for user in drop {
                users[user] = nil
                lastUsedUsers[user] = nil
            }
        }
    }
}

import BTECompute
import BTEDomain
import BTEStore
import Kafka
import Logging
import Metrics

extension LoggedRow {
    /// Whether the row's outputs count other workspaces' successes (a workspace's rows do).
    var countsPeers: Bool {
        if case .interaction = self { return false }
        return true
    }
}

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
    /// Each workspace's delivery decisions so far (its users' caps, mutes, waiting interrupts).
    private var deliveries: [String: DeliveryEngine] = [:]
    private var users: [UserKey: UserState] = [:]
    private var lastUsed: [String: Int] = [:]
    private var lastUsedUsers: [UserKey: Int] = [:]
    private var peers: PeerIndex?
    private var peerCursor: [Int32: Int64] = [:]
    /// Which successes each row counts (the log's order of successes).
    private var peerClock = PeerClock()
    /// The newest erasure seen; nil until the first batch reads it.
    private var erasureCursor: Int64?
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
        deliveries = [:]
        users = [:]
        lastUsed = [:]
        lastUsedUsers = [:]
        peers = nil
        peerCursor = [:]
        peerClock = PeerClock()
        erasureCursor = nil
    }

    /// Drops the workspaces in which a person was erased since the last batch, with their users:
    /// what was built from the erased person's rows goes, and the next batch that touches them
    /// rebuilds them from the logs, which no longer name the person.
    private func forgetErased(reader: HistoryReader) throws {
        let (newest, erased) = try reader.erasures(after: erasureCursor)
        defer { erasureCursor = newest }
        guard erasureCursor != nil, !erased.isEmpty else { return }
        for workspace in erased {
            workspaces[workspace] = nil
            deliveries[workspace] = nil
            lastUsed[workspace] = nil
        }
        for user in users.keys where erased.contains(user.workspaceID) {
            users[user] = nil
            lastUsedUsers[user] = nil
        }
    }

    /// Inside the reader's snapshot: applies the rows the batch stored, in log order, and returns
    /// each entity's outputs as of every event (its newest event time so far).
    func project(
        ranges: [OffsetRange], reader: HistoryReader, businessTopic: String, ingestGroup: String,
        thresholds: Thresholds, topicPrefix: String, failures: ComputationFailures,
        traces: [LogPosition: TraceParent] = [:], clock: inout StageClock
    ) throws -> ProjectionOutputs {
        batch += 1
        try forgetErased(reader: reader)
        try refreshPeers(reader: reader, businessTopic: businessTopic, ingestGroup: ingestGroup)
        clock.lap("peers")
        let peers = self.peers ?? PeerIndex([])
        let rows = try reader.rows(in: ranges)
        clock.lap("rows")
        let book = DeliveryRuleBook(thresholds: thresholds)
        try load(rows: rows, ranges: ranges, reader: reader, book: book, thresholdsVersion: thresholds.version)
        clock.lap("load")

        var outputs = ProjectionOutputs(thresholdsVersion: thresholds.version)
        let computer = SignalComputer(thresholds: thresholds)
        let vectorsTopic = OutputTopic.behavioralVectors.name(prefix: topicPrefix)
        // Consent to a profile, of everyone the batch may publish or end a vector for.
        var withdrawals: [UserKey: Int64] = [:]
        var profiled: Set<UserKey> = []
        for (_, row) in rows {
            switch row {
            case .interaction(let interaction): profiled.insert(interaction.user)
            case .business(let event):
                if let user = Self.profileWithdrawal(event) {
                    withdrawals[user] = max(withdrawals[user] ?? .min, event.timestamp.microseconds)
                    profiled.insert(user)
                }
            case .action: break
            }
        }
        let consent = try reader.consent(to: .behavioralProfile, of: profiled)
        var vectored: Set<UserKey> = []
        clock.lap("consent")
        for (position, row) in rows {
            let counts = outputs.counts
            defer {
                // The records this event caused carry its trace (one context per event).
                if !traces.isEmpty { outputs.trace(since: counts, traces[position]) }
            }
            let peers = row.countsPeers ? peers.through(peerClock.bound(ofRowAt: position)) : peers
            switch row {
            case .business(let event):
                var published = ProjectionOutputs(thresholdsVersion: thresholds.version)
                outputs.deliveries += apply(event, peers: peers, book: book, version: thresholds.version) {
                    self.emit(
                        workspace: event.workspaceID, computer: computer, peers: peers, failures: failures,
                        into: &published)
                }
                outputs.signals += published.signals
                outputs.insights += published.insights
                outputs.failures += published.failures
            case .action(let action):
                outputs.deliveries += apply(action, peers: peers, book: book, version: thresholds.version)
                _ = emit(
                    workspace: action.workspaceID, computer: computer, peers: peers, failures: failures, into: &outputs)
            case .interaction(let interaction):
                users[interaction.user]?.apply(interaction)
                guard let state = users[interaction.user], let asOf = state.asOf,
                    consent[interaction.user]?.allows(at: asOf) ?? true, let vector = state.vector()
                else {
                    continue
                }
                let bytes = vector.json(thresholdsVersion: thresholds.version, computedFrom: vector.totalInteractions)
                outputs.vectors.append(
                    KafkaOutgoingMessage(topic: vectorsTopic, key: Array(interaction.user.topicKey.utf8), value: bytes))
                vectored.insert(interaction.user)
            }
        }
        // A person whose consent to a profile is withdrawn as of the batch's end (at their newest
        // event, or the withdrawal's time) gets a tombstone after the batch's vectors: the
        // compacted topic and the sink's table let go of their profile, whatever the order of
        // the withdrawal and their interactions in the logs.
        for user in vectored.union(withdrawals.keys).sorted() {
            let at = max(users[user]?.asOf ?? .min, withdrawals[user] ?? .min)
            guard consent[user]?.allows(at: at) == false else { continue }
            outputs.vectors.append(
                KafkaOutgoingMessage(topic: vectorsTopic, key: Array(user.topicKey.utf8), value: nil))
        }
        evict()
        heldEntities.record(workspaces.count + users.count)
        clock.lap("compute")
        return outputs
    }

    /// The person a business event withdraws consent to a behavioral profile for, if it does.
    static func profileWithdrawal(_ event: BusinessEvent) -> UserKey? {
        guard event.eventType == "consent.withdrawn",
            event.string("purpose") == ConsentTimeline.Purpose.behavioralProfile.rawValue,
            !UserKey.isErasedActor(event.actorUserID)
        else { return nil }
        return UserKey(workspaceID: event.workspaceID, userID: event.actorUserID)
    }

    /// The workspace's insights as of its state, with their records' ids.
    private func current(_ workspace: String, peers: PeerIndex, version: Int) -> [CurrentInsight] {
        insightRecords(workspace, peers: peers, version: version).map { CurrentInsight(id: $0.id, insight: $0.insight) }
    }

    /// The workspace's insight records as of its state.
    private func insightRecords(_ workspace: String, peers: PeerIndex, version: Int) -> [InsightRecord] {
        guard let state = workspaces[workspace], let micros = state.asOf else { return [] }
        let asOf = Timestamp(microseconds: micros)
        let aggregates = state.insightAggregates(peers: peers)
        return aggregates.insights().map { insight in
            InsightRecord(
                workspaceID: workspace, insight: insight, asOf: asOf, thresholdsVersion: version,
                computedFrom: aggregates.used)
        }
    }

    /// Applies a business event to its workspace's state and delivery decisions, in the order the
    /// decisions need: timers that end before the event with the insights before it, then the
    /// event. `after` (the publishing of the event's outputs) runs once the state holds the
    /// event and returns the insights as of it; without it they are computed when needed.
    private func apply(
        _ event: BusinessEvent, peers: PeerIndex, book: DeliveryRuleBook, version: Int,
        after: (() -> [CurrentInsight])? = nil
    ) -> [DeliveryDecision] {
        let workspace = event.workspaceID
        guard workspaces[workspace] != nil else { return [] }
        let rules = book[workspace]
        var engine = deliveries[workspace] ?? DeliveryEngine(workspaceID: workspace)
        let asOf = WorkspaceState.nextAsOf(after: workspaces[workspace]?.asOf, eventTime: event.timestamp.microseconds)
        var decisions = engine.advance(
            to: asOf, insights: { self.current(workspace, peers: peers, version: version) }, rules: rules)
        workspaces[workspace]?.apply(event)
        let published = after?()
        decisions += engine.observe(
            event, asOf: asOf, insights: { published ?? self.current(workspace, peers: peers, version: version) },
            rules: rules)
        deliveries[workspace] = engine
        return decisions
    }

    /// The same for a user action: activity of its actor, and time for the timers.
    private func apply(_ action: UserAction, peers: PeerIndex, book: DeliveryRuleBook, version: Int)
        -> [DeliveryDecision]
    {
        let workspace = action.workspaceID
        guard workspaces[workspace] != nil else { return [] }
        let rules = book[workspace]
        var engine = deliveries[workspace] ?? DeliveryEngine(workspaceID: workspace)
        let asOf = WorkspaceState.nextAsOf(after: workspaces[workspace]?.asOf, eventTime: action.timestamp.microseconds)
        let decisions = engine.advance(
            to: asOf, insights: { self.current(workspace, peers: peers, version: version) }, rules: rules)
        workspaces[workspace]?.apply(action)
        if !UserKey.isErasedActor(action.actorUserID) {
            engine.activity(of: action.actorUserID, at: asOf, rules: rules)
        }
        deliveries[workspace] = engine
        return decisions
    }

    /// Publishes the workspace's signals and insights as of its state; returns the insights.
    @discardableResult
    private func emit(
        workspace: String, computer: SignalComputer, peers: PeerIndex, failures: ComputationFailures,
        into outputs: inout ProjectionOutputs
    ) -> [CurrentInsight] {
        guard let state = workspaces[workspace], let micros = state.asOf else { return [] }
        let asOf = Timestamp(microseconds: micros)
        let (records, failed) = computer.records(
            workspaceID: workspace, aggregates: state.signalAggregates(thresholds: computer.thresholds, peers: peers),
            asOf: asOf)
        outputs.signals += records
        outputs.failures += failures.report(workspaceID: workspace, failed: failed, asOf: asOf)
        let insights = insightRecords(workspace, peers: peers, version: computer.thresholds.version)
        outputs.insights += insights
        return insights.map { CurrentInsight(id: $0.id, insight: $0.insight) }
    }

    /// Rebuilds, before the first batch, the workspaces stored in `partitions` of the business
    /// topic that were active in the 30 days before its newest event (at most the limit, the most
    /// recent first), and the peers: the work a cold batch would otherwise do while its events wait.
    /// Returns how many workspaces it built.
    func warm(
        reader: HistoryReader, businessTopic: String, ingestGroup: String, committed: [Int32: Int64],
        thresholds: Thresholds, progress: (_ built: Int, _ of: Int) -> Void
    ) throws -> Int {
        reset()
        let book = DeliveryRuleBook(thresholds: thresholds)
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
            replay(try reader.workspacePrefix(chunk, before: ranges), book: book, version: thresholds.version)
            built += chunk.count
            loadedWorkspaces.increment(by: chunk.count)
            progress(built, active.count)
        }
        return active.count
    }

    /// Builds the entities the batch touches and the state lacks from the rows stored before it.
    private func load(
        rows: [(LogPosition, LoggedRow)], ranges: [OffsetRange], reader: HistoryReader, book: DeliveryRuleBook,
        thresholdsVersion: Int
    ) throws {
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
            replay(
                try reader.workspacePrefix(coldWorkspaces.sorted(), before: ranges), book: book,
                version: thresholdsVersion)
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

    /// Rebuilds workspaces and their delivery decisions from their stored rows, in log order,
    /// publishing nothing: the decisions taken live are taken again, so the state is the same.
    private func replay(_ rows: [(LogPosition, LoggedRow)], book: DeliveryRuleBook, version: Int) {
        let all = self.peers ?? PeerIndex([])
        for (position, row) in rows {
            let peers = row.countsPeers ? all.through(peerClock.bound(ofRowAt: position)) : all
            switch row {
            case .business(let event): _ = apply(event, peers: peers, book: book, version: version)
            case .action(let action): _ = apply(action, peers: peers, book: book, version: version)
            case .interaction: break
            }
        }
    }

    /// Every success stored since the last batch, of every partition: ingest's stored offsets,
    /// read in the same snapshot as the rows, say exactly what is complete.
    private func refreshPeers(reader: HistoryReader, businessTopic: String, ingestGroup: String) throws {
        let stored = try reader.storedOffsets(group: ingestGroup, topic: businessTopic)
        // The commits first: every success the snapshot holds has its commit in it.
        peerClock.append(try reader.successCommits(group: ingestGroup, after: peerClock.newest))
        let clock = peerClock
        func ordered(_ found: [(LogPosition, PeerSuccess)]) -> [PeerSuccess] {
            found.map { position, success in
                var success = success
                success.order = clock.order(ofSuccessAt: position)
                return success
            }.sorted { $0.order < $1.order }
        }
        guard var index = peers else {
            peers = PeerIndex(ordered(try reader.successes(in: nil)))
            peerCursor = stored
            return
        }
        let ranges = stored.sorted { $0.key < $1.key }.compactMap { partition, next -> OffsetRange? in
            let from = peerCursor[partition] ?? 0
            return next > from ? OffsetRange(topic: businessTopic, partition: partition, from: from, to: next) : nil
        }
        if !ranges.isEmpty {
            let found = ordered(try reader.successes(in: ranges))
            // Unshared while inserting, or the first insert copies the whole index.
            peers = nil
            for success in found { index.insert(success) }
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
                deliveries[workspace] = nil
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

import BTEDomain

/// A business event as the computations see it (a row of `core.business_events`).
///
/// Immutable, and a class: the computations filter, group and sort events into many arrays,
/// and copying a reference costs one count where copying eight fields cost seven.
public final class BusinessEvent: Sendable, Equatable {
    public let eventID: String
    public let eventType: String
    public let entityID: String
    public let workspaceID: String
    public let subVerticalID: String
    public let actorUserID: String
    public let timestamp: Timestamp
    public let metadata: JSONValue

    public init(
        eventID: String, eventType: String, entityID: String, workspaceID: String, subVerticalID: String,
        actorUserID: String, timestamp: Timestamp, metadata: JSONValue = .object([])
    ) {
        self.eventID = eventID
        self.eventType = eventType
        self.entityID = entityID
        self.workspaceID = workspaceID
        self.subVerticalID = subVerticalID
        self.actorUserID = actorUserID
        self.timestamp = timestamp
        self.metadata = metadata
    }

    public static func == (lhs: BusinessEvent, rhs: BusinessEvent) -> Bool {
        lhs === rhs
            || (lhs.eventID == rhs.eventID && lhs.eventType == rhs.eventType && lhs.entityID == rhs.entityID
                && lhs.workspaceID == rhs.workspaceID && lhs.subVerticalID == rhs.subVerticalID
                && lhs.actorUserID == rhs.actorUserID && lhs.timestamp == rhs.timestamp && lhs.metadata == rhs.metadata)
    }

    /// A metadata number; nil when absent or not a JSON number (a missing number counts as 0).
    public func number(_ key: String) -> Double? {
        switch metadata[key] {
        case .number(let text)?: return Double(text)
        default: return nil
        }
    }

    public func string(_ key: String) -> String? {
        if case .string(let text)? = metadata[key] { return text }
        return nil
    }
}

/// A meaningful action by a user in a workspace (a row of `core.user_actions`).
public struct UserAction: Sendable, Equatable {
    public let actionID: String
    public let workspaceID: String
    public let actorUserID: String
    public let timestamp: Timestamp

    public init(actionID: String, workspaceID: String, actorUserID: String, timestamp: Timestamp) {
        self.actionID = actionID
        self.workspaceID = workspaceID
        self.actorUserID = actorUserID
        self.timestamp = timestamp
    }
}

/// Everything a workspace's signals depend on.
public struct WorkspaceHistory: Sendable {
    public let workspaceID: String
    /// The workspace's business events.
    public var events: [BusinessEvent]
    public var actions: [UserAction]
    /// Successful acts (of any workspace), with the action type of their given: the evidence for
    /// `missed_opportunity_count` and next-best-action. Shared between workspaces.
    public var peers: PeerIndex
    /// Sub-verticals the workspace works in, besides those of `events`.
    public var subVerticalIDs: Set<String>

    public init(
        workspaceID: String, events: [BusinessEvent] = [], actions: [UserAction] = [], peers: PeerIndex = PeerIndex([]),
        subVerticalIDs: Set<String> = []
    ) {
        self.workspaceID = workspaceID
        self.events = events
        self.actions = actions
        self.peers = peers
        self.subVerticalIDs = subVerticalIDs
    }

    public init(
        workspaceID: String, events: [BusinessEvent] = [], actions: [UserAction] = [], peerSuccesses: [PeerSuccess],
        subVerticalIDs: Set<String> = []
    ) {
        self.init(
            workspaceID: workspaceID, events: events, actions: actions, peers: PeerIndex(peerSuccesses),
            subVerticalIDs: subVerticalIDs)
    }
}

/// A `recommendation.acted` with outcome `success` in another workspace.
public struct PeerSuccess: Sendable, Equatable {
    public let workspaceID: String
    public let subVerticalID: String
    public let actionType: String
    public let timestamp: Timestamp
    /// Where the success falls in the log's order of successes (`PeerIndex.through`): 0 for one
    /// every event counts.
    public var order: Int64

    public init(workspaceID: String, subVerticalID: String, actionType: String, timestamp: Timestamp, order: Int64 = 0)
    {
        self.workspaceID = workspaceID
        self.subVerticalID = subVerticalID
        self.actionType = actionType
        self.timestamp = timestamp
        self.order = order
    }
}

/// Interpretation settings: stored as an audited log of changes, versioned, never learned.
public struct Thresholds: Sendable, Equatable {
    public var version: Int
    public var values: [String: Double]

    public static let defaults: [String: Double] = [
        "hesitation.expected_views": 3,
        "missed.ignore_after_days": 7,
    ].merging(DeliveryRules.defaults) { first, _ in first }

    /// Thresholds whose zero means "off" (every other one is positive).
    public static let mayBeZero: Set<String> = ["delivery.holdout_percent"]
    /// Upper bounds where a threshold has one.
    public static let upperBounds: [String: Double] = ["delivery.holdout_percent": 100]

    /// Workspace id (lowercase) → its overrides of in-context delivery's thresholds.
    public var workspaces: [String: [String: Double]]

    /// The thresholds a workspace may set for itself: in-context delivery's. The others shape
    /// signals that are compared across workspaces, so every workspace shares them.
    public static func mayOverride(_ key: String) -> Bool { key.hasPrefix("delivery.") }

    public init(
        version: Int = 1, values: [String: Double] = Thresholds.defaults, workspaces: [String: [String: Double]] = [:]
    ) {
        self.version = version
        self.values = values
        self.workspaces = workspaces
    }

    public func value(_ key: String) -> Double { values[key] ?? Thresholds.defaults[key] ?? 0 }

    /// The thresholds as a workspace has them: the shared ones with its overrides, same version.
    public func of(workspace: String) -> Thresholds {
        guard let overrides = workspaces[workspace], !overrides.isEmpty else { return self }
        return Thresholds(version: version, values: values.merging(overrides) { _, override in override })
    }
}

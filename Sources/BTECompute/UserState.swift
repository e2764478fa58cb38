import BTEDomain

/// A user's interactions in the window before its as_of, sorted: the vector is computed from
/// them alone, so an interaction costs the user's own 30 days, never anyone else's. as_of moves
/// with every interaction, in log order, as a workspace's does (``WorkspaceState/nextAsOf``).
public struct UserState: Sendable {
    public let user: UserKey
    public private(set) var asOf: Int64?
    public private(set) var interactions: [Interaction] = []

    public init(user: UserKey) {
        self.user = user
    }

    public mutating func apply(_ interaction: Interaction) {
        let time = interaction.timestamp.microseconds
        let asOf = WorkspaceState.nextAsOf(after: self.asOf, eventTime: time)
        self.asOf = asOf
        let start = asOf - SignalComputer.window
        if time > start {
            let key = (time, interaction.eventID)
            if let last = interactions.last, (last.timestamp.microseconds, last.eventID) > key {
                let index =
                    interactions.firstIndex { ($0.timestamp.microseconds, $0.eventID) > key } ?? interactions.count
                interactions.insert(interaction, at: index)
            } else {
                interactions.append(interaction)
            }
        }
        // What left the window never comes back.
        if let first = interactions.first, first.timestamp.microseconds <= start {
            interactions.removeFirst(
                interactions.firstIndex { $0.timestamp.microseconds > start } ?? interactions.count)
        }
    }

    /// The vector as of this state's as_of.
    public func vector() -> BehavioralVector? {
        guard let asOf else { return nil }
        return VectorComputer().compute(user: user, interactions: interactions, asOf: Timestamp(microseconds: asOf))
    }
}

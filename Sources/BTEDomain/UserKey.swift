/// A user's identity: the same `user_id` in two workspaces is two people, and nothing keyed
/// by a user ever mixes their data.
public struct UserKey: Hashable, Comparable, Sendable {
    /// Lowercase UUID text.
    public let workspaceID: String
    public let userID: String

    /// Interaction events that carry no `workspace_id` (single-tenant producers) belong to this
    /// workspace, the nil UUID; keys created for it (`bte keys create --workspace default`) read them.
    public static let defaultWorkspace = "00000000-0000-0000-0000-000000000000"

    /// The actor a business event or action names once its person is erased: `erased:` and the
    /// erased subject's id. It leads to nobody, and no actor id (a UUID) can look like it.
    public static let erasedActorPrefix = "erased:"

    /// Whether an actor id stands for an erased person: nothing is decided or kept about them.
    public static func isErasedActor(_ actorUserID: String) -> Bool { actorUserID.hasPrefix(erasedActorPrefix) }

    public init(workspaceID: String, userID: String) {
        self.workspaceID = canonicalUUID(workspaceID) ?? workspaceID
        self.userID = userID
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.workspaceID, lhs.userID) < (rhs.workspaceID, rhs.userID)
    }

    /// The vectors topic's message key: the workspace's 36-character UUID, `/`, the user id.
    /// A UUID has no `/`, so the first one splits the key unambiguously.
    public var topicKey: String { workspaceID + "/" + userID }

    /// The inverse of `topicKey`; nil for a key that is not one.
    public init?(topicKey: String) {
        guard let slash = topicKey.firstIndex(of: "/"),
            let workspace = canonicalUUID(String(topicKey[..<slash]))
        else { return nil }
        self.init(workspaceID: workspace, userID: String(topicKey[topicKey.index(after: slash)...]))
    }
}

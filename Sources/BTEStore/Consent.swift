import BTECompute
import BTEDomain
import Postgres

extension ConsentTimeline {
    /// The consent timelines to `purpose` of the given users, from the business log (consent
    /// events of their workspaces, read through the consent index); users without any are left
    /// out.
    static func read(_ purpose: Purpose, of users: some Collection<UserKey>, on connection: PostgresConnection) throws
        -> [UserKey: ConsentTimeline]
    {
        guard !users.isEmpty else { return [:] }
        let wanted = Set(users)
        let workspaces = Set(wanted.map(\.workspaceID)).sorted()
        var changes: [UserKey: [Change]] = [:]
        for row in try connection.execute(
            """
            SELECT workspace_id::text, actor_user_id, (extract(epoch FROM timestamp) * 1000000)::bigint,
                   event_id::text, event_type = 'consent.granted'
            FROM core.business_events_live
            WHERE event_type IN ('consent.granted', 'consent.withdrawn') AND workspace_id = ANY ($1::uuid[])
              AND metadata ->> 'purpose' = $2
            """, [arrayLiteral(workspaces), purpose.rawValue]
        ).rows {
            guard let workspace = row[0], let actor = row[1], let time = row[2].flatMap({ Int64($0) }),
                let id = row[3]
            else { continue }
            let user = UserKey(workspaceID: workspace, userID: actor)
            guard wanted.contains(user) else { continue }
            changes[user, default: []].append(Change(time: time, eventID: id, granted: row[4] == "t"))
        }
        return changes.mapValues { ConsentTimeline($0) }
    }
}

extension ProjectionReader {
    /// Whether `user` consents to `purpose` at `time` (the newest consent event at or before it).
    public func consents(_ user: UserKey, to purpose: ConsentTimeline.Purpose, at time: Timestamp) throws -> Bool {
        try ConsentTimeline.read(purpose, of: [user], on: connection)[user]?.allows(at: time.microseconds) ?? true
    }
}

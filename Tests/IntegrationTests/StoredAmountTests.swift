import BTEDomain
import BTEModels
import BTEStore
import BTETestSupport
import Foundation
import Postgres
import Testing

/// Amounts stored before ingest bounded them: one 1e400 (beyond float8) or 1e300 (past the
/// bound) must not make every read of revenue fail, nor count.
@Suite(.serialized) struct StoredAmountTests {
    static let workspace = "77777777-7777-4777-8777-777777777777"
    static let user = "77777777-7777-4777-8777-777777777701"
    static let experiment = "77777777-7777-4777-8777-7777777777e1"

    @Test func amountsBeyondTheBoundAreLeftOutOfRevenue() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let admin = try db.admin()
        let rows: [(String, String, String, String)] = [
            ("experiment.assigned", "experiment", "2026-01-10T00:00:00Z", #"{"arm":"treatment"}"#),
            ("order.created", "order", "2026-01-10T10:00:00Z", #"{"amount":100}"#),
            ("order.created", "order", "2026-01-10T11:00:00Z", #"{"amount":1e400}"#),
            ("order.created", "order", "2026-01-10T12:00:00Z", #"{"amount":20.5}"#),
            ("deal.won", "deal", "2026-01-10T13:00:00Z", #"{"amount":1e300}"#),
            ("deal.won", "deal", "2026-01-10T14:00:00Z", #"{"amount":-1e400}"#),
        ]
        for (offset, (type, entity, time, metadata)) in rows.enumerated() {
            try admin.execute(
                """
                INSERT INTO core.business_events (event_id, event_type, entity_type, entity_id, workspace_id,
                    sub_vertical_id, actor_user_id, timestamp, metadata, content_hash, source_topic, source_partition,
                    source_offset)
                VALUES (gen_random_uuid(), $1, $2, CASE WHEN $2 = 'experiment' THEN $3::uuid ELSE gen_random_uuid() END,
                    $4, $4, $5, $6::timestamptz, $7::jsonb, 0, 't', 0, $8)
                """,
                [type, entity, Self.experiment, Self.workspace, Self.user, time, metadata, String(offset)])
        }
        // 2026-01-10 is day 20,463 since 1970-01-01. Revenue: 100 + 20.5 = 120.5; the 1e400,
        // −1e400 and 1e300 are left out.
        let day = 20_463
        let store = try ModelStore(url: db.ingestURL)
        let kpis = try store.dailyKPIs(workspaceID: Self.workspace, fromDay: day, toDay: day, segment: nil)
        #expect(kpis.map(\.revenueUSD) == [120.5])
        let users = try store.activeUsers(workspaceID: Self.workspace, fromDay: day, toDay: day)
        #expect(users.map(\.userID) == [Self.user] && users.map(\.revenue) == [120.5])
        let units = try store.experimentUnits(
            workspaceID: Self.workspace, experimentID: Self.experiment, toDay: day, windowDays: 7, lookbackDays: 7)
        #expect(units.map(\.revenueAfter) == [120.5] && units.map(\.revenueBefore) == [0])
        // 3 orders + 2 deals after the assignment: an absurd amount is left out, not its event.
        #expect(units.map(\.ordersAfter) == [5])
    }

    /// The models read an interaction's workspace as the log does: a workspace id written in
    /// capitals is the workspace, and an event that names none is the default workspace's.
    @Test func interactionsCountForTheWorkspaceTheLogDerives() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let admin = try db.admin()
        try admin.execute("SELECT bte.ensure_interaction_partition('2026-01-01T00:00:00Z')")
        let rows: [(user: String, extra: String)] = [
            ("u-upper", #"{"workspace_id":"\#(Self.workspace.uppercased())"}"#),
            ("u-lower", #"{"workspace_id":"\#(Self.workspace)"}"#),
            ("u-none", "{}"),
        ]
        for (offset, row) in rows.enumerated() {
            try admin.execute(
                """
                INSERT INTO core.interaction_events (event_id, timestamp, event_type, user_id, session_id, extra,
                    content_hash, source_topic, source_partition, source_offset)
                VALUES (gen_random_uuid(), '2026-01-10T09:00:00Z', 'tap', $1, 's', $2::jsonb, 0, 'i', 0, $3)
                """, [row.user, row.extra, String(offset)])
        }
        // 2026-01-10 is day 20,463: two users of the workspace (either spelling), one of the
        // default workspace.
        let day = 20_463
        let store = try ModelStore(url: db.ingestURL)
        let kpis = try store.dailyKPIs(workspaceID: Self.workspace, fromDay: day, toDay: day, segment: nil)
        #expect(kpis.map(\.dailyActiveUsers) == [2])
        let users = try store.activeUsers(workspaceID: Self.workspace, fromDay: day, toDay: day)
        #expect(users.map(\.userID).sorted() == ["u-lower", "u-upper"])
        let defaults = try store.activeUsers(workspaceID: UserKey.defaultWorkspace, fromDay: day, toDay: day)
        #expect(defaults.map(\.userID) == ["u-none"])
    }
}

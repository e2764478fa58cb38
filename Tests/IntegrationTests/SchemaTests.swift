import BTECompute
import BTEDomain
import BTEStore
import BTETestSupport
import Postgres
import Testing

@Suite(.serialized) struct SchemaTests {
    /// UPDATE, DELETE and TRUNCATE fail on every log, for the owner (a superuser here) and for
    /// bte_ingest; bte_reader can't write anything.
    @Test func logsAreImmutable() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let admin = try db.admin()
        try admin.execute("SELECT bte.ensure_interaction_partition('2026-01-15T00:00:00Z')")
        let partition = "core.interaction_events_2026_01"
        try admin.execute(
            """
            INSERT INTO core.interaction_events (event_id, timestamp, event_type, user_id, content_hash, source_topic,
                source_partition, source_offset)
            VALUES ('7d1a4c2e-0000-4000-8000-000000000001', '2026-01-15T10:00:00Z', 'tap', 'u', 1, 't', 0, 0)
            """)
        let logs = LogTable.allCases.map(\.rawValue) + ["bte.rejected_events", partition]
        let ingest = try PostgresConnection(url: db.ingestURL)
        for log in logs {
            for connection in [admin, ingest] {
                for statement in [
                    "UPDATE \(log) SET source_offset = source_offset", "DELETE FROM \(log)", "TRUNCATE \(log)",
                ] {
                    let error = #expect(throws: PostgresError.self, "\(statement)") {
                        try connection.execute(statement)
                    }
                    // The trigger (P0001) or a missing privilege (42501) refuses it.
                    #expect(
                        error?.sqlState == "P0001" || error?.sqlState == "42501",
                        "\(statement): \(String(describing: error))")
                }
            }
            // The owner is stopped by the trigger itself, not by privileges.
            let ownerDelete = #expect(throws: PostgresError.self) { try admin.execute("DELETE FROM \(log)") }
            #expect(ownerDelete?.sqlState == "P0001")
        }
        #expect(try db.count("SELECT count(*) FROM core.interaction_events") == 1)
        // The records of replays and redrives are as immutable as the logs.
        for record in ["bte.replay_log", "bte.redrives"] {
            for connection in [admin, ingest] {
                for statement in ["UPDATE \(record) SET id = id", "DELETE FROM \(record)", "TRUNCATE \(record)"] {
                    let error = #expect(throws: PostgresError.self, "\(statement)") {
                        try connection.execute(statement)
                    }
                    #expect(
                        error?.sqlState == "P0001" || error?.sqlState == "42501",
                        "\(statement): \(String(describing: error))")
                }
            }
        }

        let reader = try PostgresConnection(url: db.readerURL)
        for table in LogTable.allCases.map(\.rawValue) + ["bte.rejected_events", "bte.ingest_offsets"] {
            let readOnly = #expect(throws: PostgresError.self) {
                try reader.execute("INSERT INTO \(table) DEFAULT VALUES")
            }
            #expect(readOnly?.sqlState == "25006", "\(table): read-only transaction by default")
        }
        // Even with read-only switched off, privileges refuse every write.
        try reader.execute("SET default_transaction_read_only = off")
        for table in LogTable.allCases.map(\.rawValue) + ["bte.rejected_events", "bte.ingest_offsets"] {
            let denied = #expect(throws: PostgresError.self) {
                try reader.execute("INSERT INTO \(table) DEFAULT VALUES")
            }
            #expect(denied?.sqlState == "42501", "\(table)")
        }
        #expect(throws: PostgresError.self) {
            try reader.execute("SELECT bte.ensure_interaction_partition('2026-02-01T00:00:00Z')")
        }
        #expect(try reader.execute("SELECT count(*) FROM core.workspace_state").rows == [["0"]])
    }

    /// Each log's columns are exactly the record schema's fields plus provenance, and a known
    /// field kept among the extra fields has a column derived from them, never written.
    @Test func logColumnsMatchRecordSchemas() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        for schema in Schemas.all {
            let parts = schema.table.rawValue.split(separator: ".").map(String.init)
            let rows = try db.admin().execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                    + "WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                [parts[0], parts[1]]
            ).rows
            // The person's logs then gained their subject and sealed content (both nullable: rows
            // stored before have neither).
            let people: [LogTable] = [.businessEvents, .userActions, .interactionEvents]
            let expected =
                schema.columnNames + ["ingested_at"] + schema.extraFields.map(\.name)
                + (people.contains(schema.table) ? ["subject", "sealed"] : [])
            #expect(rows.map { $0[0] ?? "" } == expected, "\(schema.table.rawValue)")
            for field in schema.extraFields {
                let generated = try db.admin().execute(
                    "SELECT is_generated FROM information_schema.columns "
                        + "WHERE table_schema = $1 AND table_name = $2 AND column_name = $3",
                    [parts[0], parts[1], field.name]
                ).rows
                #expect(generated == [["ALWAYS"]], "\(schema.table.rawValue).\(field.name)")
            }
            for field in schema.fields {
                let type = rows.first { $0[0] == field.name }?[1] ?? ""
                let sqlType = [
                    "uuid": "uuid", "text": "text", "timestamptz": "timestamp with time zone", "boolean": "boolean",
                    "integer": "integer", "jsonb": "jsonb",
                ][field.kind.sqlType]
                #expect(type == sqlType, "\(schema.table.rawValue).\(field.name)")
            }
        }
    }

    /// Migrations are recorded and a second run applies nothing.
    @Test func migrationsAreIdempotent() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let migrator = try Migrator()
        #expect(try migrator.apply(on: db.admin()) == [])
        #expect(try db.count("SELECT count(*) FROM bte.schema_migrations") == migrator.migrations.count)
    }

    /// core.workspace_state is derived from the logs.
    @Test func workspaceStateIsDerived() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let admin = try db.admin()
        let ws = "11111111-1111-4111-8111-111111111111"
        func event(_ id: Int, _ type: String, entity: String, at: String, metadata: String = "{}") throws {
            try admin.execute(
                """
                INSERT INTO core.business_events (event_id, event_type, entity_type, entity_id, workspace_id,
                    sub_vertical_id, actor_user_id, timestamp, metadata, content_hash, source_topic, source_partition,
                    source_offset)
                VALUES ($1, $2, split_part($2, '.', 1), $3, $4, $4, $4, $5, $6::jsonb, 0, 't', 0, $7)
                """, ["00000000-0000-4000-8000-00000000000\(id)", type, entity, ws, at, metadata, String(id)])
        }
        let r1 = "aaaaaaaa-0000-4000-8000-000000000001", r2 = "aaaaaaaa-0000-4000-8000-000000000002"
        try event(1, "recommendation.given", entity: r1, at: "2026-01-01T00:00:00Z")
        try event(2, "recommendation.given", entity: r2, at: "2026-01-02T00:00:00Z")
        try event(3, "recommendation.acted", entity: r1, at: "2026-01-03T00:00:00Z")
        try event(4, "deal.created", entity: ws, at: "2026-01-04T00:00:00Z", metadata: "{\"stage\":\"discovery\"}")
        try event(5, "deal.stage_changed", entity: ws, at: "2026-01-05T00:00:00Z", metadata: "{\"stage\":\"proposal\"}")
        try admin.execute(
            """
            INSERT INTO core.user_actions (action_id, action_type, workspace_id, actor_user_id, timestamp, content_hash,
                source_topic, source_partition, source_offset)
            VALUES ('00000000-0000-4000-8000-000000000009', 'note.added', $1, $1, '2026-01-06T00:00:00Z', 0, 't', 0, 9)
            """, [ws])
        let rows = try admin.execute(
            "SELECT current_sales_stage, pending_actions::text, last_recommendation_id::text, "
                + "last_action_taken_at AT TIME ZONE 'UTC', updated_at AT TIME ZONE 'UTC' FROM core.workspace_state"
        ).rows
        // r1 was acted on, r2 is pending; latest stage is "proposal"; r2 is the newest given.
        #expect(rows == [["proposal", "[\"\(r2)\"]", r2, "2026-01-06 00:00:00", "2026-01-06 00:00:00"]])
    }
}

@Suite(.serialized) struct ThresholdTests {
    @Test func changesAreAuditedVersionedAndImmutable() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let reader = try ThresholdStore(url: db.readerURL)
        // Defaults come from the migration: two changes, so version 2.
        let defaults = try reader.thresholds()
        #expect(defaults.version == 2)
        #expect(
            defaults.values
                == [
                    "hesitation.expected_views": 3, "missed.ignore_after_days": 7,
                    "delivery.min_spacing_seconds": 30, "delivery.interrupt_spacing_seconds": 900,
                    "delivery.busy_seconds": 2, "delivery.pause_seconds": 10, "delivery.max_deferral_seconds": 120,
                    "delivery.dwell_seconds": 30, "delivery.session_gap_minutes": 30, "delivery.max_per_session": 3,
                    "delivery.max_per_day": 6, "delivery.max_per_week": 20, "delivery.dismiss_suppression_hours": 72,
                    "delivery.fatigue_dismissals": 3, "delivery.mute_days": 30, "delivery.holdout_percent": 0,
                ])

        let admin = ThresholdStore(connection: try db.admin())
        #expect(
            try admin.set(key: "missed.ignore_after_days", value: 10, by: "admin-7", reason: "longer sales cycles") == 3
        )
        let changed = try reader.thresholds()
        #expect(changed.version == 3)
        #expect(changed.value("missed.ignore_after_days") == 10)
        let entry = try reader.current().entries.first { $0.key == "missed.ignore_after_days" }
        #expect(entry?.changedBy == "admin-7")
        #expect(entry?.reason == "longer sales cycles")

        // Unknown keys, non-positive values and missing who/why are refused.
        #expect(throws: StoreError.self) { try admin.set(key: "made.up", value: 1, by: "a", reason: "r") }
        #expect(throws: StoreError.self) {
            try admin.set(key: "missed.ignore_after_days", value: 0, by: "a", reason: "r")
        }
        #expect(throws: StoreError.self) {
            try admin.set(key: "missed.ignore_after_days", value: 3, by: "", reason: "r")
        }
        // The holdout share may be 0 (off) and at most 100.
        #expect(try admin.set(key: "delivery.holdout_percent", value: 5, by: "a", reason: "measure lift") == 4)
        #expect(try admin.set(key: "delivery.holdout_percent", value: 0, by: "a", reason: "lift measured") == 5)
        #expect(throws: StoreError.self) {
            try admin.set(key: "delivery.holdout_percent", value: 101, by: "a", reason: "r")
        }
        // Readers and ingest can't change thresholds; nobody can rewrite history.
        let readOnly = #expect(throws: PostgresError.self) {
            try reader.set(key: "missed.ignore_after_days", value: 3, by: "a", reason: "r")
        }
        #expect(readOnly?.sqlState == "25006")
        let ingest = try ThresholdStore(url: db.ingestURL)
        let denied = #expect(throws: PostgresError.self) {
            try ingest.set(key: "missed.ignore_after_days", value: 3, by: "a", reason: "r")
        }
        #expect(denied?.sqlState == "42501")
        for statement in [
            "UPDATE bte.threshold_changes SET value = 1", "DELETE FROM bte.threshold_changes",
            "TRUNCATE bte.threshold_changes",
            "UPDATE bte.interaction_event_ids SET content_hash = 0", "TRUNCATE bte.interaction_event_ids",
        ] {
            let error = #expect(throws: PostgresError.self, "\(statement)") { try db.admin().execute(statement) }
            #expect(error?.sqlState == "P0001", "\(statement)")
        }
        // Versions 4 and 5 were the holdout's two changes.
        #expect(try reader.thresholds().version == 5)
    }

    @Test func aWorkspaceMaySetItsOwnDeliveryThresholdsAndEndThem() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let reader = try ThresholdStore(url: db.readerURL)
        let admin = ThresholdStore(connection: try db.admin())
        let a = "AAAAAAAA-0000-4000-8000-000000000001"
        let b = "aaaaaaaa-0000-4000-8000-000000000002"
        // Versions 1 and 2 are the migration's defaults; each change below is the next.
        #expect(try admin.set(key: "delivery.max_per_day", value: 2, workspaceID: a, by: "ops", reason: "pilot") == 3)
        #expect(try admin.set(key: "delivery.max_per_day", value: 9, by: "ops", reason: "everyone") == 4)
        #expect(try admin.set(key: "delivery.dwell_seconds", value: 45, workspaceID: b, by: "ops", reason: "slow") == 5)
        let both = try reader.thresholds()
        #expect(both.version == 5)
        #expect(
            both.workspaces == [
                "aaaaaaaa-0000-4000-8000-000000000001": ["delivery.max_per_day": 2],
                "aaaaaaaa-0000-4000-8000-000000000002": ["delivery.dwell_seconds": 45],
            ])
        // A's own value beats the shared 9; B and every other workspace have the shared one.
        #expect(both.of(workspace: "aaaaaaaa-0000-4000-8000-000000000001").value("delivery.max_per_day") == 2)
        #expect(both.of(workspace: "aaaaaaaa-0000-4000-8000-000000000002").value("delivery.max_per_day") == 9)
        #expect(both.of(workspace: "aaaaaaaa-0000-4000-8000-000000000002").value("delivery.dwell_seconds") == 45)
        #expect(both.of(workspace: "aaaaaaaa-0000-4000-8000-000000000003").value("delivery.dwell_seconds") == 30)
        let book = DeliveryRuleBook(thresholds: both)
        #expect(book["aaaaaaaa-0000-4000-8000-000000000001"].perDay == 2)
        #expect(book["aaaaaaaa-0000-4000-8000-000000000002"].perDay == 9)
        #expect(book["aaaaaaaa-0000-4000-8000-000000000002"].dwell == 45_000_000)
        #expect(book["aaaaaaaa-0000-4000-8000-000000000003"].dwell == 30_000_000)
        // Who and why are kept for a workspace's change too.
        let entry = try reader.overrides(workspaceID: a)["aaaaaaaa-0000-4000-8000-000000000001"]?.first
        #expect(entry?.key == "delivery.max_per_day" && entry?.changedBy == "ops" && entry?.reason == "pilot")

        // Ending A's own value is a change of its own: A has the shared 9 again.
        #expect(try admin.unset(key: "delivery.max_per_day", workspaceID: a, by: "ops", reason: "pilot over") == 6)
        let ended = try reader.thresholds()
        #expect(ended.version == 6)
        #expect(ended.workspaces == ["aaaaaaaa-0000-4000-8000-000000000002": ["delivery.dwell_seconds": 45]])
        #expect(ended.of(workspace: "aaaaaaaa-0000-4000-8000-000000000001").value("delivery.max_per_day") == 9)

        // Refused: a shared-only key, a workspace that is no UUID, ending what is not set, bounds.
        for attempt in [
            { try admin.set(key: "missed.ignore_after_days", value: 3, workspaceID: a, by: "o", reason: "r") },
            { try admin.set(key: "delivery.max_per_day", value: 3, workspaceID: "acme", by: "o", reason: "r") },
            { try admin.set(key: "delivery.holdout_percent", value: 101, workspaceID: a, by: "o", reason: "r") },
            { try admin.set(key: "delivery.max_per_day", value: 0, workspaceID: a, by: "o", reason: "r") },
            { try admin.set(key: "delivery.max_per_day", value: 3, workspaceID: a, by: "", reason: "r") },
            { try admin.unset(key: "delivery.max_per_day", workspaceID: a, by: "o", reason: "r") },
        ] as [() throws -> Int] {
            #expect(throws: StoreError.self) { try attempt() }
        }
        // The database refuses a shared change without a value, and rewriting any change.
        let noValue = #expect(throws: PostgresError.self) {
            try db.admin().execute(
                "INSERT INTO bte.threshold_changes (threshold_key, changed_by, reason) "
                    + "VALUES ('delivery.max_per_day', 'o', 'r')")
        }
        #expect(noValue?.sqlState == "23514")
        let rewrite = #expect(throws: PostgresError.self) {
            try db.admin().execute("UPDATE bte.threshold_changes SET workspace_id = NULL")
        }
        #expect(rewrite?.sqlState == "P0001")
        #expect(try reader.thresholds().version == 6)
    }
}

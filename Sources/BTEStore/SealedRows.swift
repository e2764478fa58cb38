import BTEDomain

/// What a log row stores of a person's record: their identifiers replaced by their subject's
/// stand-ins, and their personal content (free-form fields, unknown fields, device, error text)
/// sealed under their subject's key. What the computations read (types, times, durations,
/// workspace, a business event's metadata) stays as sent.
struct SealedRow {
    var values: [String?]
    var extra: String?
    let subject: String
    let sealed: [UInt8]

    /// Per log: the columns replaced by the subject id, by a keyed stand-in, and moved into the
    /// sealed content (stored as `replacement`, NULL when none).
    private struct Plan {
        let identifier: String
        var pseudonymized: [String] = []
        var moved: [(column: String, replacement: String?)] = []
    }

    private static func plan(for table: LogTable) -> Plan? {
        switch table {
        case .interactionEvents:
            return Plan(
                identifier: "user_id", pseudonymized: ["session_id"],
                moved: [
                    ("device_id", nil), ("interaction_data", nil), ("error_message", nil), ("context", nil),
                ])
        case .businessEvents:
            return Plan(identifier: "actor_user_id")
        case .userActions:
            // Computations read no field of an action's metadata: all of it is the person's.
            return Plan(identifier: "actor_user_id", moved: [("metadata", "{}")])
        case .intentEvents, .chatEvents:
            return nil
        }
    }

    /// Whether rows of `table` are about a person (stored under their subject, sealed).
    static func seals(_ table: LogTable) -> Bool { plan(for: table) != nil }

    /// A plan with its columns found in the log's schema once: (index, name, JSON or text).
    private struct Columns {
        let identifier: (index: Int, name: String)?
        let pseudonymized: [(index: Int, name: String)]
        let moved: [(index: Int, name: String, json: Bool, replacement: String?)]
    }

    private static let columns: [LogTable: Columns] = {
        var all: [LogTable: Columns] = [:]
        for table in LogTable.allCases {
            guard let plan = plan(for: table) else { continue }
            let fields = RecordSchema.forTable(table).fields
            func index(_ name: String) -> Int? { fields.firstIndex { $0.name == name } }
            all[table] = Columns(
                identifier: index(plan.identifier).map { ($0, plan.identifier) },
                pseudonymized: plan.pseudonymized.compactMap { name in index(name).map { ($0, name) } },
                moved: plan.moved.compactMap { name, replacement in
                    index(name).map { i in
                        let json: Bool
                        switch fields[i].kind {
                        case .object, .array: json = true
                        default: json = false
                        }
                        return (i, name, json, replacement)
                    }
                })
        }
        return all
    }()

    /// The row to store for `record` under `subject`; nil for logs that name no person.
    static func make(_ record: ValidRecord, subject: Subject) throws -> SealedRow? {
        var nonces = NonceSource()
        return try make(record, subject: subject, nonces: &nonces)
    }

    /// The same, with nonces from the caller's source (one for a batch).
    static func make(_ record: ValidRecord, subject: Subject, nonces: inout NonceSource) throws -> SealedRow? {
        guard let columns = columns[record.table] else { return nil }
        var values = record.values
        // The sealed content: every replaced or moved column as sent, and the unknown fields.
        var content: [UInt8] = [UInt8(ascii: "{")]
        content.reserveCapacity(256)
        func add(_ name: String, _ value: String, json: Bool) {
            if content.count > 1 { content.append(UInt8(ascii: ",")) }
            JSONValue.writeString(name, into: &content)
            content.append(UInt8(ascii: ":"))
            if json { content.append(contentsOf: value.utf8) } else { JSONValue.writeString(value, into: &content) }
        }
        if let (i, name) = columns.identifier, i < values.count, let value = values[i] {
            add(name, value, json: false)
            values[i] = subject.id
        }
        for (i, name) in columns.pseudonymized where i < values.count {
            if let value = values[i] {
                add(name, value, json: false)
                values[i] = subject.pseudonym(value)
            }
        }
        for (i, name, json, replacement) in columns.moved where i < values.count {
            if let value = values[i] {
                add(name, value, json: json)
                values[i] = replacement
            }
        }
        if let extra = record.extra { add("extra", extra, json: true) }
        content.append(UInt8(ascii: "}"))
        // An interaction's workspace is among its unknown fields, and the log derives its
        // workspace column from them: that one stays.
        var kept: String?
        if record.table == .interactionEvents, let workspace = record.extraValues["workspace_id"] {
            kept = "{\"workspace_id\":" + JSONValue.quoted(workspace) + "}"
        }
        return SealedRow(
            values: values, extra: kept, subject: subject.id, sealed: try subject.seal(content, nonces: &nonces))
    }

    /// The record's sealed content opened: the columns it replaced or moved, as sent, and
    /// `extra`.
    static func open(_ sealed: [UInt8], subject: Subject) throws -> JSONValue {
        let text = try subject.open(sealed)
        guard let value = try? JSONParser.parse(text, maxDepth: 128), case .object = value else {
            throw StoreError(.sealingFailed, "a sealed record opened to something other than a JSON object")
        }
        return value
    }
}

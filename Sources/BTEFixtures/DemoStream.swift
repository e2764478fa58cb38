import BTEDomain
import Foundation
import Kafka

/// A deterministic, realistic stream of input messages: interaction, business and intent
/// events with re-deliveries and one message of every kind of bad input. It also says what
/// ingest must make of it, so a run (or a test) can check the outcome exactly.
public struct DemoStream: Sendable {
    public var messages: [KafkaOutgoingMessage] = []
    public var expectedStored: [LogTable: Int] = [:]
    public var expectedDuplicates: [LogTable: Int] = [:]
    public var expectedRejected: [RejectionCode: Int] = [:]

    /// What the demo's business producers emit: fixed here so the stream for a seed stays the
    /// same as the vocabulary grows (feedback, controls and incidents come from elsewhere).
    static let demoEventTypes = [
        "recommendation.given", "recommendation.acted", "recommendation.dismissed",
        "workflow.started", "workflow.completed", "workflow.abandoned",
        "page.viewed",
        "deal.created", "deal.stage_changed", "deal.won", "deal.lost",
        "order.created", "contact.engaged",
    ]

    public struct Options: Sendable {
        public var seed: UInt64 = 1
        /// Valid events, before re-deliveries and bad input.
        public var events = 10_000
        /// Every n-th valid message is sent a second time, unchanged.
        public var duplicateEvery = 50
        /// Add one message of each bad kind this many times.
        public var badRounds = 1
        /// Share of interaction events; the rest is split between business and intent topics.
        public var interactionShare = 0.7
        public var topicPrefix = ""
        /// How many days before `end` the events spread over.
        public var spanDays: Int64 = 45
        /// The workspaces' count and the seed of their ids (default: one per 400 events, from
        /// `seed`): two streams with the same pair share workspaces.
        public var workspaceCount: Int?
        public var workspaceSeed: UInt64?
        /// Events fall in the `spanDays` days before this instant.
        public var end = Timestamp(rfc3339: "2026-11-01T00:00:00Z") ?? Timestamp(microseconds: 0)
        /// The ingest message size limit the stream is made for (its oversize message exceeds it).
        public var maxMessageBytes = ValidationLimits().maxMessageBytes
        public init() {}
    }

    public var total: Int { messages.count }
    public var totalStored: Int { expectedStored.values.reduce(0, +) }
    public var totalRejected: Int { expectedRejected.values.reduce(0, +) }
    public var totalDuplicates: Int { expectedDuplicates.values.reduce(0, +) }

    static let demoVerbs = [
        "cbu": ["cbu.create", "cbu.list", "cbu.show", "cbu.update", "cbu.archive"],
        "kyc": ["kyc.open_case", "kyc.close_case", "kyc.request_docs", "kyc.escalate"],
        "entity": ["entity.show", "entity.link", "entity.search"],
    ]

    public init(options: Options) {
        var rng = SplitMix64(seed: options.seed)
        let users = (0..<max(options.events / 40, 3)).map { "user-\($0)" }
        var workspaces = (0..<max(options.events / 400, 2)).map { _ in rng.uuid() }
        if let count = options.workspaceCount {
            var own = SplitMix64(seed: options.workspaceSeed ?? options.seed)
            workspaces = (0..<max(count, 1)).map { _ in own.uuid() }
        }
        let subVerticals = [rng.uuid(), rng.uuid()]
        let actors = (0..<8).map { _ in rng.uuid() }
        var sessions: [String: String] = [:]
        var openRecommendations: [(workspace: String, entity: String)] = []
        /// Each workspace's first deal: its pages are about it (no draw, so the stream's other
        /// events stay those of the seed).
        var firstDeal: [String: String] = [:]
        let span: Int64 = max(options.spanDays, 1) * 86_400_000_000
        let interactionTopic = options.topicPrefix + InputKind.interaction.rawValue
        let businessTopic = options.topicPrefix + InputKind.business.rawValue
        let intentTopic = options.topicPrefix + InputKind.intent.rawValue
        var valid: [(KafkaOutgoingMessage, LogTable)] = []

        for index in 0..<options.events {
            let time = Timestamp(
                microseconds: options.end.microseconds - span + Int64(index) * span / Int64(max(options.events, 1))
                    + Int64(rng.next(1_000_000)))
            let roll = rng.unit()
            if roll < options.interactionShare {
                let user = users[rng.next(users.count)]
                if sessions[user] == nil || rng.next(20) == 0 { sessions[user] = "sess-" + rng.uuid().prefix(8) }
                let fields: [(String, String)] = [
                    ("event_id", q(rng.uuid())), ("timestamp", q(time.rfc3339)),
                    (
                        "event_type",
                        q(pick(["tap", "click", "expand", "collapse", "scroll", "pin", "action", "dismiss"], &rng))
                    ),
                    ("severity", q("info")), ("user_id", q(user)), ("session_id", q(sessions[user] ?? "")),
                    ("device_id", q("dev-" + user)), ("device_type", q(pick(Schemas.deviceTypes, &rng))),
                    ("capsule_id", q("capsule-\(rng.next(200))")),
                    ("capsule_type", q(pick(Schemas.capsuleTypes, &rng))),
                    ("capsule_category", q(pick(["sales", "ops", "finance", "support"], &rng))),
                    ("interaction_target", q(pick(Schemas.interactionTargets, &rng))),
                    ("duration_ms", String(50 + rng.next(5_000))),
                    ("time_since_last_interaction_ms", String(rng.next(60_000))),
                    ("success", rng.next(30) == 0 ? "false" : "true"),
                    (
                        "context",
                        "{\"screen\":\(q(pick(["home", "pipeline", "customer", "inbox"], &rng))),\"locale\":\"en-US\"}"
                    ),
                ]
                valid.append(
                    (
                        KafkaOutgoingMessage(topic: interactionTopic, key: Array(user.utf8), value: json(fields)),
                        .interactionEvents
                    ))
            } else if roll < options.interactionShare + (1 - options.interactionShare) * 0.7 {
                let workspace = workspaces[rng.next(workspaces.count)]
                let actor = actors[rng.next(actors.count)]
                if rng.next(5) == 0 {
                    let fields = [
                        ("record_type", q("user_action")), ("action_id", q(rng.uuid())),
                        ("action_type", q(pick(["note.added", "email.sent", "call.logged", "task.closed"], &rng))),
                        ("workspace_id", q(workspace)), ("actor_user_id", q(actor)), ("timestamp", q(time.rfc3339)),
                        ("metadata", "{}"),
                    ]
                    valid.append(
                        (
                            KafkaOutgoingMessage(topic: businessTopic, key: Array(workspace.utf8), value: json(fields)),
                            .userActions
                        ))
                    continue
                }
                var eventType = pick(Self.demoEventTypes, &rng)
                var entity = rng.uuid()
                var metadata = "{}"
                switch eventType {
                case "recommendation.given":
                    openRecommendations.append((workspace, entity))
                    metadata =
                        "{\"action_type\":\(q(pick(["upsell", "follow_up", "discount", "renewal"], &rng))),"
                        + "\"expected_value\":\(100 * (1 + rng.next(50)))}"
                case "recommendation.acted", "recommendation.dismissed":
                    guard !openRecommendations.isEmpty else {
                        eventType = "page.viewed"
                        break
                    }
                    let open = openRecommendations.remove(at: rng.next(openRecommendations.count))
                    entity = open.entity
                    if eventType == "recommendation.acted" {
                        metadata =
                            "{\"outcome\":\(q(rng.next(3) == 0 ? "failure" : "success")),"
                            + "\"realized_value\":\(50 * rng.next(100))}"
                    }
                    valid.append(
                        (
                            businessEvent(
                                eventType, entity: entity, workspace: open.workspace, subVertical: subVerticals[0],
                                actor: actor, time: time, metadata: metadata, rng: &rng, topic: businessTopic),
                            .businessEvents
                        ))
                    continue
                case "workflow.started", "workflow.completed", "workflow.abandoned", "deal.created",
                    "deal.stage_changed":
                    metadata = "{\"stage\":\(q(pick(["discovery", "proposal", "negotiation", "contract"], &rng)))}"
                case "order.created":
                    metadata =
                        "{\"customer_id\":\(q(rng.uuid())),\"amount\":\(10 + rng.next(900)).5,"
                        + "\"products\":[\"sku-\(rng.next(40))\"]}"
                default: break
                }
                if eventType == "deal.created", firstDeal[workspace] == nil { firstDeal[workspace] = entity }
                if eventType == "page.viewed" {
                    metadata =
                        firstDeal[workspace].map {
                            "{\"path\":\"/deals/\($0)\",\"subject_type\":\"deal\",\"subject_id\":\(q($0))}"
                        } ?? "{\"path\":\"/deals\"}"
                }
                valid.append(
                    (
                        businessEvent(
                            eventType, entity: entity, workspace: workspace, subVertical: subVerticals[rng.next(2)],
                            actor: actor, time: time, metadata: metadata, rng: &rng, topic: businessTopic),
                        .businessEvents
                    ))
            } else {
                let session = rng.uuid()
                if rng.next(4) == 0 {
                    let fields = [
                        ("record_type", q("chat_event")), ("event_id", q(rng.uuid())), ("ts", q(time.rfc3339)),
                        ("session_id", q(session)), ("turn_id", q("t\(rng.next(9))")),
                        ("assistant_message_hash", q(rng.hex64())), ("intent_event_id", q(rng.uuid())),
                    ]
                    valid.append(
                        (
                            KafkaOutgoingMessage(topic: intentTopic, key: Array(session.utf8), value: json(fields)),
                            .chatEvents
                        ))
                } else {
                    // Discovery ranks a few verbs of one domain; SemReg sometimes denies the last;
                    // users pick from a clarify; a newer prompt version clarifies less.
                    let domain = pick(["cbu", "kyc", "entity"], &rng)
                    let verbs = Self.demoVerbs[domain] ?? []
                    let candidates = (0..<(2 + rng.next(2))).map { verbs[($0 + rng.next(verbs.count)) % verbs.count] }
                    let version = 1 + rng.next(2)
                    let outcome = pick(
                        version == 1
                            ? [
                                "matched", "matched", "matched", "clarify_verb", "clarify_verb", "clarify_args",
                                "no_allowed_verbs", "error",
                            ]
                            : [
                                "matched", "matched", "matched", "matched", "matched", "clarify_verb", "clarify_args",
                                "error",
                            ], &rng)
                    let denied = rng.next(5) == 0 ? [candidates[candidates.count - 1]] : []
                    var fields = [
                        ("record_type", q("intent_event")), ("event_id", q(rng.uuid())), ("ts", q(time.rfc3339)),
                        ("session_id", q(session)), ("actor_id", q("analyst-\(rng.next(5))")),
                        ("entrypoint", q(pick(["chat", "mcp", "repl", "execute"], &rng))),
                        ("utterance_hash", q(rng.hex64())),
                        ("scope", q("\(domain):\(rng.next(50))")),
                        ("subject_ref_type", q(pick(["entity", "case", "none"], &rng))),
                        ("semreg_mode", q(rng.next(25) == 0 ? "fail_open" : "applied")),
                        ("verb_candidates_pre", "[" + candidates.map(q).joined(separator: ",") + "]"),
                        (
                            "verb_candidates_post",
                            "[" + candidates.filter { !denied.contains($0) }.map(q).joined(separator: ",") + "]"
                        ),
                        ("outcome", q(outcome)), ("macro_semreg_checked", "false"),
                        ("prompt_version", q("p-\(version)")),
                    ]
                    if !denied.isEmpty {
                        fields.append(("semreg_denied_verbs", "[" + denied.map(q).joined(separator: ",") + "]"))
                    }
                    if outcome == "matched" || outcome == "clarify_args" || outcome == "error" {
                        let userChoice = rng.next(4) == 0
                        fields.append(("chosen_verb_fqn", q(candidates[userChoice ? 1 : 0])))
                        fields.append(("selection_source", q(userChoice ? "user_choice" : "discovery")))
                        if rng.next(12) == 0 { fields.append(("forced_verb_fqn", q(verbs[rng.next(verbs.count)]))) }
                    }
                    if outcome == "error" { fields.append(("error_code", q(pick(["timeout", "dsl_parse"], &rng)))) }
                    valid.append(
                        (
                            KafkaOutgoingMessage(topic: intentTopic, key: Array(session.utf8), value: json(fields)),
                            .intentEvents
                        ))
                }
            }
        }

        for (index, (message, table)) in valid.enumerated() {
            messages.append(message)
            expectedStored[table, default: 0] += 1
            if options.duplicateEvery > 0, index % options.duplicateEvery == options.duplicateEvery - 1 {
                messages.append(message)
                expectedDuplicates[table, default: 0] += 1
            }
        }
        for _ in 0..<options.badRounds {
            for (message, code) in DemoStream.badMessages(
                topicPrefix: options.topicPrefix, maxMessageBytes: options.maxMessageBytes, rng: &rng,
                validSample: valid.first?.0)
            {
                let position = rng.next(messages.count + 1)
                // A conflicting duplicate must come after the original it contradicts.
                if code == .conflictingDuplicate {
                    messages.append(message)
                } else {
                    messages.insert(message, at: position)
                }
                expectedRejected[code, default: 0] += 1
            }
        }
    }

    private func businessEvent(
        _ type: String, entity: String, workspace: String, subVertical: String, actor: String, time: Timestamp,
        metadata: String, rng: inout SplitMix64, topic: String
    ) -> KafkaOutgoingMessage {
        let fields = [
            ("record_type", q("business_event")), ("event_id", q(rng.uuid())), ("event_type", q(type)),
            ("entity_type", q(String(type.split(separator: ".")[0]))), ("entity_id", q(entity)),
            ("workspace_id", q(workspace)), ("sub_vertical_id", q(subVertical)), ("actor_user_id", q(actor)),
            ("timestamp", q(time.rfc3339)), ("metadata", metadata), ("source", q("platform")),
        ]
        return KafkaOutgoingMessage(topic: topic, key: Array(workspace.utf8), value: json(fields))
    }

    /// One message per kind of bad input, with the code ingest must give it.
    static func badMessages(
        topicPrefix: String, maxMessageBytes: Int, rng: inout SplitMix64, validSample: KafkaOutgoingMessage?
    ) -> [(KafkaOutgoingMessage, RejectionCode)] {
        let interaction = topicPrefix + InputKind.interaction.rawValue
        let business = topicPrefix + InputKind.business.rawValue
        let intent = topicPrefix + InputKind.intent.rawValue
        let key = Array("user-bad".utf8)
        func ie(_ overrides: [(String, String)], drop: String? = nil) -> [UInt8] {
            var fields = [
                ("event_id", q(rng.uuid())), ("timestamp", q("2026-10-20T10:00:00.000Z")), ("event_type", q("tap")),
                ("user_id", q("user-bad")), ("session_id", q("sess-bad")),
            ]
            fields.removeAll { $0.0 == drop }
            for (name, value) in overrides {
                if let index = fields.firstIndex(where: { $0.0 == name }) {
                    fields[index].1 = value
                } else {
                    fields.append((name, value))
                }
            }
            return json(fields)
        }
        var bad: [(KafkaOutgoingMessage, RejectionCode)] = [
            (
                KafkaOutgoingMessage(topic: interaction, key: key, value: Array("{\"event_id\": oops".utf8)),
                .invalidJSON
            ),
            (KafkaOutgoingMessage(topic: interaction, key: key, value: Array("[1,2,3]".utf8)), .notAnObject),
            (KafkaOutgoingMessage(topic: interaction, key: key, value: ie([], drop: "user_id")), .missingField),
            (KafkaOutgoingMessage(topic: interaction, key: key, value: ie([("duration_ms", q("fast"))])), .wrongType),
            (
                KafkaOutgoingMessage(
                    topic: business, key: key,
                    value: Array("{\"record_type\":\"invoice\",\"event_id\":\"\(rng.uuid())\"}".utf8)),
                .unknownRecordType
            ),
            (
                KafkaOutgoingMessage(topic: interaction, key: key, value: ie([("event_type", q("teleport"))])),
                .unknownEnumValue
            ),
            (
                KafkaOutgoingMessage(topic: interaction, key: key, value: ie([("event_id", q("not-a-uuid"))])),
                .invalidUUID
            ),
            (
                KafkaOutgoingMessage(topic: interaction, key: key, value: ie([("timestamp", q("yesterday at noon"))])),
                .invalidTimestamp
            ),
            (
                KafkaOutgoingMessage(
                    topic: interaction, key: key, value: ie([("timestamp", q("2150-01-01T00:00:00Z"))])),
                .timestampOutOfRange
            ),
            (
                KafkaOutgoingMessage(topic: interaction, key: key, value: ie([("capsule_id", "\"cap\\u0000sule\"")])),
                .nulByte
            ),
            (
                KafkaOutgoingMessage(
                    topic: interaction, key: key, value: ie([("capsule_id", q(String(repeating: "c", count: 300)))])),
                .valueTooLong
            ),
            (
                KafkaOutgoingMessage(
                    topic: interaction, key: key,
                    value: ie([("capsule_id", "\"caf\u{E9}\"")]).map { $0 == 0xA9 ? 0xFF : $0 }), .invalidUTF8
            ),
            (
                KafkaOutgoingMessage(
                    topic: interaction, key: key,
                    value: ie([("context", "{\"blob\":\(q(String(repeating: "x", count: maxMessageBytes + 10)))}")])),
                .messageTooLarge
            ),
            (
                KafkaOutgoingMessage(
                    topic: interaction, key: key,
                    value: ie([("context", "{\"blob\":\(q(String(repeating: "y", count: 70_000)))}")])),
                .metadataTooLarge
            ),
            (
                KafkaOutgoingMessage(
                    topic: interaction, key: key,
                    value: ie([
                        ("context", String(repeating: "{\"a\":", count: 40) + "1" + String(repeating: "}", count: 40))
                    ])), .tooDeeplyNested
            ),
            (KafkaOutgoingMessage(topic: interaction, key: [], value: ie([])), .emptyKey),
            (KafkaOutgoingMessage(topic: interaction, key: key, value: nil), .tombstone),
            (
                KafkaOutgoingMessage(
                    topic: intent, key: key,
                    value: Array(
                        ("{\"record_type\":\"intent_event\",\"event_id\":\"\(rng.uuid())\","
                            + "\"ts\":\"2026-10-20T10:00:00Z\",\"session_id\":\"\(rng.uuid())\","
                            + "\"actor_id\":\"a\",\"entrypoint\":\"chat\",\"utterance_hash\":\"ABC\","
                            + "\"semreg_mode\":\"applied\",\"outcome\":\"matched\"}")
                            .utf8)), .invalidValue
            ),
            // A raw utterance field: personal data that must never be stored.
            (
                KafkaOutgoingMessage(
                    topic: intent, key: key,
                    value: Array(
                        ("{\"record_type\":\"intent_event\",\"event_id\":\"\(rng.uuid())\","
                            + "\"ts\":\"2026-10-20T10:00:00Z\",\"session_id\":\"\(rng.uuid())\","
                            + "\"actor_id\":\"a\",\"entrypoint\":\"chat\",\"utterance_hash\":\"\(rng.hex64())\","
                            + "\"semreg_mode\":\"applied\",\"outcome\":\"matched\","
                            + "\"utterance\":\"email jane@example.com\"}")
                            .utf8)), .piiViolation
            ),
            // Valid JSON that PostgreSQL can't store (numeric overflow in jsonb, in a business
            // event's metadata, which is stored as sent): found by bisection.
            (
                KafkaOutgoingMessage(
                    topic: business, key: Array("00000000-0000-4000-8000-00000000b0b0".utf8),
                    value: Array(
                        ("{\"record_type\":\"business_event\",\"event_id\":\"\(rng.uuid())\","
                            + "\"event_type\":\"deal.created\",\"entity_type\":\"deal\","
                            + "\"entity_id\":\"\(rng.uuid())\","
                            + "\"workspace_id\":\"00000000-0000-4000-8000-00000000b0b0\","
                            + "\"sub_vertical_id\":\"\(rng.uuid())\",\"actor_user_id\":\"\(rng.uuid())\","
                            + "\"timestamp\":\"2026-10-20T10:00:00Z\",\"metadata\":{\"n\":1e999999}}")
                            .utf8)), .storageRejected
            ),
        ]
        if let sample = validSample, let value = sample.value {
            // Same id as a valid event, different content.
            var text = String(decoding: value, as: UTF8.self)
            if let range = text.range(of: "\"severity\":\"info\"") {
                text.replaceSubrange(range, with: "\"severity\":\"warning\"")
            } else {
                text = String(text.dropLast()) + ",\"conflict\":true}"
            }
            bad.append(
                (
                    KafkaOutgoingMessage(topic: sample.topic, key: sample.key, value: Array(text.utf8)),
                    .conflictingDuplicate
                ))
        }
        return bad
    }
}

func q(_ text: String) -> String { JSONValue.quoted(text) }

func json(_ fields: [(String, String)]) -> [UInt8] { JSONValue.objectBytes(fields) }

func pick(_ values: [String], _ rng: inout SplitMix64) -> String { values[rng.next(values.count)] }

/// A small seeded generator: the same seed gives the same stream on every machine.
public struct SplitMix64: Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func nextUInt64() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func next(_ bound: Int) -> Int { Int(nextUInt64() % UInt64(max(bound, 1))) }
    public mutating func unit() -> Double { Double(nextUInt64() >> 11) / Double(1 << 53) }

    public mutating func uuid() -> String {
        let a = nextUInt64(), b = nextUInt64()
        let hex = String(a, radix: 16).leftPad(16) + String(b, radix: 16).leftPad(16)
        let c = Array(hex)
        // Version 4 / variant bits so the ids look like what producers send.
        return String(c[0..<8]) + "-" + String(c[8..<12]) + "-4" + String(c[13..<16]) + "-a" + String(c[17..<20]) + "-"
            + String(c[20..<32])
    }

    public mutating func hex64() -> String {
        (0..<4).map { _ in String(nextUInt64(), radix: 16).leftPad(16) }.joined()
    }
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}

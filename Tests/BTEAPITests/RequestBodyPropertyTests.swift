import BTEDomain
import BTEModelRuns
import BTEModels
import BTEOperations
import Foundation
import PropertyBased
import Testing

@testable import BTEAPI

/// Every JSON body the API reads comes from a caller: no body may trap a parser, and what a
/// parser refuses it refuses with its own typed error.
struct RequestBodyPropertyTests {
    static let workspace = "11111111-2222-4333-8444-555555555555"

    /// Names the bodies know, next to names they don't.
    static let names = [
        "record_type", "event_id", "timestamp", "event_type", "user_id", "session_id", "workspace_id",
        "element_id", "duration_ms", "metadata", "device_type", "entity_type", "entity_id", "sub_vertical_id",
        "actor_user_id", "amount", "expected_value", "realized_value", "verdict", "insight_id", "model",
        "segment", "since", "until", "nx", "disturbances", "ridge", "max_iterations", "forgetting", "run_id",
        "horizon", "controls", "scenarios", "seed", "guardrails", "constraints", "targets", "weekly_budget",
        "latency_max", "retention_min", "retention_probability", "kpi_weights", "control_bounds", "events",
        "workspace", "x", "",
    ]

    /// Values at the edges of what the parsers convert: numbers past Int64 and Double, dates of
    /// no calendar, the record types and vocabulary, text that is not what it claims.
    static let leaves: [JSONValue] = [
        .null, .bool(true), .bool(false), .number("0"), .number("-0"), .number("1"), .number("-1"),
        .number("1e400"), .number("-1e400"), .number("1e-400"), .number("9223372036854775807"),
        .number("9223372036854775808"), .number("-9223372036854775809"), .number("2147483648"),
        .number("123456789012345678901234567890"), .number("0.5"), .number("1.7976931348623157e308"),
        .number("1e12"), .number("1000000000001"), .number("14"), .number("3660"), .number("28"),
        .string(""), .string("interaction_event"), .string("business_event"), .string("user_action"),
        .string("intent_event"), .string("tap"), .string("insight.feedback"), .string("order.created"),
        .string("deal.won"), .string("state_space"), .string("rc"), .string("useful"), .string("not_useful"),
        .string("2026-03-01T10:00:00Z"), .string("9999-12-31T23:59:59.999999Z"), .string("0000-01-01T00:00:00Z"),
        .string("2026-02-30"), .string("2026-03-01"), .string("99999-01-01"), .string("90d"), .string("13w"),
        .string("9999999999999999999w"), .string("-5d"), .string("7d1a4c2e-0000-4000-8000-000000000001"),
        .string(workspace), .string("99999999-2222-4333-8444-555555555555"), .string("é\u{301}\u{1F600}"),
        .string(String(repeating: "a", count: 300)), .string("a\u{7F}b"),
    ]

    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func value(_ rng: inout SplitMix, depth: Int) -> JSONValue {
        let pick = Int.random(in: 0..<10, using: &rng)
        if depth >= 3 || pick < 6 { return leaves.randomElement(using: &rng) ?? .null }
        if pick < 8 { return object(&rng, depth: depth + 1) }
        return .array((0..<Int.random(in: 0...4, using: &rng)).map { _ in value(&rng, depth: depth + 1) })
    }

    /// An object with distinct member names (a repeated name is refused before any reader runs).
    static func object(_ rng: inout SplitMix, depth: Int) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        var seen = Set<String>()
        for _ in 0..<Int.random(in: 0...8, using: &rng) {
            let name = names.randomElement(using: &rng) ?? "x"
            if seen.insert(name).inserted { members.append((key: name, value: value(&rng, depth: depth))) }
        }
        return .object(members)
    }

    @Test func theParserNeverTrapsAndReadsBackWhatItWrites() async {
        await propertyCheck(count: 2_000, input: Gen.int64(in: 0...Int64.max)) { seed in
            var rng = SplitMix(state: UInt64(seed))
            let value = Self.object(&rng, depth: 0)
            // The canonical form (members sorted) is a fixed point: parsed and written again, the
            // same bytes.
            let bytes = value.canonicalBytes()
            #expect((try? JSONParser.parse(bytes))?.canonicalBytes() == bytes, "seed \(seed)")
            // The same bytes cut anywhere or with one byte changed: a value or a typed error.
            var broken = bytes
            if !broken.isEmpty {
                let at = Int.random(in: 0..<broken.count, using: &rng)
                broken[at] = UInt8.random(in: 0...255, using: &rng)
                _ = try? JSONParser.parse(broken)
                _ = try? JSONParser.parse(Array(bytes.prefix(at)))
            }
        }
        await propertyCheck(count: 2_000, input: Gen.int64(in: 0...Int64.max)) { seed in
            var rng = SplitMix(state: UInt64(seed))
            let bytes = (0..<Int.random(in: 0...64, using: &rng)).map { _ in
                Array("{}[]\",:0123456789.eE+-tfnul\\ \u{1}abc".utf8).randomElement(using: &rng) ?? 0
            }
            _ = try? JSONParser.parse(bytes)
        }
        // Nesting past the limit is refused, not followed into the stack.
        let deep = Array(repeating: UInt8(ascii: "["), count: 100_000)
        #expect(throws: JSONParseError.tooDeep(limit: 64)) { try JSONParser.parse(deep) }
    }

    /// Random collect bodies: each record is produced or refused with a code, never lost.
    @Test func collectBodiesAreAnsweredRecordByRecord() async {
        let collector = Collector(limits: ValidationLimits(), topicPrefix: "p.")
        await propertyCheck(count: 2_000, input: Gen.int64(in: 0...Int64.max)) { seed in
            var rng = SplitMix(state: UInt64(seed))
            let records = (0..<Int.random(in: 0...6, using: &rng)).map { _ in
                Int.random(in: 0..<4, using: &rng) == 0
                    ? Self.value(&rng, depth: 1) : Self.object(&rng, depth: 1)
            }
            let body = JSONValue.object([(key: "events", value: .array(records))]).canonicalBytes()
            switch collector.events(body: body, workspaceID: Self.workspace, mayGiveFeedback: Bool.random(using: &rng))
            {
            case .success(let batch):
                #expect(batch.messages.count + batch.rejected.count == records.count, "seed \(seed)")
                for message in batch.messages {
                    let value = try? JSONParser.parse(message.value ?? [])
                    #expect(value != nil, "seed \(seed)")
                }
            case .failure(let error):
                #expect(records.isEmpty, "seed \(seed): \(error)")
            }
            let record = Self.object(&rng, depth: 1).canonicalBytes()
            _ = collector.interaction(body: record, workspaceID: Self.workspace, idempotencyKey: nil)
            _ = collector.feedback(
                body: record, insightID: "7d1a4c2e-0000-4000-8000-000000000001", insightType: "engagement_drop",
                workspaceID: Self.workspace, subVerticalID: Self.workspace)
        }
    }

    /// Random model bodies: a request or a ModelError saying what is wrong, nothing else.
    @Test func modelBodiesAreRequestsOrModelErrors() async {
        await propertyCheck(count: 2_000, input: Gen.int64(in: 0...Int64.max)) { seed in
            var rng = SplitMix(state: UInt64(seed))
            let body = Self.object(&rng, depth: 0)
            let attempts: [() throws -> Void] = [
                { _ = try ModelRequests.estimate(body, workspaceID: Self.workspace, yesterday: 20_000) },
                { _ = try ModelRequests.simulate(body, forecast: false, workspaceID: Self.workspace) },
                { _ = try ModelRequests.simulate(body, forecast: true, workspaceID: Self.workspace) },
                { _ = try ModelRequests.recommend(body, workspaceID: Self.workspace) },
            ]
            for attempt in attempts {
                do {
                    try attempt()
                } catch {
                    #expect(error is ModelError, "seed \(seed): \(error)")
                }
            }
        }
    }

    /// Calendar dates: every real day of years 1–9999 reads back as the text it came from;
    /// any other text is nil, whatever its digits.
    @Test func datesAreRealCalendarDaysOnly() async {
        let first = ModelJSON.day(year: 1, month: 1, day: 1)
        let last = ModelJSON.day(year: 9_999, month: 12, day: 31)
        await propertyCheck(count: 2_000, input: Gen.int(in: first...last)) { day in
            #expect(ModelJSON.day(ModelJSON.date(day)) == day, "\(day)")
        }
        let characters = Gen.character(in: "0"..."9").string(of: 1...6)
        await propertyCheck(count: 2_000, input: characters, characters, characters) { y, m, d in
            let text = "\(y)-\(m)-\(d)"
            if let day = ModelJSON.day(text) { #expect(ModelJSON.date(day) == text, "\(text)") }
        }
        // 1 January of year 1 is 719,162 days before 1970; 31 December 9999 is 2,932,896 after.
        #expect(first == -719_162 && last == 2_932_896)
        #expect(ModelJSON.day("2025-02-29") == nil && ModelJSON.day("2024-02-29") == 19_782)
    }
}

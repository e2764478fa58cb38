import BTEDomain
import Foundation
import Testing

@testable import BTEAPI

struct CollectorTests {
    let collector = Collector(limits: ValidationLimits(), topicPrefix: "p.")
    static let workspace = "11111111-2222-4333-8444-555555555555"

    static func interaction(_ n: Int, _ extra: String = "") -> String {
        """
        {"record_type":"interaction_event","event_id":"7d1a4c2e-0000-4000-8000-00000000000\(n)",
         "timestamp":"2026-03-01T10:00:00Z","event_type":"tap","user_id":"u-\(n)","session_id":"s"\(extra)}
        """
    }

    @Test func eachRecordStandsAloneAndInteractionsCarryTheKeysWorkspace() throws {
        let body = """
            {"events":[\(Self.interaction(1)), 42, {"record_type":"nope"},
             \(Self.interaction(2, #","workspace_id":"99999999-2222-4333-8444-555555555555""#)),
             {"record_type":"interaction_event","event_id":"7d1a4c2e-0000-4000-8000-000000000003",
              "timestamp":"2026-03-01T10:00:00Z","user_id":"u-3","session_id":"s"}]}
            """
        let batch = try collector.events(body: Array(body.utf8), workspaceID: Self.workspace, mayGiveFeedback: false)
            .get()
        #expect(
            batch.rejected == [
                .init(index: 1, code: "not_an_object", message: "not an object"),
                .init(index: 2, code: "unknown_record_type", message: "record_type names no known record type"),
                .init(index: 3, code: "workspace_mismatch", message: "workspace_id is not the key's workspace"),
                .init(index: 4, code: "missing_field", message: "event_type is required"),
            ], "\(batch.rejected)")
        #expect(batch.messages.count == 1)
        let message = try #require(batch.messages.first)
        #expect(message.topic == "p.bte.interaction-events.v1")
        #expect(message.key == Array("u-1".utf8))
        let value = try JSONParser.parse(message.value ?? [])
        #expect(value["workspace_id"] == .string(Self.workspace))
    }

    /// A null workspace_id would put the event in the default workspace: it gets the key's.
    @Test func nullWorkspaceOfAnInteractionIsTheKeys() throws {
        let body = "{\"events\":[\(Self.interaction(1, #","workspace_id":null"#))]}"
        let batch = try collector.events(body: Array(body.utf8), workspaceID: Self.workspace, mayGiveFeedback: false)
            .get()
        let message = try #require(batch.messages.first)
        let value = try JSONParser.parse(message.value ?? [])
        #expect(value["workspace_id"] == .string(Self.workspace))
        guard case .object(let members) = value else { return }
        #expect(members.filter { $0.key == "workspace_id" }.count == 1)
    }

    @Test func bodyLimits() {
        let many = "{\"events\":[" + Array(repeating: "{}", count: 501).joined(separator: ",") + "]}"
        guard
            case .failure(let tooMany) = collector.events(
                body: Array(many.utf8), workspaceID: Self.workspace, mayGiveFeedback: false)
        else {
            Issue.record("501 records accepted")
            return
        }
        #expect(tooMany.status == .contentTooLarge)
        #expect(tooMany.code == "too_many_records")
        for bad in ["", "[]", "{\"events\":{}}", "{\"other\":[]}"] {
            guard
                case .failure(let error) = collector.events(
                    body: Array(bad.utf8), workspaceID: Self.workspace, mayGiveFeedback: false)
            else {
                Issue.record("\(bad) accepted")
                continue
            }
            #expect(error.status == .badRequest)
            #expect(error.code == "invalid_body")
        }
    }

    @Test func idempotencyKeysGiveTheSameIdPerWorkspace() throws {
        let body = Array(#"{"user_id":"u","session_id":"s","event_type":"tap"}"#.utf8)
        func id(_ workspace: String, _ key: String?) throws -> String {
            let (_, record) = try collector.interaction(body: body, workspaceID: workspace, idempotencyKey: key).get()
            guard case .string(let id)? = record["event_id"] else { return "" }
            return id
        }
        let other = "99999999-2222-4333-8444-555555555555"
        #expect(try id(Self.workspace, "k") == id(Self.workspace, "k"))
        #expect(try id(Self.workspace, "k") != id(Self.workspace, "j"))
        #expect(try id(Self.workspace, "k") != id(other, "k"))
        #expect(try id(Self.workspace, nil) != id(Self.workspace, nil))
        // The server's clock fills a missing timestamp: 2026-03-01T10:00:00Z = 1772359200 s.
        let (_, record) = try collector.interaction(
            body: body, workspaceID: Self.workspace, idempotencyKey: nil,
            now: Date(timeIntervalSince1970: 1_772_359_200)
        ).get()
        #expect(record["timestamp"] == .string("2026-03-01T10:00:00.000000Z"))
    }

    /// A retry of a request with an Idempotency-Key is stamped anew by the server's clock: the
    /// same id, a stamp marked as such, and so the same fingerprint at ingest.
    @Test func aRetryStampedAnewIsTheSameEvent() throws {
        let body = Array(#"{"user_id":"u","session_id":"s","event_type":"tap"}"#.utf8)
        func sent(at seconds: TimeInterval) throws -> ValidRecord {
            let (message, record) = try collector.interaction(
                body: body, workspaceID: Self.workspace, idempotencyKey: "k", now: Date(timeIntervalSince1970: seconds)
            ).get()
            #expect(record["timestamp_stamped"] == .bool(true))
            return try RecordValidator().validate(kind: .interaction, key: message.key, value: message.value ?? [])
                .get()
        }
        let first = try sent(at: 1_772_359_200)
        let retry = try sent(at: 1_772_359_201)
        #expect(first.id == retry.id && first.timestamp != retry.timestamp)
        #expect(first.contentHash == retry.contentHash)
        // A timestamp the producer gave is its own: not marked.
        let given = Array(
            #"{"user_id":"u","session_id":"s","event_type":"tap","timestamp":"2026-03-01T10:00:00Z"}"#.utf8)
        let (_, record) = try collector.interaction(body: given, workspaceID: Self.workspace, idempotencyKey: "k").get()
        #expect(record["timestamp_stamped"] == nil)
    }

    /// Every feedback request is an opinion of its own (the latest counts), unless it repeats
    /// an Idempotency-Key; feedback sent as events needs the admin scope.
    @Test func feedbackIsAnOpinionPerRequestAndAnAdminsToGive() throws {
        let insight = "1a000000-0000-4000-8000-000000000001"
        let body = Array(#"{"verdict":"useful","user_id":"aaaaaaaa-0000-4000-8000-000000000001"}"#.utf8)
        func id(_ key: String?) throws -> String {
            try collector.feedback(
                body: body, insightID: insight, insightType: "deal_stalled", workspaceID: Self.workspace,
                subVerticalID: insight, idempotencyKey: key
            ).get().eventID
        }
        #expect(try id(nil) != id(nil))
        #expect(try id("k") == id("k"))
        #expect(try id("k") != id("j"))

        let event = """
            {"record_type":"business_event","event_id":"1b000000-0000-4000-8000-000000000001",
             "timestamp":"2026-03-01T10:00:00Z","event_type":"insight.feedback","entity_type":"insight",
             "entity_id":"\(insight)","workspace_id":"\(Self.workspace)","sub_vertical_id":"\(insight)",
             "actor_user_id":"\(insight)","metadata":{"verdict":"useful"}}
            """
        let events = Array("{\"events\":[\(event)]}".utf8)
        let byWriter = try collector.events(body: events, workspaceID: Self.workspace, mayGiveFeedback: false).get()
        #expect(byWriter.rejected.map(\.code) == ["insufficient_scope"] && byWriter.messages.isEmpty)
        let byAdmin = try collector.events(body: events, workspaceID: Self.workspace, mayGiveFeedback: true).get()
        #expect(byAdmin.rejected.isEmpty && byAdmin.messages.count == 1)
    }

    /// An impression or a click names the delivery it is about; the event carries it.
    @Test func feedbackNamesItsDelivery() throws {
        let insight = "1a000000-0000-4000-8000-000000000001"
        func feedback(_ body: String) -> Result<String, APIError> {
            collector.feedback(
                body: Array(body.utf8), insightID: insight, insightType: "deal_stalled", workspaceID: Self.workspace,
                subVerticalID: insight
            ).map { String(decoding: $0.message.value ?? [], as: UTF8.self) }
        }
        let user = #""user_id":"aaaaaaaa-0000-4000-8000-000000000001""#
        let shown = try feedback(
            #"{"verdict":"impression",\#(user),"delivery_id":"5D000000-0000-4000-8000-000000000001"}"#
        )
        .get()
        let metadata = try JSONParser.parse(Array(shown.utf8))["metadata"]
        #expect(
            metadata
                == .object([
                    (key: "delivery_id", value: .string("5d000000-0000-4000-8000-000000000001")),
                    (key: "insight_type", value: .string("deal_stalled")),
                    (key: "verdict", value: .string("impression")),
                ]))
        // The event is one ingest accepts.
        if case .failure(let rejection) = RecordValidator().validate(
            kind: .business, key: nil, value: Array(shown.utf8))
        {
            Issue.record("\(rejection.code.rawValue): \(rejection.message)")
        }
        #expect(throws: APIError.self) { try feedback(#"{"verdict":"clicked",\#(user),"delivery_id":"d-1"}"#).get() }
        #expect(throws: APIError.self) { try feedback(#"{"verdict":"seen",\#(user)}"#).get() }
        #expect(
            try JSONParser.parse(Array(try feedback(#"{"verdict":"clicked",\#(user)}"#).get().utf8))["metadata"]?[
                "delivery_id"] == nil)
    }

    @Test func tokenBucket() {
        let limiter = RateLimiter<Int64>()
        let start = ContinuousClock.now
        // Rate 1/s, burst 2: two at once, the third waits a second; a second later one more.
        #expect(limiter.take(key: 1, rate: 1, burst: 2, now: start) == nil)
        #expect(limiter.take(key: 1, rate: 1, burst: 2, now: start) == nil)
        #expect(limiter.take(key: 1, rate: 1, burst: 2, now: start) == 1)
        #expect(limiter.take(key: 2, rate: 1, burst: 2, now: start) == nil)
        #expect(limiter.take(key: 1, rate: 1, burst: 2, now: start + .seconds(1)) == nil)
        #expect(limiter.take(key: 1, rate: 1, burst: 2, now: start + .seconds(1)) == 1)
    }

    @Test func keysAreComparedByHash() {
        let key = NewApiKey()
        #expect(key.text.hasPrefix("bte_"))
        #expect(key.text.count == 47)
        #expect(key.sha256 == ApiKeyHash.sha256(key.text))
        #expect(ApiKeyHash.constantTimeEqual(key.sha256, ApiKeyHash.sha256(key.text)))
        #expect(!ApiKeyHash.constantTimeEqual(key.sha256, ApiKeyHash.sha256(key.text + "x")))
        #expect(NewApiKey().text != key.text)
    }
}

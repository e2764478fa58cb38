import BTEDomain
import BTEStore
import PropertyBased
import Testing

@testable import BTEAPI

/// The privacy request body: what it accepts, what it refuses, and that no body traps it.
struct PrivacyRequestBodyTests {
    static func parse(_ text: String) -> Result<PrivacyRequestBody, APIError> {
        Result(catching: { () throws(APIError) -> PrivacyRequestBody in try PrivacyRequestBody.parse(Array(text.utf8)) }
        )
    }

    @Test func acceptsWhatTheSpecDescribes() throws {
        #expect(
            try Self.parse(#"{"type":"suppress","user_ids":["u1","u2"],"reference":"t-1"}"#).get()
                == PrivacyRequestBody(type: .suppress, userIDs: ["u1", "u2"], reference: "t-1"))
        // Every type is read (the server decides which it carries out); null is no reference;
        // unknown members are ignored.
        for type in PrivacyRequestType.allCases {
            #expect(
                try Self.parse(#"{"type":"\#(type.rawValue)","user_ids":["u"],"reference":null,"x":1}"#).get()
                    == PrivacyRequestBody(type: type, userIDs: ["u"], reference: nil))
        }
        // 1,000 users are accepted, 1,001 are not.
        func users(_ n: Int) -> String { (0..<n).map { "\"u\($0)\"" }.joined(separator: ",") }
        #expect((try? Self.parse(#"{"type":"suppress","user_ids":[\#(users(1_000))]}"#).get())?.userIDs.count == 1_000)
        #expect(Self.code(#"{"type":"suppress","user_ids":[\#(users(1_001))]}"#) == "invalid_body")
    }

    static func code(_ text: String) -> String? {
        if case .failure(let error) = parse(text) { return error.code }
        return nil
    }

    @Test(
        arguments: [
            "", "[]", "{}", #"{"type":"delete","user_ids":["u"]}"#, #"{"type":"suppress"}"#,
            #"{"type":"suppress","user_ids":[]}"#, #"{"type":"suppress","user_ids":"u"}"#,
            #"{"type":"suppress","user_ids":[7]}"#, #"{"type":"suppress","user_ids":[""]}"#,
            #"{"type":"suppress","user_ids":["\#(String(repeating: "u", count: 256))"]}"#,
            #"{"type":"suppress","user_ids":["a\u0000b"]}"#, #"{"type":"suppress","user_ids":["u"],"reference":""}"#,
            #"{"type":"suppress","user_ids":["u"],"reference":3}"#, #"{"type":7,"user_ids":["u"]}"#,
        ])
    func refusesWithOneCode(body: String) {
        #expect(Self.code(body) == "invalid_body", "\(body)")
    }

    @Test func noBodyTrapsTheParser() async {
        let names = ["type", "user_ids", "reference", "x", ""]
        let leaves: [JSONValue] = [
            .null, .bool(true), .number("1e400"), .number("-1"), .string(""), .string("suppress"), .string("erase"),
            .string("export"), .string(String(repeating: "u", count: 300)), .array([]), .array([.string("u")]),
            .array([.number("1")]),
        ]
        await propertyCheck(count: 2_000, input: Gen.int64(in: 0...Int64.max)) { seed in
            var rng = RequestBodyPropertyTests.SplitMix(state: UInt64(seed))
            var members: [(key: String, value: JSONValue)] = []
            for _ in 0..<Int.random(in: 0...4, using: &rng) {
                members.append(
                    (names.randomElement(using: &rng) ?? "x", leaves.randomElement(using: &rng) ?? .null))
            }
            let bytes = JSONValue.object(members).canonicalBytes()
            switch Result(catching: { () throws(APIError) -> PrivacyRequestBody in try PrivacyRequestBody.parse(bytes) }
            ) {
            case .success(let body):
                #expect(!body.userIDs.isEmpty && body.userIDs.count <= PrivacyStore.maxUsers, "seed \(seed)")
            case .failure(let error):
                #expect(error.code == "invalid_body" && error.status == .badRequest, "seed \(seed)")
            }
            var broken = bytes
            if !broken.isEmpty {
                broken[Int.random(in: 0..<broken.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                _ = try? PrivacyRequestBody.parse(broken)
            }
        }
    }
}

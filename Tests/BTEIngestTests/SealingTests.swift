import BTEDomain
import Crypto
import PropertyBased
import Testing

@testable import BTEStore

/// What a log row stores of a person's record: their ids replaced, their personal content
/// sealed under their subject's key, and everything the computations read as sent.
@Suite struct SealingTests {
    static let workspace = "00000000-0000-4000-8000-000000000001"

    static func record(_ kind: InputKind, _ text: String) throws -> ValidRecord {
        try RecordValidator().validate(kind: kind, key: nil, value: Array(text.utf8)).get()
    }

    static func interaction(user: String = "user-1", session: String = "s-one", note: String = "hello") throws
        -> ValidRecord
    {
        try record(
            .interaction,
            """
            {"event_id":"00000000-0000-4000-8000-0000000000e1","timestamp":"2026-03-02T10:00:00Z","event_type":"tap",
             "user_id":"\(user)","session_id":"\(session)","device_id":"dev-7","duration_ms":120,
             "interaction_data":{"note":"\(note)"},"error_message":"boom","context":{"page":"p"},
             "nickname":"nick","workspace_id":"\(workspace)"}
            """)
    }

    static func value(_ row: SealedRow, _ record: ValidRecord, _ field: String) -> String? {
        record.schema.fields.firstIndex { $0.name == field }.flatMap { row.values[$0] }
    }

    @Test func anInteractionKeepsWhatTheComputationsReadAndSealsTheRest() throws {
        let subject = Subject.generate()
        let record = try Self.interaction()
        let row = try #require(try SealedRow.make(record, subject: subject))
        #expect(row.subject == subject.id && Self.value(row, record, "user_id") == subject.id)
        let session = try #require(Self.value(row, record, "session_id"))
        // "s-" and 32 hex digits (16 bytes of an HMAC-SHA-256).
        #expect(session.hasPrefix("s-") && session.count == 34 && session != "s-one")
        for moved in ["device_id", "interaction_data", "error_message", "context"] {
            #expect(Self.value(row, record, moved) == nil, "\(moved)")
        }
        #expect(Self.value(row, record, "duration_ms") == "120" && Self.value(row, record, "event_type") == "tap")
        // The log derives the workspace from the unknown fields: only that one stays.
        #expect(row.extra == "{\"workspace_id\":\"\(Self.workspace)\"}")
        // 28 bytes more than the sealed text: a 12-byte nonce and a 16-byte tag.
        let opened = try SealedRow.open(row.sealed, subject: subject)
        let expected = try JSONParser.parse(
            Array(
                """
                {"user_id":"user-1","session_id":"s-one","device_id":"dev-7","interaction_data":{"note":"hello"},
                 "error_message":"boom","context":{"page":"p"},
                 "extra":{"nickname":"nick","workspace_id":"\(Self.workspace)"}}
                """.utf8))
        #expect(opened == expected)
        #expect(row.sealed.count == opened.canonicalBytes().count + 28)
    }

    /// A stand-in is HMAC-SHA-256 of the text under the subject's key, its first 16 bytes in hex
    /// after "s-": the MAC prepared once per subject gives what a MAC made afresh gives, however
    /// many texts it has served before.
    @Test func aStandInIsTheKeyedMACOfTheText() throws {
        let key = [UInt8](repeating: 0x0b, count: 32)
        let subject = Subject(id: "00000000-0000-4000-8000-00000000000b", key: key)
        for text in ["s-one", "", "s-two", "s-one", String(repeating: "x", count: 200)] {
            let mac = HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: key))
            #expect(subject.pseudonym(text) == "s-" + hexString(Array(mac.prefix(16))), "\(text)")
        }
        // RFC 4231 test case 2 (key "Jefe", "what do ya want for nothing?") against the MAC itself:
        // 5bdcc146bf60754e6a042426089575c7 are its first 16 bytes.
        let jefe = Subject(id: "x", key: Array("Jefe".utf8))
        #expect(jefe.pseudonym("what do ya want for nothing?") == "s-5bdcc146bf60754e6a042426089575c7")
    }

    /// A batch's nonces come from one buffer refilled every 512: none repeats across refills.
    @Test func noncesOfABatchAreDistinctAcrossRefills() throws {
        var source = NonceSource()
        var seen: Set<[UInt8]> = []
        for _ in 0..<(NonceSource.perFill * 2 + 7) {
            let nonce = Array(try source.take().withUnsafeBytes { Array($0) })
            #expect(nonce.count == 12)
            seen.insert(nonce)
        }
        #expect(seen.count == NonceSource.perFill * 2 + 7)
    }

    @Test func aSessionStandsInForTheSameTextUnderTheSameKeyOnly() throws {
        let subject = Subject.generate()
        let first = try #require(try SealedRow.make(try Self.interaction(session: "s-one"), subject: subject))
        let again = try #require(try SealedRow.make(try Self.interaction(session: "s-one"), subject: subject))
        let other = try #require(try SealedRow.make(try Self.interaction(session: "s-two"), subject: subject))
        let otherKey = try #require(try SealedRow.make(try Self.interaction(session: "s-one"), subject: .generate()))
        let record = try Self.interaction()
        let session = { (row: SealedRow) in Self.value(row, record, "session_id") }
        #expect(session(first) == session(again))
        #expect(session(first) != session(other) && session(first) != session(otherKey))
        // Sealing the same content twice gives different bytes (a fresh nonce each time).
        #expect(first.sealed != again.sealed)
    }

    @Test func businessEventsAndActionsReplaceTheActorAndSealTheirOwnFields() throws {
        let subject = Subject.generate()
        let actor = "00000000-0000-4000-8000-0000000000a1"
        let business = try Self.record(
            .business,
            """
            {"record_type":"business_event","event_id":"00000000-0000-4000-8000-0000000000b1",
             "event_type":"deal.created","entity_type":"deal","entity_id":"00000000-0000-4000-8000-0000000000d1",
             "workspace_id":"\(Self.workspace)","sub_vertical_id":"00000000-0000-4000-8000-0000000000c1",
             "actor_user_id":"\(actor)","timestamp":"2026-03-02T10:00:00Z","metadata":{"amount":5},"note":"x"}
            """)
        let row = try #require(try SealedRow.make(business, subject: subject))
        #expect(Self.value(row, business, "actor_user_id") == subject.id && row.extra == nil)
        // A business event's metadata is read by the computations: stored as sent.
        #expect(Self.value(row, business, "metadata") == "{\"amount\":5}")
        #expect(
            try SealedRow.open(row.sealed, subject: subject)
                == JSONParser.parse(Array("{\"actor_user_id\":\"\(actor)\",\"extra\":{\"note\":\"x\"}}".utf8)))

        let action = try Self.record(
            .business,
            """
            {"record_type":"user_action","action_id":"00000000-0000-4000-8000-0000000000f1","action_type":"note.added",
             "workspace_id":"\(Self.workspace)","actor_user_id":"\(actor)","timestamp":"2026-03-02T10:00:00Z",
             "metadata":{"note":"private"}}
            """)
        let actionRow = try #require(try SealedRow.make(action, subject: subject))
        #expect(Self.value(actionRow, action, "metadata") == "{}")
        #expect(
            try SealedRow.open(actionRow.sealed, subject: subject)
                == JSONParser.parse(Array("{\"actor_user_id\":\"\(actor)\",\"metadata\":{\"note\":\"private\"}}".utf8)))
    }

    @Test func sealedContentOpensUnderItsOwnKeyOnlyAndUnaltered() throws {
        let subject = Subject.generate()
        let row = try #require(try SealedRow.make(try Self.interaction(), subject: subject))
        #expect(throws: StoreError.self) { try SealedRow.open(row.sealed, subject: .generate()) }
        var altered = row.sealed
        altered[20] ^= 0x01
        #expect(throws: StoreError.self) { try SealedRow.open(altered, subject: subject) }
        #expect(throws: StoreError.self) { try SealedRow.open(Array(row.sealed.prefix(27)), subject: subject) }
    }

    @Test func aPersonsReferenceIsTheSHA256OfWorkspaceSlashUser() {
        // printf '%s' "00000000-0000-4000-8000-000000000001/user-1" | sha256sum
        #expect(
            PersonReference.of(UserKey(workspaceID: Self.workspace, userID: "user-1"))
                == "6fa9495641a924d7bf72cce04caa66adf86a6387247b0882b357cdea49e93789")
        // A UUID user id counts in lower case, however it was written.
        let upper = UserKey(workspaceID: Self.workspace, userID: "00000000-0000-4000-8000-0000000000AB")
        let lower = UserKey(workspaceID: Self.workspace, userID: "00000000-0000-4000-8000-0000000000ab")
        #expect(PersonReference.of(upper) == PersonReference.of(lower))
    }

    /// Whatever the personal fields hold, the stored columns hold none of it and the sealed
    /// content gives each back exactly.
    @Test func personalTextNeverReachesAStoredColumnAndComesBackWhole() async throws {
        let letters = Gen.letterOrNumber.string(of: 1...40)
        await propertyCheck(count: 300, input: letters, letters) { user, note in
            let canary = "zq" + note
            let subject = Subject.generate()
            guard let record = try? Self.interaction(user: "zq" + user, session: canary, note: canary),
                let row = try? SealedRow.make(record, subject: subject)
            else {
                Issue.record("no sealed row for \(user) \(note)")
                return
            }
            for (index, stored) in row.values.enumerated() {
                #expect(stored?.contains(canary) != true, "\(record.schema.fields[index].name)")
                #expect(stored?.contains("zq" + user) != true, "\(record.schema.fields[index].name)")
            }
            let opened = try? SealedRow.open(row.sealed, subject: subject)
            #expect(opened?["user_id"] == .string("zq" + user) && opened?["session_id"] == .string(canary))
        }
    }
}

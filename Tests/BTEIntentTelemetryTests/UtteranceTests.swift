import BTEDomain
import BTEIntentTelemetry
import Foundation
import Testing

@Suite struct UtteranceTests {
    @Test(arguments: [
        ("  Create   a CBU\tfor  Acme \n", "create a cbu for acme"),
        ("CRÉER\u{00A0}un   Fonds", "créer un fonds"),  // no-break space is whitespace
        ("line one\r\nline two", "line one line two"),
        ("🚀  Launch\u{2003}Fund 😀", "🚀 launch fund 😀"),  // em space
        ("", ""),
        ("   \n\t ", ""),
    ])
    func normalization(raw: String, normalized: String) {
        #expect(normalizeUtterance(raw) == normalized)
    }

    @Test func hashIsStableAcrossWhitespaceAndCase() {
        // SHA-256("create a cbu for acme"), computed with `printf %s "create a cbu for acme" | sha256sum`.
        let hash = utteranceHash("  Create   a CBU\tfor  Acme \n")
        #expect(hash == "c6166035a49a12647c49f787c55d67abf48d0437ae44434b6a8d132c193ee54e")
        #expect(hash == utteranceHash("create a cbu for acme"))
        #expect(hash.count == 64 && hash.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(hash != utteranceHash("create a cbu for acme corp"))
    }

    @Test(arguments: [
        ("mail jane.doe+x@example.co.uk now", "mail [email] now"),
        ("call +44 20 7946 0958 today", "call [phone] today"),
        ("card 4111 1111 1111 1111 ok", "card [number] ok"),
        ("card 4111-1111-1111-1111", "card [number]"),
        ("iban DE89 3704 0044 0532 0130 00 please", "iban [iban] please"),
        ("entity 0f8fad5b-d9cb-469f-a165-70867728950e", "entity [uuid]"),
        ("show fund 42 for 2025", "show fund 42 for 2025"),  // short numbers stay
        ("a   b\n c", "a b c"),
    ])
    func redaction(raw: String, preview: String) {
        #expect(previewRedacted(raw) == preview)
    }

    @Test func previewIsAtMost80CharactersAndMasksBeforeCutting() {
        let long = String(repeating: "word ", count: 40) + "jane@example.com"
        #expect(previewRedacted(long).count == 80)
        // The address straddles the cut: masked first, so no part of it shows.
        let straddling = String(repeating: "x", count: 70) + " jane.doe@example.com"
        let preview = previewRedacted(straddling)
        #expect(preview.count <= 80)
        #expect(!preview.contains("jane"))
        #expect(previewRedacted(String(repeating: "é", count: 200)).count == 80)
    }

    @Test func builtRecordsPassIngestValidation() throws {
        var builder = IntentEventBuilder(
            sessionID: UUID(), actorID: "analyst-1", entrypoint: "chat", semregMode: "applied", outcome: "matched")
        builder.chosenVerb = "cbu.create"
        builder.promptVersion = "p-7"
        let utterance = "Create a CBU for jane@example.com, card 4111 1111 1111 1111"
        let data = builder.json(utterance: utterance)
        let text = String(decoding: data, as: UTF8.self)
        #expect(!text.contains("jane"))
        #expect(!text.contains("4111"))
        #expect(text.contains(utteranceHash(utterance)))
        let result = RecordValidator().validate(kind: .intent, key: nil, value: [UInt8](data))
        guard case .success(let record) = result else {
            Issue.record("rejected: \(result)")
            return
        }
        #expect(record.table == .intentEvents)
        builder.preview = .none
        #expect(!String(decoding: builder.json(utterance: utterance), as: UTF8.self).contains("utterance_preview"))
    }
}

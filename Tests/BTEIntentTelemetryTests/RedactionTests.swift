import BTEDomain
import BTEIntentTelemetry
import Foundation
import PropertyBased
import Testing

/// Redaction is linear in the utterance, and finds what its regular expressions found.
struct RedactionTests {
    /// The regular expressions the scanners stand for, as the reference: they backtrack, so
    /// they only ever see short texts here.
    static func byRegex(_ text: String) -> String {
        var masked = text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        let rules: [(Regex<Substring>, String)] = [
            (#/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/#, "[uuid]"),
            (#/[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}/#, "[email]"),
            (#/\b[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,4})?\b/#, "[iban]"),
            (#/\+\d[\d ().\-]{5,}\d/#, "[phone]"),
            (#/\d(?:[ \-]?\d){11,18}/#, "[number]"),
            (#/\(?\d[\d ().\-]{5,}\d/#, "[phone]"),
        ]
        for (pattern, replacement) in rules {
            masked = masked.replacing(pattern, with: replacement)
        }
        return masked
    }

    /// Texts that took the regexes quadratic time (minutes at this size): each ends a long
    /// candidate where it fails. What each becomes is worked out by hand in its comment.
    @Test(.timeLimit(.minutes(1)))
    func adversarialTextsRedactQuickly() {
        let n = 100_000
        let letters = String(repeating: "a", count: n)
        // No domain after the `@`: nothing masked, the first 80 letters kept.
        #expect(previewRedacted(letters + "@") == String(repeating: "a", count: 80))
        #expect(previewRedacted(letters + "@", limit: n + 1) == letters + "@")
        // A domain with no dot, or dots each followed by one letter only: not an address.
        #expect(previewRedacted("a@" + letters, limit: n + 2) == "a@" + letters)
        let dotted = String(repeating: "b.", count: n / 2)
        #expect(previewRedacted("a@" + dotted, limit: n + 2) == "a@" + dotted)
        // 100,000 digits: 5,263 whole numbers of 19 digits (99,997), and 3 digits left over.
        let digits = String(repeating: "1", count: n)
        #expect(
            previewRedacted(digits, limit: 1_000_000)
                == String(repeating: "[number]", count: 5_263) + "111")
        // "1-" 50,000 times: 1- pairs chain like a card number; 19 digits take 37 characters,
        // leaving "-" before the next chain: 2,631 numbers (49,989 digits), then 11 digits
        // "1-1-…-1-" that are too few for a number but a phone number (its last digit at +20).
        let hyphenated = String(repeating: "1-", count: n / 2)
        #expect(
            previewRedacted(hyphenated, limit: 1_000_000)
                == String(repeating: "[number]-", count: 2_631) + "[phone]-")
        // UUID-like hex runs that never complete one: the hyphen comes one character early.
        let hex = String(repeating: "abcdef1-", count: n / 8)
        #expect(previewRedacted(hex, limit: 1_000_000) == hex)
        // The phone rules over long runs of their punctuation with few digits.
        let parentheses = String(repeating: "(", count: n)
        #expect(previewRedacted("+1" + parentheses + "2", limit: 1_000_000) == "[phone]")
        #expect(previewRedacted("12" + parentheses, limit: 1_000_000) == "12" + parentheses)
        // IBAN-like groups: 2 letters, 2 digits, then groups of four: the first 7 groups (and
        // a last group of up to 4 more) make one IBAN, 2 + 2 + 8 × 4 = 36 letters and digits.
        let groups = "DE89" + String(repeating: " ABCD", count: n / 5)
        let masked = previewRedacted(groups, limit: 1_000_000)
        #expect(masked.hasPrefix("[iban] ABCD ABCD"))
        #expect(masked.count == 6 + (n / 5 - 8) * 5)
    }

    @Test(arguments: [
        // Unicode's word rules: "x.DE…", "a:DE…" and "_DE…" are one word, so no IBAN starts at
        // D; the digits after DE are then a 19-digit number and a "0" left over.
        ("x.DE89370400440532013000", "x.DE[number]0"),
        ("1.DE89370400440532013000", "1.[iban]"),
        ("a:DE89370400440532013000", "a:DE[number]0"),
        ("DE89370400440532013000.a", "[iban].a"),
        ("DE89370400440532013000'x", "[iban]'x"),
        ("_DE89370400440532013000", "_DE[number]0"),
        ("-DE89370400440532013000-", "-[iban]-"),
        // The greedy domain backs off to its last dot with two letters.
        ("jane@a.bc.d-x", "[email].d-x"),
        ("a@b@c.de", "a@[email]"),
        // A top-level domain letter with a combining mark: masked (the server would refuse it).
        ("jane@example.co\u{301}", "[email]"),
    ])
    func boundaryCases(raw: String, preview: String) {
        #expect(previewRedacted(raw) == preview)
    }

    static let pieces: [String] = [
        "0f8fad5b-d9cb-469f-a165-70867728950e", "0f8fad5b-d9cb", "jane.doe", "@", "example.com", ".co", "+44", "20",
        "7946", "0958", "4111", "1111", "DE89", "3704", "GB82", "WEST", "ab", "x", "1", "12345", " ", "  ", ".", "-",
        "(", ")", "_", ":", "'", ",", "é", "٣", "½", "\n", "%", "Z9",
    ]

    @Test func scannersFindWhatTheRegexesFound() async {
        let piece = Gen<String?>.element(of: Self.pieces).map { $0 ?? "" }
        let texts = piece.array(of: 0...14).map { $0.joined() }
        await propertyCheck(count: 1_500, input: texts) { text in
            #expect(previewRedacted(text, limit: 10_000) == Self.byRegex(text), "\(text.debugDescription)")
        }
        let alphabet = Array("aZDE0129 @.-+()_:',é٣½\n%x")
        let characters = Gen<Character?>.element(of: alphabet).map { $0 ?? " " }
        await propertyCheck(count: 1_500, input: characters.string(of: 0...40)) { text in
            #expect(previewRedacted(text, limit: 10_000) == Self.byRegex(text), "\(text.debugDescription)")
        }
    }

    /// Whitespace is collapsed before masking: a line break or an em space between digit groups
    /// becomes a space in the preview, and the groups must not be joined only then.
    @Test func previewsTheServerAccepts() async throws {
        // "555\n1234": 3 + 4 = 7 digits once the break is a space, a phone number to the server.
        #expect(previewRedacted("call 555\n1234 now") == "call [phone] now")
        #expect(previewRedacted("card 4111\u{2003}1111\t1111\n1111") == "card [number]")
        var builder = IntentEventBuilder(
            sessionID: UUID(), actorID: "analyst-1", entrypoint: "chat", semregMode: "applied", outcome: "matched")
        builder.chosenVerb = "cbu.create"
        let piece = Gen<String?>.element(of: Self.pieces + ["\t", "\u{2003}", "\r\n", "555"]).map { $0 ?? "" }
        let texts = piece.array(of: 0...20).map { $0.joined() }
        await propertyCheck(count: 1_500, input: texts) { utterance in
            let record = [UInt8](builder.json(utterance: utterance))
            let result = RecordValidator().validate(kind: .intent, key: nil, value: record)
            if case .failure(let rejection) = result {
                Issue.record("\(utterance.debugDescription): \(rejection)")
            }
        }
    }
}

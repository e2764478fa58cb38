/// Intent telemetry carries hashes and short redacted previews, never raw personal data
/// (seed 002). Records that break this are rejected as `pii_violation` and never stored.
public enum PIIGuard {
    /// Field names that would carry the raw utterance.
    public static let rawUtteranceFields = ["utterance", "raw_utterance", "utterance_text", "utterance_raw"]
    public static let maxPreviewCharacters = 80

    /// Personal data a text can be seen to hold.
    enum Finding {
        case emailAddress
        case phoneOrAccountNumber

        var description: String {
            switch self {
            case .emailAddress: return "an unmasked e-mail address"
            case .phoneOrAccountNumber: return "an unmasked phone or account number"
            }
        }
    }

    static func checkPreview(_ value: JSONValue?, field: String) -> Rejection? {
        guard case .string(let preview)? = value else { return nil }
        if preview.count > maxPreviewCharacters {
            return Rejection(
                .piiViolation,
                "\(field) has \(preview.count) characters; a redacted preview has at most \(maxPreviewCharacters)")
        }
        if let finding = personalData(in: preview) {
            return Rejection(.piiViolation, "\(field) contains \(finding.description)")
        }
        return nil
    }

    /// The e-mail and phone rules of previews, in one pass over the text each:
    /// - e-mail: `[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}` anywhere in the text;
    /// - phone, card or account number: seven or more digits in one run of digits and
    ///   ` ().-`, i.e. a match of `\+?\d[\d ().-]{5,}\d` holding seven digits. A digit is any
    ///   character that is a number, as for `\d` of Swift's regular expressions (`٣`, `４`).
    /// A backtracking regex takes minutes on texts like sixty thousand letters and an `@`;
    /// these matchers are linear: the e-mail one looks only around each `@`, the phone one reads
    /// bytes, and characters only in non-ASCII text with seven bytes that could start a digit.
    static func personalData(in text: String) -> Finding? {
        if containsEmailAddress(text) { return .emailAddress }
        if containsPhoneLikeNumber(text) { return .phoneOrAccountNumber }
        return nil
    }

    static func containsEmailAddress(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { bytes in
            func isLocal(_ byte: UInt8) -> Bool {
                isASCIILetterOrDigit(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
                    || byte == UInt8(ascii: "%") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")
            }
            func isDomain(_ byte: UInt8) -> Bool {
                isASCIILetterOrDigit(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
            }
            var index = 0
            while index < bytes.count {
                guard bytes[index] == UInt8(ascii: "@") else {
                    index += 1
                    continue
                }
                let at = index
                index += 1
                guard at > 0, isLocal(bytes[at - 1]) else { continue }
                // The domain run ends at the first byte outside it, and `@` is outside it, so
                // the runs of different `@` never overlap: the scan stays linear.
                while index < bytes.count, isDomain(bytes[index]) {
                    // A dot with at least one domain byte before it and two letters after it.
                    if bytes[index] == UInt8(ascii: "."), index > at + 1, index + 2 < bytes.count,
                        isASCIILetter(bytes[index + 1]), isASCIILetter(bytes[index + 2])
                    {
                        return true
                    }
                    index += 1
                }
            }
            return false
        }
    }

    static func containsPhoneLikeNumber(_ text: String) -> Bool {
        var text = text
        // ASCII text: bytes are characters. Each number character other than an ASCII digit
        // starts with a non-ASCII lead byte, which bounds how many a text can hold.
        let (ascii, found, candidates) = text.withUTF8 { bytes in
            var ascii = true
            var run = 0
            var found = false
            var candidates = 0
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"):
                    candidates += 1
                    run += 1
                    if run >= 7 { found = true }
                case UInt8(ascii: " "), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "."), UInt8(ascii: "-"):
                    break
                case 0xC0...:
                    ascii = false
                    candidates += 1
                    run = 0
                case 0x80...:
                    ascii = false
                    run = 0
                default:
                    run = 0
                }
            }
            return (ascii, found, candidates)
        }
        if ascii { return found }
        guard candidates >= 7 else { return false }
        // Other text goes by characters, so that a digit with a combining mark still counts.
        var run = 0
        for character in text {
            if let byte = character.asciiValue {
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): run += 1
                case UInt8(ascii: " "), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "."), UInt8(ascii: "-"):
                    continue
                default:
                    run = 0
                    continue
                }
            } else if character.isNumber {
                run += 1
            } else {
                run = 0
                continue
            }
            if run >= 7 { return true }
        }
        return false
    }

    /// The first personal data in a record's unknown fields: a member named like a raw
    /// utterance field (`forbidden`, any letter case) at any depth, or a string (member names
    /// included) with an e-mail address or a phone-like number. Numbers are not scanned: counts
    /// and epoch times are not contact data. The result names the top-level field only, and
    /// only when that name is itself clean: inner names are the producer's data, not ours.
    ///
    /// Known fields are not scanned: the previews have their own rule, and the other text
    /// fields are ids, verbs and codes that the contract bounds and the producer library fills
    /// from code, where a `scope` like `cbu:1234567` would read as a phone number.
    static func checkUnknownFields(_ members: [(key: String, value: JSONValue)], forbidden: [String]) -> Rejection? {
        for member in members {
            if let finding = personalDataInName(member.key, forbidden: forbidden) {
                switch finding {
                case .forbiddenName(let name):
                    return Rejection(
                        .piiViolation,
                        "\(name) would store raw personal data; send utterance_hash and a redacted preview")
                case .text(let kind):
                    return Rejection(.piiViolation, "the name of an unknown field contains \(kind.description)")
                }
            }
            switch personalData(inValue: member.value, forbidden: forbidden) {
            case nil: continue
            case .forbiddenName(let name)?:
                return Rejection(
                    .piiViolation,
                    "unknown field \(member.key) has a member named \(name), which would store raw personal data")
            case .text(let kind)?:
                return Rejection(.piiViolation, "unknown field \(member.key) contains \(kind.description)")
            }
        }
        return nil
    }

    private enum Hit {
        /// One of the forbidden names, in its canonical spelling.
        case forbiddenName(String)
        case text(Finding)
    }

    private static func personalData(inValue value: JSONValue, forbidden: [String]) -> Hit? {
        switch value {
        case .null, .bool, .number: return nil
        case .string(let text): return personalData(inUnknownText: text).map(Hit.text)
        case .array(let items):
            for item in items {
                if let hit = personalData(inValue: item, forbidden: forbidden) { return hit }
            }
            return nil
        case .object(let members):
            for member in members {
                if let hit = personalDataInName(member.key, forbidden: forbidden) { return hit }
                if let hit = personalData(inValue: member.value, forbidden: forbidden) { return hit }
            }
            return nil
        }
    }

    private static func personalDataInName(_ name: String, forbidden: [String]) -> Hit? {
        if let match = forbidden.first(where: { equalIgnoringASCIICase($0, name) }) { return .forbiddenName(match) }
        return personalData(inUnknownText: name).map(Hit.text)
    }

    /// The preview rules, except that a whole UUID, RFC 3339 time or lowercase hex digest is
    /// not taken for a phone number: those are the contract's own id, time and hash shapes,
    /// and their digit runs are not contact data.
    private static func personalData(inUnknownText text: String) -> Finding? {
        guard let finding = personalData(in: text) else { return nil }
        if finding == .phoneOrAccountNumber, isContractShape(text) { return nil }
        return finding
    }

    private static func isContractShape(_ text: String) -> Bool {
        let utf8 = text.utf8
        if utf8.count == 36, canonicalUUID(text) != nil { return true }
        if Timestamp(rfc3339: text) != nil { return true }
        // A digest: 32 or more lowercase hex digits, not all decimal.
        return utf8.count >= 32
            && utf8.allSatisfy { isASCIIDigit($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
            && utf8.contains { !isASCIIDigit($0) }
    }

    private static func equalIgnoringASCIICase(_ lowercase: String, _ other: String) -> Bool {
        lowercase.utf8.count == other.utf8.count
            && zip(lowercase.utf8, other.utf8).allSatisfy { $0 == (isASCIIUppercase($1) ? $1 | 0x20 : $1) }
    }
}

private func isASCIIDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
private func isASCIIUppercase(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") }
private func isASCIILetter(_ byte: UInt8) -> Bool {
    isASCIIUppercase(byte) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
}
private func isASCIILetterOrDigit(_ byte: UInt8) -> Bool { isASCIILetter(byte) || isASCIIDigit(byte) }

import Crypto
import Foundation

/// Lowercases, trims and collapses every run of whitespace (any Unicode whitespace, newlines
/// included) to one space, so the same words always hash the same.
public func normalizeUtterance(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    var pendingSpace = false
    for character in text.lowercased() {
        if character.isWhitespace {
            pendingSpace = !out.isEmpty
            continue
        }
        if pendingSpace {
            out.append(" ")
            pendingSpace = false
        }
        out.append(character)
    }
    return out
}

/// SHA-256 of the normalized utterance, as 64 lowercase hex digits (what
/// `agent.intent_events.utterance_hash` stores). Pass raw text: it is normalized first.
public func utteranceHash(_ text: String) -> String {
    let digest = SHA256.hash(data: Data(normalizeUtterance(text).utf8))
    return digest.map { String(format: "%02x", $0) }.joined()
}

/// Whether, and how, a preview of the utterance is kept.
public enum PreviewMode: Sendable {
    /// A redacted preview of at most 80 characters.
    case redacted
    /// No preview at all (strict settings).
    case none
}

/// At most `limit` characters of the utterance with e-mail addresses, phone numbers, card- and
/// IBAN-like digit runs and UUIDs masked. Whitespace is collapsed to single spaces first, so
/// the masks see the text as the preview shows it: digit groups apart by a line break are
/// joined by a space in the preview, and masked as one number. Masking happens before
/// truncation, so a cut never leaves part of a secret visible.
public func previewRedacted(_ text: String, limit: Int = 80) -> String {
    let collapsed = text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    return String(Redaction.masked(Array(collapsed)).prefix(limit))
}

/// The preview's masks, in this order, each over the text the one before it left. Each finds
/// what its regular expression finds (Swift's, over characters: leftmost, non-overlapping
/// matches, as `replacing` takes them):
///
///     [uuid]    [0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}
///     [email]   [A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}
///     [iban]    \b[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,4})?\b
///     [phone]   \+\d[\d ().\-]{5,}\d     (an international prefix: however many digits follow)
///     [number]  \d(?:[ \-]?\d){11,18}
///     [phone]   \(?\d[\d ().\-]{5,}\d
///
/// The regexes backtrack: sixty thousand letters and an `@` took minutes. These scanners are
/// linear: each reads forward from where the last match ended, skips a whole run once a
/// candidate in it fails (every later start in the run fails too), and looks back or ahead a
/// bounded number of characters. They mask a little more than the regexes in rare text: a
/// top-level domain's letter may carry a combining mark (the server's check reads bytes and
/// would refuse the preview), and `\b` is Unicode's default word boundary only as far as it
/// concerns letters, digits and the punctuation between them.
enum Redaction {
    typealias Text = [Character]

    static func masked(_ text: Text) -> Text {
        var text = text
        text = replace(text, with: "[uuid]", nextUUID)
        text = replace(text, with: "[email]", nextEmail)
        text = replace(text, with: "[iban]", nextIBAN)
        text = replace(text, with: "[phone]", nextInternationalPhone)
        text = replace(text, with: "[number]", nextLongNumber)
        text = replace(text, with: "[phone]", nextPhone)
        return text
    }

    /// Every match, left to right; `next(text, from)` is the first one starting at or after `from`.
    static func replace(_ text: Text, with token: String, _ next: (Text, Int) -> Range<Int>?) -> Text {
        var out: Text = []
        out.reserveCapacity(text.count)
        var index = 0
        while let match = next(text, index) {
            out.append(contentsOf: text[index..<match.lowerBound])
            out.append(contentsOf: token)
            index = match.upperBound
        }
        out.append(contentsOf: text[index...])
        return out
    }

    // MARK: The rules

    static func nextUUID(_ text: Text, from: Int) -> Range<Int>? {
        guard text.count >= 36 else { return nil }
        let hyphens: Set<Int> = [8, 13, 18, 23]
        func matches(_ character: Character, at offset: Int) -> Bool {
            hyphens.contains(offset) ? character == "-" : isHexDigit(character)
        }
        var start = from
        while start + 36 <= text.count {
            var length = 0
            while length < 36, matches(text[start + length], at: length) { length += 1 }
            if length == 36 { return start..<start + 36 }
            start += 1
        }
        return nil
    }

    /// The local part is the run of local characters before an `@` (any start in it reaches
    /// the `@` or none does); the domain ends after the letters of its last dot that has two.
    static func nextEmail(_ text: Text, from: Int) -> Range<Int>? {
        var runStart = from
        var index = from
        while index < text.count {
            let character = text[index]
            if character == "@" {
                if runStart < index, let end = emailDomainEnd(text, at: index) { return runStart..<end }
                runStart = index + 1
            } else if !isEmailLocal(character) {
                runStart = index + 1
            }
            index += 1
        }
        return nil
    }

    /// Where the greedy `[A-Za-z0-9.\-]+\.[A-Za-z]{2,}` after the `@` at `at` ends: the domain
    /// run backs off to its last dot with a character before it and two letters after.
    static func emailDomainEnd(_ text: Text, at: Int) -> Int? {
        var end: Int?
        var index = at + 1
        while index < text.count, isEmailDomain(text[index]) {
            if text[index] == ".", index > at + 1 {
                var letters = index + 1
                while letters < text.count, isDomainLetter(text[letters]) { letters += 1 }
                if letters - index > 2 { end = letters }
            }
            index += 1
        }
        return end
    }

    /// Two letters and two digits at a word start, then two to seven groups of four letters or
    /// digits and a shorter group (each after an optional space), ending at a word boundary:
    /// the longest such ending, as the greedy regex backs off to it.
    static func nextIBAN(_ text: Text, from: Int) -> Range<Int>? {
        var start = from
        while start + 4 <= text.count {
            defer { start += 1 }
            guard isASCIILetter(text[start]), isASCIILetter(text[start + 1]), isASCIIDigit(text[start + 2]),
                isASCIIDigit(text[start + 3]), isBoundary(text, before: start)
            else { continue }
            var groupEnds: [Int] = []
            var position = start + 4
            while groupEnds.count < 7, let end = alphanumerics(text, at: position, exactly: 4) {
                groupEnds.append(end)
                position = end
            }
            guard groupEnds.count >= 2 else { continue }
            for groups in stride(from: groupEnds.count, through: 2, by: -1) {
                let groupsEnd = groupEnds[groups - 1]
                let tail = groupsEnd < text.count && text[groupsEnd] == " " ? groupsEnd + 1 : groupsEnd
                var tailLength = 0
                while tailLength < 4, tail + tailLength < text.count, isASCIIAlphanumeric(text[tail + tailLength]) {
                    tailLength += 1
                }
                for length in stride(from: tailLength, through: 1, by: -1)
                where isBoundary(text, afterAlphanumericAt: tail + length) {
                    return start..<tail + length
                }
                if isBoundary(text, afterAlphanumericAt: groupsEnd) { return start..<groupsEnd }
            }
        }
        return nil
    }

    /// `+`, a digit, and the run of digits and ` ().-` after it up to its last digit, if that
    /// is at least six characters on.
    static func nextInternationalPhone(_ text: Text, from: Int) -> Range<Int>? {
        var index = from
        while index + 1 < text.count {
            guard text[index] == "+", isDigit(text[index + 1]) else {
                index += 1
                continue
            }
            let (lastDigit, runEnd) = phoneRun(text, after: index + 1)
            if let lastDigit, lastDigit >= index + 7 { return index..<lastDigit + 1 }
            index = runEnd
        }
        return nil
    }

    /// 12 to 19 digits, each pair apart by at most one space or hyphen.
    static func nextLongNumber(_ text: Text, from: Int) -> Range<Int>? {
        var index = from
        while index < text.count {
            guard isDigit(text[index]) else {
                index += 1
                continue
            }
            var digits = 1
            var end = index + 1
            while digits < 19 {
                var next = end
                if next < text.count, text[next] == " " || text[next] == "-" { next += 1 }
                guard next < text.count, isDigit(text[next]) else { break }
                digits += 1
                end = next + 1
            }
            if digits >= 12 { return index..<end }
            // The chain ended short: every later start in it is shorter still.
            index = end
        }
        return nil
    }

    /// An optional `(`, a digit, and the run of digits and ` ().-` after it up to its last
    /// digit, if that is at least six characters on.
    static func nextPhone(_ text: Text, from: Int) -> Range<Int>? {
        var index = from
        while index < text.count {
            let firstDigit: Int
            if isDigit(text[index]) {
                firstDigit = index
            } else if text[index] == "(", index + 1 < text.count, isDigit(text[index + 1]) {
                firstDigit = index + 1
            } else {
                index += 1
                continue
            }
            let (lastDigit, runEnd) = phoneRun(text, after: firstDigit)
            if let lastDigit, lastDigit >= firstDigit + 6 { return index..<lastDigit + 1 }
            index = runEnd
        }
        return nil
    }

    /// The last digit of the run of digits and ` ().-` after `position`, and where the run ends.
    static func phoneRun(_ text: Text, after position: Int) -> (lastDigit: Int?, end: Int) {
        var lastDigit: Int?
        var end = position + 1
        while end < text.count, isDigit(text[end]) || isPhonePunctuation(text[end]) {
            if isDigit(text[end]) { lastDigit = end }
            end += 1
        }
        return (lastDigit, end)
    }

    /// The end of `count` ASCII letters or digits at `position`, after one optional space.
    static func alphanumerics(_ text: Text, at position: Int, exactly count: Int) -> Int? {
        let start = position < text.count && text[position] == " " ? position + 1 : position
        guard start + count <= text.count, text[start..<start + count].allSatisfy(isASCIIAlphanumeric) else {
            return nil
        }
        return start + count
    }

    // MARK: Characters

    /// `\d` of Swift's regexes: any character that is a number (`٣`, `４`, `½`).
    static func isDigit(_ c: Character) -> Bool { c.isNumber }
    static func isPhonePunctuation(_ c: Character) -> Bool { c == " " || c == "(" || c == ")" || c == "." || c == "-" }
    /// Ranges like `[0-9]` and `[A-Za-z]` match a character only when it is that one scalar.
    static func ascii(_ c: Character) -> UInt8? { c.utf8.count == 1 ? c.asciiValue : nil }
    static func isASCIIDigit(_ c: Character) -> Bool { ascii(c).map { $0 >= 48 && $0 <= 57 } ?? false }
    static func isASCIILetter(_ c: Character) -> Bool {
        ascii(c).map { ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) } ?? false
    }
    static func isASCIIAlphanumeric(_ c: Character) -> Bool { isASCIILetter(c) || isASCIIDigit(c) }
    static func isHexDigit(_ c: Character) -> Bool {
        isASCIIDigit(c) || (ascii(c).map { ($0 >= 65 && $0 <= 70) || ($0 >= 97 && $0 <= 102) } ?? false)
    }
    static func isEmailLocal(_ c: Character) -> Bool {
        isASCIIAlphanumeric(c) || c == "." || c == "_" || c == "%" || c == "+" || c == "-"
    }
    static func isEmailDomain(_ c: Character) -> Bool { isASCIIAlphanumeric(c) || c == "." || c == "-" }
    /// A letter of a top-level domain, a combining mark on it included.
    static func isDomainLetter(_ c: Character) -> Bool {
        guard let first = c.unicodeScalars.first, first.isASCII else { return false }
        return isASCIILetter(Character(first))
    }

    // MARK: Word boundaries (Unicode's default, for letters, digits and what joins them)

    /// Whether `\b` holds before the letter at `index`.
    static func isBoundary(_ text: Text, before index: Int) -> Bool {
        guard index > 0 else { return true }
        let previous = text[index - 1]
        if isWordLetter(previous) || isWordDigit(previous) || isConnector(previous) { return false }
        // "x.DE…": a letter, a mid-word stop, a letter is one word.
        if midLetter.contains(previous), index >= 2, isWordLetter(text[index - 2]) { return false }
        return true
    }

    /// Whether `\b` holds at `index`, after the ASCII letter or digit at `index - 1`.
    static func isBoundary(_ text: Text, afterAlphanumericAt index: Int) -> Bool {
        guard index < text.count else { return true }
        let next = text[index]
        if isWordLetter(next) || isWordDigit(next) || isConnector(next) { return false }
        guard index + 1 < text.count else { return true }
        let afterNext = text[index + 1]
        if isASCIILetter(text[index - 1]) {
            return !(midLetter.contains(next) && isWordLetter(afterNext))
        }
        return !(midNumber.contains(next) && isWordDigit(afterNext))
    }

    /// ALetter, roughly: alphabetic, but not ideographs, kana or the scripts written without
    /// spaces, which the word rules treat apart.
    static func isWordLetter(_ c: Character) -> Bool {
        guard let scalar = c.unicodeScalars.first else { return false }
        if scalar.isASCII { return isASCIILetter(Character(scalar)) }
        let value = scalar.value
        let apart: [ClosedRange<UInt32>] = [
            0x0E00...0x0EFF, 0x1000...0x109F, 0x1780...0x17FF, 0x3040...0x30FF, 0x31F0...0x31FF, 0xFF66...0xFF9F,
        ]
        return scalar.properties.isAlphabetic && !scalar.properties.isIdeographic
            && !apart.contains { $0.contains(value) }
    }

    static func isWordDigit(_ c: Character) -> Bool {
        c.unicodeScalars.first.map { $0.properties.generalCategory == .decimalNumber } ?? false
    }

    /// ExtendNumLet: `_` and the other connectors.
    static func isConnector(_ c: Character) -> Bool {
        c.unicodeScalars.first.map { $0.properties.generalCategory == .connectorPunctuation || $0 == "\u{202F}" }
            ?? false
    }

    /// What joins two letters (MidLetter and MidNumLet) and two digits (MidNum and MidNumLet).
    static let midLetter: Set<Character> = [
        ":", "\u{00B7}", "\u{0387}", "\u{055F}", "\u{05F4}", "\u{2027}", "\u{FE13}", "\u{FE55}", "\u{FF1A}",
        ".", "'", "\u{2018}", "\u{2019}", "\u{2024}", "\u{FE52}", "\u{FF07}", "\u{FF0E}",
    ]
    static let midNumber: Set<Character> = [
        ",", ";", "\u{037E}", "\u{0589}", "\u{060C}", "\u{060D}", "\u{066C}", "\u{07F8}", "\u{2044}", "\u{FE10}",
        "\u{FE14}", "\u{FE50}", "\u{FE54}", "\u{FF0C}", "\u{FF1B}",
        ".", "'", "\u{2018}", "\u{2019}", "\u{2024}", "\u{FE52}", "\u{FF07}", "\u{FF0E}",
    ]
}

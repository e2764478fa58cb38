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
/// IBAN-like digit runs and UUIDs masked. Masking happens before truncation, so a cut never
/// leaves part of a secret visible.
public func previewRedacted(_ text: String, limit: Int = 80) -> String {
    var masked = text
    let rules: [(Regex<Substring>, String)] = [
        (#/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/#, "[uuid]"),
        (#/[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}/#, "[email]"),
        (#/\b[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,4})?\b/#, "[iban]"),
        // An international prefix makes a phone number, however many digits follow.
        (#/\+\d[\d ().\-]{5,}\d/#, "[phone]"),
        (#/\d(?:[ \-]?\d){11,18}/#, "[number]"),
        (#/\(?\d[\d ().\-]{5,}\d/#, "[phone]"),
    ]
    for (pattern, replacement) in rules {
        masked = masked.replacing(pattern, with: replacement)
    }
    let collapsed = masked.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    return String(collapsed.prefix(limit))
}

/// Intent telemetry carries hashes and short redacted previews, never raw personal data
/// (seed 002). Records that break this are rejected as `pii_violation` and never stored.
public enum PIIGuard {
    /// Field names that would carry the raw utterance.
    public static let rawUtteranceFields = ["utterance", "raw_utterance", "utterance_text", "utterance_raw"]
    public static let maxPreviewCharacters = 80

    static func checkPreview(_ value: JSONValue?, field: String) -> Rejection? {
        guard case .string(let preview)? = value else { return nil }
        if preview.count > maxPreviewCharacters {
            return Rejection(.piiViolation, "\(field) has \(preview.count) characters; a redacted preview has at most \(maxPreviewCharacters)")
        }
        if preview.contains(#/[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}/#) {
            return Rejection(.piiViolation, "\(field) contains an unmasked e-mail address")
        }
        // Seven or more digits in a phone-like run: a phone, card or account number.
        for match in preview.matches(of: #/\+?\d[\d ().\-]{5,}\d/#) where match.output.filter(\.isNumber).count >= 7 {
            _ = match
            return Rejection(.piiViolation, "\(field) contains an unmasked phone or account number")
        }
        return nil
    }
}

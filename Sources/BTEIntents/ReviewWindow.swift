import BTEDomain

/// The events a review looks at: `since < ts <= until`.
public struct ReviewWindow: Equatable, Sendable {
    public let since: Timestamp
    public let until: Timestamp

    public init(since: Timestamp, until: Timestamp) {
        self.since = since
        self.until = until
    }

    /// `since` is a duration back from `until` (`90m`, `36h`, `7d`, `2w`) or an RFC 3339 instant.
    public init(since text: String, until: Timestamp) throws(IntentReviewError) {
        if let instant = Timestamp(rfc3339: text) {
            guard instant < until else {
                throw IntentReviewError(.invalidTimestamp, "--since \(text) is not before --until \(until.rfc3339)")
            }
            self.init(since: instant, until: until)
            return
        }
        let units: [Character: Int64] = ["m": 60, "h": 3_600, "d": 86_400, "w": 604_800]
        guard let unit = text.last, let seconds = units[unit], let amount = Int64(text.dropLast()), amount > 0,
            amount <= 3_650 * 86_400 / seconds
        else {
            throw IntentReviewError(
                .invalidDuration,
                "--since takes a duration like 90m, 36h, 7d or 2w (up to 10 years) or an RFC 3339 time, not '\(text)'")
        }
        self.init(since: Timestamp(microseconds: until.microseconds - amount * seconds * 1_000_000), until: until)
    }
}

import BTEDomain

/// Where `bte replay` moves each partition.
public enum ReplayTarget: Sendable, Equatable {
    case earliest
    case latest
    case offset(Int64)
    /// The first message at or after this instant (milliseconds since the epoch).
    case datetime(milliseconds: Int64)
    /// The first message at or after now minus this many milliseconds.
    case duration(milliseconds: Int64)
    case shift(Int64)

    /// `--to-datetime`: RFC 3339 with `Z` or an explicit offset; a local time is ambiguous
    /// (whose zone?), so it is refused rather than guessed.
    public static func datetime(_ text: String) throws -> ReplayTarget {
        guard let instant = Timestamp(rfc3339: text) else {
            throw OperationsError(
                .invalidTarget,
                "--to-datetime takes RFC 3339 with Z or an explicit offset "
                    + "(2025-11-17T09:00:00Z, 2025-11-17T10:00:00+01:00), not '\(text)'")
        }
        return .datetime(milliseconds: instant.microseconds / 1000)
    }

    /// `--by-duration`: `90m`, `36h`, `7d`, `2w`, `45s`, or ISO 8601 (`P7D`, `PT36H`, `P1DT12H`, `P2W`).
    public static func duration(_ text: String) throws -> ReplayTarget {
        guard let seconds = parseDuration(text), seconds > 0 else {
            throw OperationsError(
                .invalidTarget, "--by-duration takes 90m, 36h, 7d, 2w or ISO 8601 like P7D or PT36H, not '\(text)'")
        }
        return .duration(milliseconds: seconds * 1000)
    }

    /// The longest duration accepted, in seconds: Int64.max microseconds (about 292,000 years),
    /// so that every caller can turn one into milliseconds or microseconds, and take it from
    /// now, without overflow.
    public static let maxDurationSeconds: Int64 = Int64.max / 1_000_000

    /// Seconds in `90m`, `36h`, `7d`, `2w`, `45s` or ISO 8601 `P7D`, `PT36H`; nil if malformed
    /// or longer than ``maxDurationSeconds``. The text comes from flags and query strings: all
    /// arithmetic is checked.
    public static func parseDuration(_ text: String) -> Int64? {
        func scaled(_ count: Int64, _ unit: Int64) -> Int64? {
            let (seconds, overflow) = count.multipliedReportingOverflow(by: unit)
            return overflow || seconds > maxDurationSeconds ? nil : seconds
        }
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]
        if let last = text.last, let unit = units[last], let count = Int64(text.dropLast()), count >= 0 {
            return scaled(count, unit)
        }
        // ISO 8601: P[nW][nD][T[nH][nM][nS]]; years and months have no fixed length.
        guard text.hasPrefix("P"), text.count > 1 else { return nil }
        var total: Int64 = 0
        var number = ""
        var inTime = false
        var timeParts = 0
        for character in text.dropFirst() {
            if character.isASCII, character.isNumber {
                number.append(character)
                continue
            }
            if character == "T", number.isEmpty, !inTime {
                inTime = true
                continue
            }
            guard let value = Int64(number) else { return nil }
            let unit: Int64?
            switch (character, inTime) {
            case ("W", false): unit = 604_800
            case ("D", false): unit = 86_400
            case ("H", true): unit = 3600
            case ("M", true): unit = 60
            case ("S", true): unit = 1
            default: unit = nil
            }
            guard let unit, let part = scaled(value, unit) else { return nil }
            if inTime { timeParts += 1 }
            let (sum, overflow) = total.addingReportingOverflow(part)
            guard !overflow, sum <= maxDurationSeconds else { return nil }
            total = sum
            number = ""
        }
        return number.isEmpty && (!inTime || timeParts > 0) ? total : nil
    }

    /// The flag as an operator would type it again (recorded in `bte.replay_log`).
    public var flag: String {
        switch self {
        case .earliest: return "--to-earliest"
        case .latest: return "--to-latest"
        case .offset(let offset): return "--to-offset \(offset)"
        case .datetime(let ms):
            let (micros, overflow) = ms.multipliedReportingOverflow(by: 1000)
            return "--to-datetime \(Timestamp(microseconds: overflow ? (ms < 0 ? .min : .max) : micros).rfc3339)"
        case .duration(let ms): return "--by-duration \(ms / 1000)s"
        case .shift(let by): return "--shift-by \(by >= 0 ? "+" : "")\(by)"
        }
    }
}

/// One partition as a replay finds it.
public struct PartitionBounds: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    /// The group's next offset; nil when it has none (it would start at `low`).
    public var current: Int64?
    public var low: Int64
    /// The next offset the partition will give (its high watermark).
    public var end: Int64

    public init(topic: String, partition: Int32, current: Int64?, low: Int64, end: Int64) {
        self.topic = topic
        self.partition = partition
        self.current = current
        self.low = low
        self.end = end
    }
}

/// One line of a replay plan.
public struct ReplayRow: Sendable, Equatable {
    public var bounds: PartitionBounds
    public var target: Int64

    public init(bounds: PartitionBounds, target: Int64) {
        self.bounds = bounds
        self.target = target
    }

    /// Messages the group processed already and will process again.
    public var reprocess: Int64 { max(0, (bounds.current ?? bounds.low) - target) }
    /// Messages the group had not processed yet and will now skip.
    public var skip: Int64 { max(0, target - (bounds.current ?? bounds.low)) }
}

extension ReplayTarget {
    /// The target offset of one partition, always within [low, end]. `atTime` is the first
    /// offset at or after the target instant (datetime and duration; nil: none that recent).
    public func offset(for bounds: PartitionBounds, atTime: Int64?? = nil) -> Int64 {
        func clamp(_ value: Int64) -> Int64 { min(max(value, bounds.low), bounds.end) }
        switch self {
        case .earliest: return bounds.low
        case .latest: return bounds.end
        case .offset(let offset): return clamp(offset)
        case .datetime, .duration: return clamp((atTime ?? nil) ?? bounds.end)
        case .shift(let by):
            let (sum, overflow) = (bounds.current ?? bounds.low).addingReportingOverflow(by)
            return overflow ? (by < 0 ? bounds.low : bounds.end) : clamp(sum)
        }
    }

    /// The instant (ms) a time target stands for, given now; nil for the others. Never before
    /// the epoch: Kafka reads negative times as "latest" (−1) and "earliest" (−2), and no
    /// message is older than the epoch anyway.
    public func instant(nowMilliseconds: Int64) -> Int64? {
        switch self {
        case .datetime(let ms): return max(ms, 0)
        case .duration(let ms):
            let (instant, overflow) = nowMilliseconds.subtractingReportingOverflow(ms)
            return overflow ? 0 : max(instant, 0)
        default: return nil
        }
    }
}

/// `--topic NAME[:P,P…]`: a topic, and optionally some of its partitions.
public struct TopicSelection: Sendable, Equatable {
    public var topic: String
    /// nil: every partition.
    public var partitions: [Int32]?

    public init(topic: String, partitions: [Int32]? = nil) {
        self.topic = topic
        self.partitions = partitions
    }

    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard let name = parts.first, !name.isEmpty else {
            throw OperationsError(.invalidTopic, "--topic takes NAME or NAME:P,P…, not '\(text)'")
        }
        topic = String(name)
        guard parts.count == 2 else {
            partitions = nil
            return
        }
        let numbers = parts[1].split(separator: ",").map { Int32(String($0)) }
        guard !numbers.isEmpty, numbers.allSatisfy({ ($0 ?? -1) >= 0 }) else {
            throw OperationsError(
                .invalidTopic, "--topic partitions are numbers from 0, like \(name):0,2; not '\(text)'")
        }
        partitions = numbers.compactMap { $0 }.sorted()
    }
}

/// `--since`: a duration back from now (`90m`, `36h`, `7d`, `2w`, `P7D`) or an RFC 3339 instant.
public func parseSince(_ text: String, nowMilliseconds: Int64) throws -> Timestamp {
    if let instant = Timestamp(rfc3339: text) { return instant }
    let refusal = OperationsError(
        .invalidTarget, "--since takes 90m, 36h, 7d, 2w, P7D or an RFC 3339 time with its zone, not '\(text)'")
    guard let seconds = ReplayTarget.parseDuration(text), seconds > 0 else { throw refusal }
    // Checked: `now` is the caller's, and the result must be a representable instant.
    let (milliseconds, o1) = seconds.multipliedReportingOverflow(by: 1000)
    let (instant, o2) = nowMilliseconds.subtractingReportingOverflow(milliseconds)
    let (micros, o3) = instant.multipliedReportingOverflow(by: 1000)
    guard !o1, !o2, !o3 else { throw refusal }
    return Timestamp(microseconds: micros)
}

/// `bte sweep --every`: an interval from a minute to a year of 366 days, in milliseconds. Ticks
/// are multiples of it since the epoch; a longer one would put every tick in 1970.
public func sweepInterval(_ text: String) throws -> Int64 {
    guard let seconds = ReplayTarget.parseDuration(text), (60...366 * 86_400).contains(seconds) else {
        throw OperationsError(
            .invalidTarget, "--every takes an interval from a minute to 366 days, like 15m, 1h or 1d; not \(text)")
    }
    return seconds * 1000
}

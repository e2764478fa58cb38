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

    /// Seconds in `90m`, `36h`, `7d`, `2w`, `45s` or ISO 8601 `P7D`, `PT36H`; nil if malformed.
    public static func parseDuration(_ text: String) -> Int64? {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]
        if let last = text.last, let unit = units[last], let count = Int64(text.dropLast()), count >= 0 {
            return count.multipliedReportingOverflow(by: unit).overflow ? nil : count * unit
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
            guard let unit else { return nil }
            if inTime { timeParts += 1 }
            total += value * unit
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
        case .datetime(let ms): return "--to-datetime \(Timestamp(microseconds: ms * 1000).rfc3339)"
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

    /// The instant (ms) a time target stands for, given now; nil for the others.
    public func instant(nowMilliseconds: Int64) -> Int64? {
        switch self {
        case .datetime(let ms): return ms
        case .duration(let ms): return nowMilliseconds - ms
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
    guard let seconds = ReplayTarget.parseDuration(text), seconds > 0 else {
        throw OperationsError(
            .invalidTarget, "--since takes 90m, 36h, 7d, 2w, P7D or an RFC 3339 time with its zone, not '\(text)'")
    }
    return Timestamp(microseconds: (nowMilliseconds - seconds * 1000) * 1000)
}

import BTEDomain

/// Totals of one `bte ingest` run.
public struct IngestSummary: Sendable {
    public var consumed = 0
    public var stored: [LogTable: Int] = [:]
    public var duplicates: [LogTable: Int] = [:]
    /// Records of suppressed people, dropped unstored (privacy requests).
    public var suppressed: [LogTable: Int] = [:]
    public var rejected: [RejectionCode: Int] = [:]
    public var batches = 0
    public var retries = 0
    /// Seconds from the first message consumed to the last batch committed.
    public var activeSeconds: Double = 0
    /// Time spent validating, and writing (PostgreSQL transaction plus dead letters).
    public var validateSeconds: Double = 0
    public var writeSeconds: Double = 0
    /// Time spent waiting for messages from the brokers.
    public var pollSeconds: Double = 0
    /// Time the polling thread waited for a writer to finish its previous batch.
    public var waitSeconds: Double = 0

    public var totalStored: Int { stored.values.reduce(0, +) }
    public var totalDuplicates: Int { duplicates.values.reduce(0, +) }
    public var totalRejected: Int { rejected.values.reduce(0, +) }
    public var eventsPerSecond: Double { activeSeconds > 0 ? Double(consumed) / activeSeconds : 0 }

    /// A short human summary, one fact per line.
    public func render() -> String {
        var lines: [String] = []
        lines.append(
            "consumed \(consumed) messages in \(batches) batches, "
                + "\(format(activeSeconds)) s (\(Int(eventsPerSecond)) msg/s)"
        )
        for table in LogTable.allCases {
            lines.append(
                "  stored     \(table.rawValue.padding(24)) \(stored[table, default: 0])  "
                    + "(duplicates \(duplicates[table, default: 0]))"
            )
        }
        let suppressedTotal = suppressed.values.reduce(0, +)
        if suppressedTotal > 0 {
            lines.append("  suppressed \(suppressedTotal)  (events of people suppressed by privacy requests)")
        }
        lines.append("  rejected   \(totalRejected)")
        for code in rejected.keys.sorted() {
            lines.append("             \(code.rawValue.padding(24)) \(rejected[code, default: 0])")
        }
        if retries > 0 { lines.append("  retries after infrastructure errors: \(retries)") }
        return lines.joined(separator: "\n")
    }
}

func format(_ value: Double) -> String {
    let scaled = (value * 100).rounded() / 100
    return String(scaled)
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}

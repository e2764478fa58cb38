import BTEDomain

/// The version of the computations, carried by every output.
public let engineVersion = "bte-engine/1"

/// A signal as published on `bte.signals.v1` (docs/consumers.md), with the output envelope.
public struct SignalRecord: Sendable, Equatable {
    public let id: String
    public let workspaceID: String
    public let signal: SignalValue
    public let asOf: Timestamp
    public let thresholdsVersion: Int
    public let computedFrom: Int

    public init(workspaceID: String, signal: SignalValue, asOf: Timestamp, thresholdsVersion: Int, computedFrom: Int) {
        self.workspaceID = workspaceID
        self.signal = signal
        self.asOf = asOf
        self.thresholdsVersion = thresholdsVersion
        self.computedFrom = computedFrom
        // The identity: which signal, of what, as of when, under which thresholds.
        self.id = UUIDv5.make(
            name: "signal|workspace|\(workspaceID)|\(signal.type.rawValue)|\(asOf.rfc3339)|\(thresholdsVersion)")
    }

    /// JSON with a fixed key order and number format, so equal records are equal bytes.
    public func json() -> [UInt8] {
        var fields: [(String, String)] = [
            ("id", quoted(id)),
            ("entity_type", quoted("workspace")),
            ("entity_id", quoted(workspaceID)),
            ("signal_type", quoted(signal.type.rawValue)),
            ("signal_value", formatNumber(signal.value)),
        ]
        if let label = signal.label { fields.append(("label", quoted(label))) }
        fields += [
            ("as_of", quoted(asOf.rfc3339)),
            ("thresholds_version", String(thresholdsVersion)),
            ("computed_from", String(computedFrom)),
            ("engine_version", quoted(engineVersion)),
        ]
        return JSONValue.objectBytes(fields)
    }
}

func quoted(_ text: String) -> String { JSONValue.quoted(text) }

/// Integers without a fraction, other values in Swift's shortest round-trip form; values
/// that JSON can't carry (NaN, infinity) never reach here because such signals aren't emitted.
public func formatNumber(_ value: Double) -> String {
    if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
    return String(value)
}

extension SignalComputer {
    /// The records to publish for a workspace: one per emitted signal.
    public func records(_ history: WorkspaceHistory, asOf: Timestamp) -> [SignalRecord] {
        evaluateRecords(history, asOf: asOf).records
    }

    /// The records, and the signal types that could not be computed for this workspace.
    public func evaluateRecords(_ history: WorkspaceHistory, asOf: Timestamp) -> (
        records: [SignalRecord], failed: [SignalType]
    ) {
        records(workspaceID: history.workspaceID, aggregates: aggregates(history, asOf: asOf), asOf: asOf)
    }

    /// The records finished from aggregates (counted from scratch or kept incrementally).
    /// `computed_from` is the workspace's own events in W: histories also hold older events
    /// (givens acted on in W), so counting them would make the count depend on the reader.
    public func records(workspaceID: String, aggregates: SignalAggregates, asOf: Timestamp) -> (
        records: [SignalRecord], failed: [SignalType]
    ) {
        let all = aggregates.signals(thresholds: thresholds, asOf: asOf)
        let records = all.filter { $0.value.isFinite }.map {
            SignalRecord(
                workspaceID: workspaceID, signal: $0, asOf: asOf, thresholdsVersion: thresholds.version,
                computedFrom: aggregates.used)
        }
        return (records, all.filter { !$0.value.isFinite }.map(\.type))
    }
}

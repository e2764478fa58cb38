import BTEDomain
import BTEStore
import Foundation

/// `bte rejects redrive`: re-validates rejects with today's rules (their stored bytes, or a
/// corrected record from `--fixed`) and appends the valid ones to their logs through ingest's
/// own appender, exactly once: a record already in its log is a duplicate that stores nothing,
/// each chunk is one transaction with its `bte.redrives` records, so a crash loses or doubles
/// nothing and a second redrive stores nothing new.
public struct RejectRedrive: Sendable {
    public struct Configuration: Sendable {
        /// The ingest role: the only writer of the logs.
        public var databaseURL: String
        public var filter: RejectFilter
        /// Corrected records by reject id (`--fixed`).
        public var fixed: [Int64: [UInt8]] = [:]
        public var by = "unknown"
        public var limits = ValidationLimits()
        /// Attempts per transaction.
        public var chunk = 100

        public init(databaseURL: String, filter: RejectFilter) {
            self.databaseURL = databaseURL
            self.filter = filter
        }
    }

    /// One reject's line of the report.
    public struct Line: Sendable, Equatable {
        public var rejectID: Int64
        public var topic: String
        /// The code it was rejected with.
        public var code: String
        /// `would_store` in a dry run, else a `RedriveResult.Outcome`.
        public var outcome: String
        public var detail: String
        public var fixed: Bool
    }

    public struct Report: Sendable {
        public var executed: Bool
        public var lines: [Line]

        public func count(_ outcome: String) -> Int { lines.filter { $0.outcome == outcome }.count }

        public func table() -> String {
            var out = lines.map { line in
                "reject \(line.rejectID) (\(line.code), \(line.topic))\(line.fixed ? " fixed" : ""): \(line.outcome)"
                    + (line.detail.isEmpty ? "" : " — \(line.detail)")
            }
            let outcomes = Dictionary(grouping: lines, by: \.outcome).keys.sorted()
            out.append(
                "\(lines.count) rejects: " + outcomes.map { "\(count($0)) \($0)" }.joined(separator: ", ")
                    + (executed ? "" : " (dry run: add --execute to append)"))
            return out.joined(separator: "\n")
        }

        public func json() -> String {
            let items = lines.map { line in
                "{\"reject_id\":\(line.rejectID),\"topic\":\(JSONValue.quoted(line.topic)),"
                    + "\"code\":\(JSONValue.quoted(line.code)),\"outcome\":\(JSONValue.quoted(line.outcome)),"
                    + "\"detail\":\(JSONValue.quoted(line.detail)),\"fixed\":\(line.fixed)}"
            }
            return "{\"executed\":\(executed),\"rejects\":[\(items.joined(separator: ","))]}"
        }
    }

    public let configuration: Configuration

    public init(configuration: Configuration) { self.configuration = configuration }

    /// `{"reject_id": N, "record": {…}}` per line (what `bte rejects export` writes); the id a
    /// number or a string of digits, as tools that edit JSON may write it. Blank lines are
    /// skipped. Errors name the line, never its content (a record may hold personal data).
    public static func parseFixed(_ text: String) throws -> [Int64: [UInt8]] {
        var result: [Int64: [UInt8]] = [:]
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            let number = index + 1
            guard let value = try? JSONParser.parse(Array(trimmed.utf8)), case .object = value else {
                throw RedriveError("--fixed line \(number) is not {\"reject_id\": N, \"record\": {…}} on one line")
            }
            guard let id = value["reject_id"].flatMap(rejectID) else {
                throw RedriveError(
                    "--fixed line \(number): reject_id must be a whole number from 1 to \(Int64.max), "
                        + "as a number or a string of digits")
            }
            guard let record = value["record"], case .object = record else {
                let hint = value["payload_base64"] == nil ? "" : " (turn its payload_base64 into the record)"
                throw RedriveError("--fixed line \(number): record must be a JSON object\(hint)")
            }
            guard result[id] == nil else { throw RedriveError("--fixed names reject \(id) twice (line \(number))") }
            result[id] = record.canonicalBytes()
        }
        return result
    }

    /// A reject id: a JSON number or a string of ASCII digits, 1 to Int64.max, read with
    /// checked arithmetic (a 20-digit id is refused, not wrapped).
    static func rejectID(_ value: JSONValue) -> Int64? {
        let digits: String
        switch value {
        case .number(let text), .string(let text): digits = text
        default: return nil
        }
        guard !digits.isEmpty else { return nil }
        var id: Int64 = 0
        for byte in digits.utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (scaled, o1) = id.multipliedReportingOverflow(by: 10)
            let (sum, o2) = scaled.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !o1, !o2 else { return nil }
            id = sum
        }
        return id >= 1 ? id : nil
    }

    private func attempts(_ rejects: [StoredReject]) -> [(StoredReject, RedriveAttempt)] {
        let validator = RecordValidator(limits: configuration.limits)
        return rejects.map { reject in
            let fixed = configuration.fixed[reject.id]
            let attempt: RedriveAttempt.Candidate
            if let kind = InputKind.allCases.first(where: { reject.topic.hasSuffix($0.rawValue) }),
                let bytes = fixed ?? reject.payload
            {
                switch validator.validate(kind: kind, key: reject.key, value: bytes) {
                case .success(let record):
                    attempt = .valid(
                        IncomingRecord(
                            record: record,
                            source: SourcePosition(
                                topic: reject.topic, partition: reject.partition, offset: reject.offset),
                            key: reject.key, value: bytes))
                case .failure(let rejection): attempt = .invalid(rejection)
                }
            } else {
                attempt = .notRedrivable
            }
            return (reject, RedriveAttempt(rejectID: reject.id, fixed: fixed != nil, candidate: attempt))
        }
    }

    private func rejects() throws -> [StoredReject] {
        var filter = configuration.filter
        // --fixed alone selects exactly the rejects it names.
        if filter.codes.isEmpty && filter.ids.isEmpty { filter.ids = configuration.fixed.keys.sorted() }
        filter.limit = 0
        let found = try RejectStore(url: configuration.databaseURL).rejects(filter, payloads: true)
        let known = Set(found.map(\.id))
        if let missing = configuration.fixed.keys.sorted().first(where: { !known.contains($0) }) {
            throw RedriveError("--fixed names reject \(missing), which is not among the selected rejects")
        }
        return found
    }

    /// What a redrive would do; writes nothing.
    public func plan() throws -> Report {
        let lines = attempts(try rejects()).map { reject, attempt in
            switch attempt.candidate {
            case .valid(let incoming):
                return Line(
                    rejectID: reject.id, topic: reject.topic, code: reject.code, outcome: "would_store",
                    detail: "valid now: \(incoming.record.table.rawValue) \(incoming.record.id)", fixed: attempt.fixed)
            case .invalid(let rejection):
                return Line(
                    rejectID: reject.id, topic: reject.topic, code: reject.code, outcome: "still_invalid",
                    detail: "\(rejection.code.rawValue): \(rejection.message)", fixed: attempt.fixed)
            case .notRedrivable:
                return Line(
                    rejectID: reject.id, topic: reject.topic, code: reject.code, outcome: "not_redrivable",
                    detail: "its payload was not kept", fixed: attempt.fixed)
            }
        }
        return Report(executed: false, lines: lines)
    }

    /// Appends the valid ones and records every attempt, a chunk per transaction.
    public func execute() throws -> Report {
        let pairs = attempts(try rejects())
        let store = try IngestStore(url: configuration.databaseURL, group: "bte-redrive", holdsGroupLock: false)
        var lines: [Line] = []
        var index = 0
        while index < pairs.count {
            let chunk = Array(pairs[index..<min(index + max(configuration.chunk, 1), pairs.count)])
            let results = try store.redrive(chunk.map(\.1), by: configuration.by)
            for ((reject, attempt), result) in zip(chunk, results) {
                let detail: String
                switch result.outcome {
                case .stored, .alreadyStored: detail = "\(result.table?.rawValue ?? "") \(result.eventID ?? "")"
                default: detail = [result.code, result.message].compactMap { $0 }.joined(separator: ": ")
                }
                lines.append(
                    Line(
                        rejectID: reject.id, topic: reject.topic, code: reject.code, outcome: result.outcome.rawValue,
                        detail: detail, fixed: attempt.fixed))
            }
            index += chunk.count
        }
        return Report(executed: true, lines: lines)
    }
}

public struct RedriveError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ message: String) { description = "redrive_invalid_input: \(message)" }
}

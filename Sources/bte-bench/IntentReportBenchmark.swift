import BTEDomain
import BTEFixtures
import BTEIntents
import BTEStore
import Dispatch
import Foundation
import Postgres

/// Loads generated intent events into a fresh database through the ingest appender, then times
/// `bte intents report` and `propose-boosts` against a plain count over the same window (the
/// cheapest possible pass over those rows, measured in the same run).
public struct IntentReportBenchmark: Sendable {
    public struct Result: Sendable {
        public var events = 0
        public var loadSeconds = 0.0
        public var countSeconds = 0.0
        public var reportSeconds = 0.0
        public var versionReportSeconds = 0.0
        public var proposalSeconds = 0.0

        public func render() -> String {
            func line(_ label: String, _ value: Double) -> String {
                let ratio = String(format: "%.1f", countSeconds > 0 ? value / countSeconds : 0)
                return "\(label)\(String(format: "%7.0f", value * 1_000)) ms  (\(ratio)× the count)"
            }
            let loadRate = Int((Double(events) / max(loadSeconds, 1e-9)).rounded())
            return """
                events: \(events) intent events over 7 days, loaded at \(loadRate) events/s
                baseline count(*) over the window:\(String(format: "%7.0f", countSeconds * 1_000)) ms
                \(line("intents report --since 7d:         ", reportSeconds))
                \(line("intents report --prompt-version V: ", versionReportSeconds))
                \(line("intents propose-boosts --since 30d:", proposalSeconds))
                """
        }
    }

    public var events = 1_000_000
    /// URL of a role that may create databases.
    public var adminURL: String
    /// Each timing is the best of this many runs.
    public var repeats = 3

    public init(adminURL: String) {
        self.adminURL = adminURL
    }

    public func run() throws -> Result {
        let until = Timestamp(rfc3339: "2026-11-17T00:00:00Z") ?? Timestamp(microseconds: 0)
        let window = ReviewWindow(since: Timestamp(microseconds: until.microseconds - 7 * 86_400_000_000), until: until)
        var result = Result()
        result.events = events
        return try withScratchDatabase(adminURL: adminURL, "intents") { url in
            let connection = try PostgresConnection(url: url, applicationName: "bte-bench")
            let start = DispatchTime.now()
            try load(into: connection, until: until)
            try connection.execute("ANALYZE agent.intent_events")
            result.loadSeconds = seconds(since: start)

            let store = IntentReviewStore(connection: connection)
            func best(_ body: () throws -> Void) throws -> Double {
                var fastest = Double.infinity
                for _ in 0..<max(repeats, 1) {
                    let start = DispatchTime.now()
                    try body()
                    fastest = min(fastest, seconds(since: start))
                }
                return fastest
            }
            result.countSeconds = try best {
                _ = try connection.execute(
                    "SELECT count(*) FROM agent.intent_events WHERE ts > $1::timestamptz AND ts <= $2::timestamptz",
                    [window.since.rfc3339, window.until.rfc3339])
            }
            result.reportSeconds = try best {
                _ = IntentReport(try store.reportInput(window: window, promptVersion: nil, top: 10)).table()
            }
            result.versionReportSeconds = try best {
                _ = IntentReport(try store.reportInput(window: window, promptVersion: "p-2", top: 10)).table()
            }
            let month = ReviewWindow(
                since: Timestamp(microseconds: until.microseconds - 30 * 86_400_000_000), until: until)
            result.proposalSeconds = try best {
                let input = try store.proposalInput(window: month)
                _ = BoostProposal(
                    window: month, userChoices: input.userChoices, forcedOverrides: input.forcedOverrides,
                    current: input.current, minSupport: 5
                ).json()
            }
            return result
        }
    }

    /// Realistic telemetry: 3 prompt versions, 200 verbs, 5 scope buckets, clarify ~20%,
    /// SemReg denies ~15%, forced verbs ~5%; validated and appended exactly as ingest does.
    private func load(into connection: PostgresConnection, until: Timestamp) throws {
        var rng = SplitMix64(seed: 42)
        let validator = RecordValidator()
        let verbs = (0..<200).map { "domain\($0 % 12).verb\($0)" }
        let scopes = ["cbu", "kyc", "deal", "entity", "case"]
        let outcomes = [
            "matched", "matched", "matched", "matched", "matched", "matched", "clarify_verb", "clarify_args",
            "no_allowed_verbs", "error",
        ]
        let span = 7 * 86_400_000_000 as Int64
        let statement = IngestStore.copyStatement(for: .intentEvents)
        var index = 0
        while index < events {
            var records: [IncomingRecord] = []
            let end = min(index + 50_000, events)
            records.reserveCapacity(end - index)
            for offset in index..<end {
                let ts = Timestamp(
                    microseconds: until.microseconds - span + Int64(Double(offset) / Double(events) * Double(span)))
                let candidates = (0..<(3 + rng.next(3))).map { _ in JSONValue.quoted(verbs[rng.next(verbs.count)]) }
                let outcome = outcomes[rng.next(outcomes.count)]
                var fields = [
                    "\"record_type\":\"intent_event\"", "\"event_id\":\"\(rng.uuid())\"", "\"ts\":\"\(ts.rfc3339)\"",
                    "\"session_id\":\"\(rng.uuid())\"", "\"actor_id\":\"analyst-\(rng.next(50))\"",
                    "\"entrypoint\":\"chat\"",
                    "\"utterance_hash\":\"\(rng.hex64())\"",
                    "\"semreg_mode\":\"\(rng.next(50) == 0 ? "fail_open" : "applied")\"",
                    "\"outcome\":\"\(outcome)\"", "\"prompt_version\":\"p-\(1 + rng.next(3))\"",
                    "\"scope\":\"\(scopes[rng.next(scopes.count)]):\(rng.next(1_000))\"",
                    "\"subject_ref_type\":\"\(["entity", "case", "none"][rng.next(3)])\"",
                    "\"verb_candidates_pre\":[\(candidates.joined(separator: ","))]",
                    "\"macro_semreg_checked\":false",
                ]
                if outcome != "no_allowed_verbs" {
                    fields.append("\"chosen_verb_fqn\":\(candidates[rng.next(2)])")
                    fields.append("\"selection_source\":\"\(rng.next(5) == 0 ? "user_choice" : "discovery")\"")
                }
                if rng.next(7) == 0 { fields.append("\"semreg_denied_verbs\":[\(candidates[2])]") }
                if rng.next(20) == 0 { fields.append("\"forced_verb_fqn\":\(candidates[1])") }
                if outcome == "error" { fields.append("\"error_code\":\"timeout\"") }
                let value = Array(("{" + fields.joined(separator: ",") + "}").utf8)
                guard
                    case .success(let record) = validator.validate(
                        kind: .intent, key: Array("session".utf8), value: value)
                else {
                    throw BenchmarkError(message: "a generated intent event failed validation")
                }
                records.append(
                    IncomingRecord(
                        record: record, source: SourcePosition(topic: "bench", partition: 0, offset: Int64(offset)),
                        key: nil, value: nil))
            }
            try connection.copyIn(statement, data: IngestStore.copyData(records[...]))
            index = end
        }
    }
}

import BTEDomain
import BTEStore
import PropertyBased
import Testing

/// The privacy ledger's lines: what reads, what is refused (with one code), and that no line
/// traps the reader.
struct PrivacyLedgerEntryTests {
    static let ref = String(repeating: "ab", count: 32)
    static let ref2 = String(repeating: "0f", count: 32)
    static let request = "5e5e5e5e-0000-4000-8000-000000000001"
    static let workspace = "e5e5e5e5-0000-4000-8000-000000000001"

    /// A canonical line: members sorted, times with six digits.
    static let line: String = {
        let events: String =
            #"[{"at":"2026-03-02T10:00:00.000000Z","evidence":{},"person_ref":null,"status":"received"},"#
            + #"{"at":"2026-03-02T10:00:00.250000Z","evidence":{"subject_deleted":true,"vectors":2},"#
            + #""person_ref":"\#(ref)","status":"completed"}]"#
        let head: String = #"{"due_at":"2026-04-01T10:00:00.000000Z","events":\#(events),"#
        let tail: String =
            #""person_refs":["\#(ref)"],"received_at":"2026-03-02T10:00:00.000000Z","reference":"t-1","#
            + #""request_id":"\#(request)","request_type":"erase","requested_by":"dpo","#
            + #""workspace_id":"\#(workspace)"}"#
        return head + tail
    }()

    static func parse(_ text: String) -> Result<PrivacyLedgerEntry, StoreError> {
        Result(catching: { () throws(StoreError) -> PrivacyLedgerEntry in
            try PrivacyLedgerEntry.parse(Array(text.utf8))
        })
    }

    @Test func aLineReadsAndIsWrittenBackTheSame() throws {
        let entry = try Self.parse(Self.line).get()
        #expect(entry.requestID == Self.request && entry.workspaceID == Self.workspace)
        #expect(entry.type == .erase && entry.personRefs == [Self.ref] && entry.reference == "t-1")
        #expect(entry.requestedBy == "dpo")
        // 2026-03-02T10:00:00Z is 1,772,445,600 s after the epoch; due 30 days later.
        #expect(entry.receivedAt.microseconds == 1_772_445_600_000_000)
        #expect(entry.dueAt.microseconds == 1_772_445_600_000_000 + 30 * 86_400_000_000)
        #expect(entry.events.map(\.status) == ["received", "completed"])
        #expect(entry.events.map(\.personRef) == [nil, Self.ref])
        #expect(entry.events[1].at.microseconds == 1_772_445_600_250_000)
        #expect(entry.line == Self.line)
        // Upper-case UUIDs are read in their lowercase form; no reference is null.
        let upper = Self.line.replacingOccurrences(of: Self.workspace, with: Self.workspace.uppercased())
            .replacingOccurrences(of: #""reference":"t-1""#, with: #""reference":null"#)
        let read = try Self.parse(upper).get()
        #expect(read.workspaceID == Self.workspace && read.reference == nil)
    }

    static func replacing(_ from: String, _ to: String) -> String {
        let changed = line.replacingOccurrences(of: from, with: to)
        precondition(changed != line, "\(from) is not in the line")
        return changed
    }

    @Test(
        arguments: [
            "", "[]", "{}", "not json",
            replacing(#""request_type":"erase""#, #""request_type":"export""#),
            replacing(#""request_type":"erase""#, #""request_type":"delete""#),
            replacing(#""request_id":"\#(request)""#, #""request_id":"r-1""#),
            replacing(#""workspace_id":"\#(workspace)""#, #""workspace_id":7"#),
            replacing(#""person_refs":["\#(ref)"]"#, #""person_refs":[]"#),
            replacing(#""person_refs":["\#(ref)"]"#, #""person_refs":["\#(ref)","\#(ref)"]"#),
            replacing(#""person_refs":["\#(ref)"]"#, #""person_refs":["\#(ref.uppercased())"]"#),
            replacing(#""person_refs":["\#(ref)"]"#, #""person_refs":["user-1"]"#),
            replacing(#""reference":"t-1""#, #""reference":"""#),
            replacing(#""requested_by":"dpo""#, #""requested_by":"""#),
            replacing(#""received_at":"2026-03-02T10:00:00.000000Z""#, #""received_at":"yesterday""#),
            replacing(#""due_at":"2026-04-01T10:00:00.000000Z","#, ""),
            replacing(#""status":"completed""#, #""status":"done""#),
            replacing(#""person_ref":"\#(ref)","status""#, #""person_ref":"\#(ref2)","status""#),
            replacing(#""evidence":{},"#, #""evidence":[],"#),
            replacing(#""events":["#, #""events":[1,"#),
        ])
    func refusesWithOneCode(line: String) {
        guard case .failure(let error) = Self.parse(line) else {
            Issue.record("read: \(line)")
            return
        }
        #expect(error.code == .invalidLedger, "\(line)")
    }

    @Test func oversizedLinesAndDeepNestingAreRefused() {
        let long = Self.line.replacingOccurrences(
            of: #""requested_by":"dpo""#,
            with: #""requested_by":"\#(String(repeating: "x", count: PrivacyLedgerEntry.maxLineBytes))""#)
        #expect(Self.parse(long).failureCode == .invalidLedger)
        let deep = Self.line.replacingOccurrences(
            of: #""evidence":{}"#,
            with: #""evidence":{"a":\#(String(repeating: "[", count: 40))\#(String(repeating: "]", count: 40))}"#)
        #expect(Self.parse(deep).failureCode == .invalidLedger)
    }

    @Test func entriesReadBackAndNoLineTrapsTheReader() async {
        let types: [PrivacyRequestType] = [.erase, .eraseAndSuppress, .suppress, .unsuppress]
        let statuses = PrivacyLedgerEntry.statuses.sorted()
        await propertyCheck(count: 1_000, input: Gen.int64(in: 0...Int64.max)) { seed in
            var rng = RequestBodyPropertyTests.SplitMix(state: UInt64(seed))
            func hex(_ count: Int) -> String {
                String((0..<count).map { _ in "0123456789abcdef".randomElement(using: &rng) ?? "0" })
            }
            func time() -> Timestamp {
                Timestamp(
                    microseconds: Int64.random(in: 0..<Timestamp.acceptedRange.upperBound.microseconds, using: &rng))
            }
            var refs: [String] = []
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let ref = hex(64)
                if !refs.contains(ref) { refs.append(ref) }
            }
            let uuid = { (n: String) in "\(n.prefix(8))-0000-4000-8000-\(n.suffix(12))" }
            let events = (0..<Int.random(in: 0...5, using: &rng)).map { _ in
                PrivacyLedgerEntry.Event(
                    personRef: Bool.random(using: &rng) ? nil : refs.randomElement(using: &rng),
                    status: statuses.randomElement(using: &rng) ?? "received",
                    evidence: RequestBodyPropertyTests.object(&rng, depth: 1), at: time())
            }
            let entry = PrivacyLedgerEntry(
                requestID: uuid(hex(20)), workspaceID: uuid(hex(20)), type: types.randomElement(using: &rng) ?? .erase,
                personRefs: refs, reference: Bool.random(using: &rng) ? nil : "ref \(hex(6))",
                requestedBy: "by \(hex(4))", receivedAt: time(), dueAt: time(), events: events)
            let line = Array(entry.line.utf8)
            // Evidence is written canonically (members sorted), so compare what is written.
            #expect((try? PrivacyLedgerEntry.parse(line))?.line == entry.line, "seed \(seed)")
            #expect((try? PrivacyLedgerEntry.parse(line))?.personRefs == refs, "seed \(seed)")
            // A changed byte reads as a valid entry (then it is a fixed point) or is refused.
            var broken = line
            broken[Int.random(in: 0..<broken.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            if let read = try? PrivacyLedgerEntry.parse(broken) {
                #expect((try? PrivacyLedgerEntry.parse(Array(read.line.utf8)))?.line == read.line, "seed \(seed)")
            }
        }
    }
}

extension Result where Failure == StoreError {
    var failureCode: StoreError.Code? {
        if case .failure(let error) = self { return error.code }
        return nil
    }
}

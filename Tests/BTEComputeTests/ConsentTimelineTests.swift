import BTECompute
import Testing

struct ConsentTimelineTests {
    typealias Change = ConsentTimeline.Change

    @Test func withoutEventsConsentHolds() {
        #expect(ConsentTimeline().allows(at: 0))
        #expect(ConsentTimeline().allows(at: .min) && ConsentTimeline().allows(at: .max))
    }

    /// The newest change at or before a time holds: withdrawn at 100, granted at 200, withdrawn
    /// at 300 (given out of order).
    @Test func theNewestChangeAtOrBeforeATimeHolds() {
        let timeline = ConsentTimeline([
            Change(time: 300, eventID: "c", granted: false), Change(time: 100, eventID: "a", granted: false),
            Change(time: 200, eventID: "b", granted: true),
        ])
        let expected: [(Int64, Bool)] = [
            (99, true), (100, false), (199, false), (200, true), (299, true), (300, false), (.max, false),
        ]
        for (time, allowed) in expected { #expect(timeline.allows(at: time) == allowed, "\(time)") }
    }

    /// Two changes at the same microsecond are ordered by event id, the log's content: "b"
    /// (granted) after "a" (withdrawn) holds, whichever was read first.
    @Test func sameTimeChangesAreOrderedByEventID() {
        let one = ConsentTimeline([
            Change(time: 5, eventID: "b", granted: true), Change(time: 5, eventID: "a", granted: false),
        ])
        let other = ConsentTimeline([
            Change(time: 5, eventID: "a", granted: false), Change(time: 5, eventID: "b", granted: true),
        ])
        #expect(one == other && one.allows(at: 5) && one.allows(at: 4))
        #expect(one.changes.map(\.eventID) == ["a", "b"])
    }
}

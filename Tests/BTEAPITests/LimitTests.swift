import Foundation
import Testing

@testable import BTEAPI

/// The bounds of the server's per-caller state, without servers.
struct LimitTests {
    /// Jobs: at most 2 of a workspace and 3 in all (here); a slot comes back when its job ends.
    @Test func jobAdmissionBoundsEachWorkspaceAndTheServer() throws {
        let admission = JobAdmission(perWorkspace: 2, total: 3)
        try admission.enter("a")
        try admission.enter("a")
        #expect(throws: JobAdmission.Refusal.workspaceFull) { try admission.enter("a") }
        try admission.enter("b")
        // 3 in all: another workspace is refused by the server's bound.
        #expect(throws: JobAdmission.Refusal.serverFull) { try admission.enter("c") }
        admission.leave("a")
        try admission.enter("c")
        #expect(throws: JobAdmission.Refusal.serverFull) { try admission.enter("a") }
    }

    /// Replies to requests with an Idempotency-Key: the first reply for the same request, a
    /// refusal for another one under the key; at most `capacity` kept, the oldest dropped first.
    @Test func idempotentRepliesAreBoundedAndCompareTheRequest() {
        let replies = IdempotentReplies(capacity: 2)
        replies.store("w|k1", request: [1], reply: "one")
        #expect(replies.lookup("w|k1", request: [1]) == .reply("one"))
        #expect(replies.lookup("w|k1", request: [2]) == .reused)
        #expect(replies.lookup("w|k2", request: [1]) == .miss)
        replies.store("w|k2", request: [1], reply: "two")
        replies.store("w|k3", request: [1], reply: "three")
        #expect(replies.lookup("w|k1", request: [1]) == .miss)
        #expect(replies.lookup("w|k3", request: [1]) == .reply("three"))
        // Older than a day: gone.
        #expect(replies.lookup("w|k3", request: [1], now: .now + .seconds(86_401)) == .miss)
    }

    /// Past its capacity the limiter drops idle (refilled) buckets first, so one busy address
    /// keeps its count while thousands of others come and go.
    @Test func rateLimiterCapacityDropsIdleBucketsFirst() {
        let limiter = RateLimiter<String>(capacity: 3)
        let start = ContinuousClock.now
        #expect(limiter.take(key: "busy", rate: 1, burst: 1, now: start) == nil)
        for n in 0..<10 { _ = limiter.take(key: "other-\(n)", rate: 1, burst: 1, now: start + .seconds(5)) }
        #expect(limiter.count <= 3)
        let busy = RateLimiter<String>(capacity: 2)
        _ = busy.take(key: "a", rate: 1, burst: 1, now: start)
        _ = busy.take(key: "b", rate: 1, burst: 1, now: start)
        // c comes when a and b are both still spent: everything is dropped rather than growing.
        _ = busy.take(key: "c", rate: 1, burst: 1, now: start)
        #expect(busy.count == 1)
    }

    /// The dashboard names what failed, never the server's error text.
    @Test func problemsLoseTheirDetails() {
        #expect(
            OperationsSnapshot.withoutDetails("PostgreSQL: connection to 10.0.0.5 as bte_reader refused")
                == "PostgreSQL can't be read now (see bte status)")
        #expect(
            OperationsSnapshot.withoutDetails("Kafka (group bte-ingest): broker kafka-1:9092 down")
                == "the broker can't be read now (see bte status)")
        #expect(OperationsSnapshot.withoutDetails("a partition is 12.0 s behind") == "a partition is 12.0 s behind")
    }

    /// Open connections are counted up to the cap; one past it is refused until one leaves.
    @Test func connectionGateCountsToItsCap() {
        let gate = ConnectionGate(cap: 2)
        #expect(gate.enter() && gate.enter())
        #expect(!gate.enter())
        gate.leave()
        #expect(gate.enter())
        #expect(gate.count == 2)
    }
}

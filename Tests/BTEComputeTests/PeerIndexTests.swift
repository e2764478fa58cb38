import BTEDomain
import Testing

@testable import BTECompute

/// Which successes an event counts: those whose order key is at most its bound.
struct PeerIndexTests {
    static let sv = "00000000-0000-4000-8000-0000000000aa"

    static func success(_ workspace: String, _ type: String, at time: Int64, order: Int64) -> PeerSuccess {
        PeerSuccess(
            workspaceID: workspace, subVerticalID: sv, actionType: type, timestamp: Timestamp(microseconds: time),
            order: order)
    }

    static func count(
        _ index: PeerIndex, _ type: String = "call", excluding: String = "c", after: Int64 = 0,
        upTo: Int64 = 1_000
    ) -> Int {
        index.count(
            subVertical: sv, actionType: type, excluding: excluding, after: Timestamp(microseconds: after),
            upTo: Timestamp(microseconds: upTo))
    }

    @Test func anEventCountsTheSuccessesOrderedBeforeIt() {
        // Given out of order: the index keeps them by key.
        let index = PeerIndex([
            Self.success("a", "call", at: 30, order: 3), Self.success("a", "call", at: 10, order: 1),
            Self.success("b", "call", at: 15, order: 2), Self.success("a", "call", at: 20, order: 2),
            Self.success("b", "email", at: 5, order: 0),
        ])
        #expect(Self.count(index) == 4)  // unbounded: a@10, a@20, a@30, b@15
        #expect(Self.count(index.through(3)) == 4)
        #expect(Self.count(index.through(2)) == 3)  // a@10, b@15, a@20
        #expect(Self.count(index.through(1)) == 1)  // a@10
        #expect(Self.count(index.through(0)) == 0)
        #expect(Self.count(index.through(0), "email") == 1)  // order 0: every event counts it
        #expect(Self.count(index.through(2), excluding: "a") == 1)  // b@15
        #expect(Self.count(index.through(2), after: 10, upTo: 20) == 2)  // b@15, a@20
        var grown = index
        grown.insert(Self.success("b", "call", at: 1, order: 4))
        #expect(Self.count(grown.through(3)) == 4)
        #expect(Self.count(grown) == 5)
        #expect(Self.count(index) == 4)  // the copy is unchanged
    }

    /// Against a plain filter, over many keys (whole blocks, the newest few past the bound, and
    /// inserts into the middle) with a fixed seed.
    @Test func countsEqualAFilterOverEverySuccess() {
        var state: UInt64 = 0x5EED_1234
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        var all: [PeerSuccess] = []
        var index = PeerIndex([])
        for step in 0..<1_500 {
            // Mostly in key order, now and then behind it.
            let order = next(10) == 0 ? Int64(next(step + 1)) : Int64(step)
            let success = Self.success(["a", "b", "c"][next(3)], "call", at: Int64(next(1_000)), order: order)
            all.append(success)
            index.insert(success)
            guard step % 97 == 0 || step > 1_480 else { continue }
            for _ in 0..<20 {
                let bound = Int64(next(step + 2)) - 1
                let low = Int64(next(1_000))
                let high = low + Int64(next(400))
                let excluding = ["a", "b", "x"][next(3)]
                let expected = all.count {
                    $0.order <= bound && $0.timestamp.microseconds > low && $0.timestamp.microseconds <= high
                        && $0.workspaceID != excluding
                }
                #expect(
                    Self.count(index.through(bound), excluding: excluding, after: low, upTo: high) == expected,
                    "step \(step) bound \(bound) (\(low), \(high)]")
            }
        }
    }
}

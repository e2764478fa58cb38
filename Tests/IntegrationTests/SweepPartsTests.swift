import Foundation
import Testing

@testable import BTEProjection

/// The sweep's threads claim workspace ranges one at a time and share one read of the peers.
struct SweepPartsTests {
    final class Count: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0
        var value: Int { lock.withLock { count } }
        func increment() { lock.withLock { count += 1 } }
    }

    struct Refused: Error {}

    /// Threads ask in whatever order the pool runs them; the value is made once and every one
    /// gets it. A failure is kept and handed to every later asker too.
    @Test func onceMakesItsValueOnceForEveryThread() throws {
        let once = Once<Int>()
        let made = Count()
        let results = Slots<Int>(count: 8)
        DispatchQueue.concurrentPerform(iterations: 8) { index in
            results.set(
                index,
                Result {
                    try once.get {
                        made.increment()
                        Thread.sleep(forTimeInterval: 0.01)
                        return 42
                    }
                })
        }
        #expect(try results.values() == Array(repeating: 42, count: 8))
        #expect(made.value == 1)

        let failing = Once<Int>()
        #expect(throws: Refused.self) { try failing.get { throw Refused() } }
        #expect(throws: Refused.self) { try failing.get { 1 } }
    }

    @Test func slotsHandEachPartToOneThread() throws {
        let slots = Slots<Int>(count: 100)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            while let next = slots.claim() { slots.set(next, .success(next * 2)) }
        }
        #expect(try slots.values() == (0..<100).map { $0 * 2 })
        #expect(slots.claim() == nil)
        // An unfilled slot is an error, not a silent gap.
        #expect(throws: (any Error).self) { try Slots<Int>(count: 1).values() }
    }
}

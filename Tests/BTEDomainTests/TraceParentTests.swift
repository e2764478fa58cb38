import BTEDomain
import PropertyBased
import Testing

/// The W3C `traceparent` header: the specification's examples, what is not a trace context, and
/// that no header traps the reader or reads back differently.
struct TraceParentTests {
    static let example = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    static func read(_ text: String) -> TraceParent? { TraceParent(Array(text.utf8)) }

    @Test func readsTheSpecificationsExample() throws {
        let context = try #require(Self.read(Self.example))
        #expect(
            context.traceID == [
                0x4B, 0xF9, 0x2F, 0x35, 0x77, 0xB3, 0x4D, 0xA6, 0xA3, 0xCE, 0x92, 0x9D, 0x0E, 0x0E, 0x47, 0x36,
            ])
        #expect(context.parentID == [0x00, 0xF0, 0x67, 0xAA, 0x0B, 0xA9, 0x02, 0xB7])
        #expect(context.flags == 1)
        #expect(context.header == Self.example)
        // A child keeps the trace and the flags and names its own parent.
        let child = try #require(context.child(parentID: [1, 2, 3, 4, 5, 6, 7, 8]))
        #expect(child.header == "00-4bf92f3577b34da6a3ce929d0e0e4736-0102030405060708-01")
        #expect(context.child(parentID: [0, 0, 0, 0, 0, 0, 0, 0]) == nil)
        // A later version may carry more after a dash, and is read as version 00.
        #expect(
            Self.read("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds")?.header
                == Self.example)
        #expect(Self.read("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")?.header == Self.example)
    }

    @Test(
        arguments: [
            "", "00", example + "-", example + "0", String(example.dropLast()),
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ])
    func refuses(header: String) {
        #expect(Self.read(header) == nil, "\(header)")
    }

    @Test func everyContextReadsBackAndNoHeaderTrapsTheReader() async {
        await propertyCheck(count: 2_000, input: Gen.int64(in: 0...Int64.max)) { seed in
            var rng = Xoshiro(seed: (UInt64(seed), 0x9E37_79B9_7F4A_7C15, 1, 2))
            let trace = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let parent = (0..<8).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let flags = UInt8.random(in: 0...255, using: &rng)
            guard let context = TraceParent(traceID: trace, parentID: parent, flags: flags) else {
                // Only all-zero ids are refused.
                #expect(trace.allSatisfy { $0 == 0 } || parent.allSatisfy { $0 == 0 }, "seed \(seed)")
                return
            }
            let header = Array(context.header.utf8)
            #expect(header.count == 55)
            #expect(TraceParent(header) == context, "seed \(seed)")
            // A changed byte reads as a context that writes itself back (as version 00), or as none.
            var broken = header
            broken[Int.random(in: 0..<broken.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            if let read = TraceParent(broken) {
                #expect(Array(read.header.utf8)[2...] == broken[2...], "seed \(seed)")
            }
            // Any bytes at all: no trap.
            let noise = (0..<Int.random(in: 0...80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = TraceParent(noise)
        }
    }
}

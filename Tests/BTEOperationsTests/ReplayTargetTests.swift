import BTEOperations
import Testing

struct ReplayTargetTests {
    // A partition with messages at offsets 100..<250, the group at 200.
    let partition = PartitionBounds(topic: "t", partition: 0, current: 200, low: 100, end: 250)

    @Test func targetsStayWithinThePartition() {
        #expect(ReplayTarget.earliest.offset(for: partition) == 100)
        #expect(ReplayTarget.latest.offset(for: partition) == 250)
        #expect(ReplayTarget.offset(150).offset(for: partition) == 150)
        #expect(ReplayTarget.offset(5).offset(for: partition) == 100)
        #expect(ReplayTarget.offset(9_999).offset(for: partition) == 250)
        #expect(ReplayTarget.shift(-30).offset(for: partition) == 170)
        #expect(ReplayTarget.shift(+30).offset(for: partition) == 230)
        #expect(ReplayTarget.shift(-500).offset(for: partition) == 100)
        #expect(ReplayTarget.shift(Int64.min).offset(for: partition) == 100)
        #expect(ReplayTarget.shift(Int64.max).offset(for: partition) == 250)
    }

    @Test func aGroupWithoutAnOffsetStartsAtTheLowOffset() {
        let fresh = PartitionBounds(topic: "t", partition: 0, current: nil, low: 100, end: 250)
        #expect(ReplayTarget.shift(20).offset(for: fresh) == 120)
        #expect(ReplayRow(bounds: fresh, target: 100).reprocess == 0)
        #expect(ReplayRow(bounds: fresh, target: 250).skip == 150)
    }

    @Test func timeTargetsUseTheFirstOffsetAtTheInstantOrTheEnd() {
        let target = ReplayTarget.datetime(milliseconds: 0)
        #expect(target.offset(for: partition, atTime: .some(180)) == 180)
        // No message that recent: nothing to re-process, the group goes to the end.
        #expect(target.offset(for: partition, atTime: .some(nil)) == 250)
    }

    @Test func reprocessAndSkipCountMessages() {
        // Back from 200 to 100: 100 messages again. Forward from 200 to 250: 50 skipped.
        #expect(ReplayRow(bounds: partition, target: 100).reprocess == 100)
        #expect(ReplayRow(bounds: partition, target: 100).skip == 0)
        #expect(ReplayRow(bounds: partition, target: 250).skip == 50)
        #expect(ReplayRow(bounds: partition, target: 250).reprocess == 0)
    }

    @Test func datetimesNeedAnExplicitOffsetAndConvertToUTC() throws {
        // 2025-11-17T10:00:00+01:00 is 09:00Z: 1763370000 s since the epoch
        // (20409 days × 86400 = 1763337600, + 9 h = 32400).
        #expect(try ReplayTarget.datetime("2025-11-17T10:00:00+01:00") == .datetime(milliseconds: 1_763_370_000_000))
        #expect(try ReplayTarget.datetime("2025-11-17T09:00:00Z") == .datetime(milliseconds: 1_763_370_000_000))
        #expect(try ReplayTarget.datetime("2025-11-17T04:00:00-05:00") == .datetime(milliseconds: 1_763_370_000_000))
        for local in ["2025-11-17T09:00:00", "2025-11-17", "yesterday"] {
            #expect(throws: OperationsError.self) { try ReplayTarget.datetime(local) }
        }
    }

    @Test func durationsInShortAndISOForms() throws {
        let day: Int64 = 86_400_000
        #expect(try ReplayTarget.duration("7d") == .duration(milliseconds: 7 * day))
        #expect(try ReplayTarget.duration("P7D") == .duration(milliseconds: 7 * day))
        #expect(try ReplayTarget.duration("36h") == .duration(milliseconds: 36 * 3_600_000))
        #expect(try ReplayTarget.duration("PT36H") == .duration(milliseconds: 36 * 3_600_000))
        #expect(try ReplayTarget.duration("P1DT12H") == .duration(milliseconds: 36 * 3_600_000))
        #expect(try ReplayTarget.duration("90m") == .duration(milliseconds: 90 * 60_000))
        #expect(try ReplayTarget.duration("2w") == .duration(milliseconds: 14 * day))
        #expect(try ReplayTarget.duration("P2W") == .duration(milliseconds: 14 * day))
        for bad in ["", "7", "d", "P", "PT", "P1M", "P1Y", "7x", "-7d", "P7DT", "PT1D"] {
            #expect(throws: OperationsError.self, "\(bad)") { try ReplayTarget.duration(bad) }
        }
        // Now minus the duration.
        #expect(ReplayTarget.duration(milliseconds: 1_000).instant(nowMilliseconds: 5_000) == 4_000)
    }

    @Test func topicSelections() throws {
        #expect(
            try TopicSelection(parsing: "bte.business-events.v1") == TopicSelection(topic: "bte.business-events.v1"))
        #expect(try TopicSelection(parsing: "a.b:2,0") == TopicSelection(topic: "a.b", partitions: [0, 2]))
        for bad in ["", ":1", "a:", "a:x", "a:-1"] {
            #expect(throws: OperationsError.self, "\(bad)") { try TopicSelection(parsing: bad) }
        }
    }
}

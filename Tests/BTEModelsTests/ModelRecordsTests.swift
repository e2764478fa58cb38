import BTEDomain
import BTEModels
import Testing

@Suite struct ModelRecordsTests {
    static func fitted() -> FittedStateSpace {
        FittedStateSpace(
            parameters: SimulationTests.scalar, standardization: Standardization(offsets: [10], scales: [2]),
            kpis: ["daily_active_users"], controls: ["rollout_pct"], disturbances: ["day_of_week"], lastDay: 20_000,
            lastControls: [0.5], nextMean: [1], nextCovariance: Matrix([[0.1]]))
    }

    /// The controls' ranges over the fitted days travel with the run; runs recorded before they
    /// were kept read back without them.
    @Test func controlRangesSeenRoundTripAndAreOptional() throws {
        var run = Self.fitted()
        run.controlRangesSeen = [0.25...1]
        let back = try FittedStateSpace(json: try JSONParser.parse(Array(run.json.canonicalString().utf8)))
        #expect(back.controlRangesSeen == [0.25...1])
        #expect(back == run)
        let older = try FittedStateSpace(json: try JSONParser.parse(Array(Self.fitted().json.canonicalString().utf8)))
        #expect(older.controlRangesSeen == nil)

        let text = run.json.canonicalString()
        for bad in [#"[[1,0.25]]"#, #"[[0.25,1],[0,1]]"#, #"[[0.25]]"#] {
            let broken = text.replacingOccurrences(
                of: #""control_ranges_seen":[[0.25,1]]"#, with: "\"control_ranges_seen\":\(bad)")
            #expect(broken != text)
            #expect(throws: ModelError.self) { try FittedStateSpace(json: try JSONParser.parse(Array(broken.utf8))) }
        }
    }
}

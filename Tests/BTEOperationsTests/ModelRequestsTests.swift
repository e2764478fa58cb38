import BTEDomain
import BTEModelRuns
import BTEModels
import BTEOperations
import Testing

/// Model requests from JSON, as the HTTP bodies and the commands' files give them.
struct ModelRequestsTests {
    static let workspace = "5e0c1d2a-3b4c-4d5e-8f60-718293a4b5c6"
    static let run = "78e45074-080a-4abb-957c-1ccded9d3ca3"

    static func json(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    static func message(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as ModelError {
            return "\(error.code.rawValue): \(error.message)"
        } catch {
            return "\(error)"
        }
    }

    @Test func anEstimateTakesItsDefaultsAndItsSettings() throws {
        let plain = try ModelRequests.estimate(
            try Self.json(#"{"model":"state_space"}"#), workspaceID: Self.workspace, yesterday: 20_000)
        // 365 days ending yesterday; the state dimension 4; disturbances of the calendar.
        #expect(plain.days == 365 && plain.toDay == 20_000 && plain.stateDimension == 4)
        #expect(plain.disturbances == ["day_of_week", "monthly_cycle"])
        let set = try ModelRequests.estimate(
            try Self.json(
                #"{"model":"rc_retention","since":"13w","until":"2026-01-31","nx":2,"ridge":0.5,"max_iterations":9,"#
                    + #""forgetting":0.9,"workspace_id":"\#(Self.workspace.uppercased())"}"#
            ), workspaceID: Self.workspace, yesterday: 20_000)
        // 13 weeks = 91 days; 2026-01-31 is day 20,484 (56 years and 14 leap days after 1970 = 20,454, + 30).
        #expect(set.days == 91 && set.toDay == 20_484 && set.model == "rc_retention")
        #expect(set.stateDimension == 2 && set.options.ridge == 0.5 && set.options.maxIterations == 9)
        #expect(set.forgetting == 0.9)
        // 29 February of a leap year; EM's default iterations, as the command's.
        let leap = try ModelRequests.estimate(
            try Self.json(#"{"model":"state_space","until":"2024-02-29"}"#), workspaceID: Self.workspace,
            yesterday: 20_000)
        // 2024-01-01 is day 19,723 (54 years, 13 leap days); + 31 + 28 = 19,782.
        #expect(leap.toDay == 19_782 && leap.options.maxIterations == EMOptions().maxIterations)
    }

    @Test(
        arguments: [
            (#"{}"#, "model_invalid_input: model is required: rc_retention or state_space"),
            (#"{"model":"arima"}"#, "model_invalid_input: model is rc_retention or state_space, not arima"),
            (#"{"model":"state_space","sinse":90}"#, "model_invalid_input: unknown member sinse"),
            (
                #"{"model":"state_space","since":13}"#,
                "model_invalid_input: since is 14 to 3,660 days (90, \"90d\" or \"13w\")"
            ),
            (#"{"model":"state_space","nx":13}"#, "model_invalid_input: nx must be a whole number from 1 to 12"),
            (#"{"model":"state_space","forgetting":0}"#, "model_invalid_input: forgetting is in (0, 1]"),
            (#"{"model":"state_space","until":"yesterday"}"#, "model_invalid_input: until must be a date, YYYY-MM-DD"),
            // A year that would overflow the day arithmetic, a day the month doesn't have.
            (
                #"{"model":"state_space","until":"100000000000000000-01-01"}"#,
                "model_invalid_input: until must be a date, YYYY-MM-DD"
            ),
            (#"{"model":"state_space","until":"2025-02-29"}"#, "model_invalid_input: until must be a date, YYYY-MM-DD"),
            (#"{"model":"state_space","until":"2025-04-31"}"#, "model_invalid_input: until must be a date, YYYY-MM-DD"),
            (#"{"model":"state_space","until":"2025-1-31"}"#, "model_invalid_input: until must be a date, YYYY-MM-DD"),
            (
                #"{"model":"state_space","workspace_id":"99999999-2222-4333-8444-555555555555"}"#,
                "model_run_not_found: no workspace 99999999-2222-4333-8444-555555555555 for this key"
            ),
            ("[1]", "model_invalid_input: the body must be a JSON object"),
        ] as [(String, String)])
    func aBadEstimateSaysWhatIsWrong(body: String, expected: String) throws {
        let parsed = try Self.json(body)
        #expect(
            Self.message { _ = try ModelRequests.estimate(parsed, workspaceID: Self.workspace, yesterday: 20_000) }
                == expected)
    }

    @Test func aSimulationTakesAPlanDayByDayOrTheCommandsFileWhole() throws {
        let days = try ModelRequests.simulate(
            try Self.json(
                #"{"run":"\#(Self.run.uppercased())","horizon":7,"controls":[{},{"rollout_pct":1}],"#
                    + #""seed":9,"scenarios":10}"#
            ), forecast: false)
        #expect(days.runID == Self.run && days.horizon == 7 && days.seed == 9 && days.scenarios == 10)
        #expect(days.plan == [[:], ["rollout_pct": 1]])
        let file = try ModelRequests.simulate(
            try Self.json(#"{"run_id":"\#(Self.run)","controls":{"controls":{"promo_voltage":0.5}}}"#), forecast: false)
        #expect(file.plan == [["promo_voltage": 0.5]] && file.horizon == 28 && file.seed == 1)
        // A forecast has no plan, and refuses one.
        #expect(try ModelRequests.simulate(try Self.json(#"{"run_id":"\#(Self.run)"}"#), forecast: true).plan == nil)
        let withPlan = try Self.json(#"{"run_id":"\#(Self.run)","controls":{}}"#)
        #expect(
            Self.message { _ = try ModelRequests.simulate(withPlan, forecast: true) }
                == "model_invalid_input: unknown member controls")
        let half = try Self.json(#"{"run_id":"\#(Self.run)","controls":{"rollout_pct":"half"}}"#)
        #expect(
            Self.message { _ = try ModelRequests.simulate(half, forecast: false) }
                == "model_invalid_input: controls.rollout_pct must be a finite number")
    }

    @Test func constraintsNeedTargetsAndOrderedBounds() throws {
        let settings = try ModelRequests.constraints(
            try Self.json(
                #"{"targets":{"daily_active_users":900},"control_bounds":{"rollout_pct":[0,0.8]},"weekly_budget":null}"#
            ))
        #expect(settings.targets == ["daily_active_users": 900] && settings.controlBounds["rollout_pct"] == 0...0.8)
        #expect(settings.weeklyBudget == nil && settings.latencyMax == 250)
        for (body, expected) in [
            (#"{}"#, "model_invalid_input: the constraints need targets"),
            (
                #"{"targets":{"x":1},"control_bounds":{"rollout_pct":[1,0]}}"#,
                "model_invalid_input: control_bounds.rollout_pct: lower above upper"
            ),
            (#"{"targets":{"x":1},"budget":3}"#, "model_invalid_input: unknown constraint budget"),
        ] {
            let parsed = try Self.json(body)
            #expect(Self.message { _ = try ModelRequests.constraints(parsed) } == expected)
        }
    }
}

import BTEDomain
import BTEIntents
import Testing

@Suite struct ReviewWindowTests {
    let until = Timestamp(rfc3339: "2026-11-25T12:00:00Z")!

    @Test func durationsCountBackFromUntil() throws {
        #expect(try ReviewWindow(since: "7d", until: until).since.rfc3339 == "2026-11-18T12:00:00.000000Z")
        #expect(try ReviewWindow(since: "36h", until: until).since.rfc3339 == "2026-11-24T00:00:00.000000Z")
        #expect(try ReviewWindow(since: "90m", until: until).since.rfc3339 == "2026-11-25T10:30:00.000000Z")
        #expect(try ReviewWindow(since: "2w", until: until).since.rfc3339 == "2026-11-11T12:00:00.000000Z")
        #expect(
            try ReviewWindow(since: "2026-11-01T00:00:00Z", until: until).since.rfc3339 == "2026-11-01T00:00:00.000000Z"
        )
    }

    @Test(arguments: ["", "7", "d", "-3d", "0d", "7y", "1.5d", "99999w", "2026-12-01T00:00:00Z"])
    func badSinceIsATypedError(_ text: String) {
        #expect(throws: IntentReviewError.self) { try ReviewWindow(since: text, until: until) }
    }
}

@Suite struct IntentReportTests {
    static let window = ReviewWindow(
        since: Timestamp(rfc3339: "2026-11-18T00:00:00Z")!, until: Timestamp(rfc3339: "2026-11-25T00:00:00Z")!)
    // 13 events: p1 has 8, p2 has 4, one without a version.
    static let groups = [
        OutcomeGroup(
            promptVersion: "p1", outcome: "matched", errorCode: nil, semregMode: "applied", events: 5, denied: 1,
            forced: 0),
        OutcomeGroup(
            promptVersion: "p1", outcome: "clarify_verb", errorCode: nil, semregMode: "applied", events: 2, denied: 0,
            forced: 0),
        OutcomeGroup(
            promptVersion: "p1", outcome: "error", errorCode: "timeout", semregMode: "fail_open", events: 1, denied: 0,
            forced: 1),
        OutcomeGroup(
            promptVersion: "p2", outcome: "matched", errorCode: nil, semregMode: "applied", events: 3, denied: 2,
            forced: 1),
        OutcomeGroup(
            promptVersion: "p2", outcome: "clarify_args", errorCode: nil, semregMode: "applied", events: 1, denied: 0,
            forced: 0),
        OutcomeGroup(
            promptVersion: nil, outcome: "no_allowed_verbs", errorCode: nil, semregMode: "deny_all", events: 1,
            denied: 1, forced: 0),
    ]

    func report(_ version: String?) -> IntentReport {
        IntentReport(
            IntentReportInput(
                window: Self.window, promptVersion: version, groups: Self.groups,
                hottestVerbs: [
                    VerbTally(verb: "cbu.create", events: 4, matched: 3),
                    VerbTally(verb: "cbu.list", events: 2, matched: 2),
                ],
                deniedVerbs: [VerbTally(verb: "cbu.delete", events: 2)],
                clarifyVerbs: [VerbTally(verb: "cbu.create", events: 2), VerbTally(verb: "cbu.list", events: 1)]))
    }

    @Test func ratesOverAllVersions() {
        let totals = report(nil).totals
        #expect(totals.events == 13)
        #expect(formatRate(totals.matchRate) == "0.6154")  // 8/13 = 0.61538…
        #expect(formatRate(totals.clarifyRate) == "0.2308")  // 3/13
        #expect(formatRate(totals.clarifyVerbRate) == "0.1538")  // 2/13
        #expect(formatRate(totals.clarifyArgsRate) == "0.0769")  // 1/13
        #expect(formatRate(totals.semregDenyRate) == "0.3077")  // (1+2+1)/13
        #expect(formatRate(totals.semregDegradedRate) == "0.1538")  // fail_open 1 + deny_all 1
        #expect(formatRate(totals.forcedRate) == "0.1538")  // 2/13
        #expect(formatRate(totals.errorRate) == "0.0769")  // 1/13
    }

    @Test func oneVersionFiltersEverySectionButTheComparison() {
        let report = report("p1")
        #expect(report.totals.events == 8)
        #expect(report.totals.matchRate == 0.625)
        #expect(report.totals.clarifyRate == 0.25)
        #expect(
            report.failureModes == [
                .init(outcome: "clarify_verb", errorCode: nil, events: 2, share: 0.25),
                .init(outcome: "error", errorCode: "timeout", events: 1, share: 0.125),
            ])
        #expect(report.semregModes.map(\.name) == ["applied", "fail_open"])
        // Clarify verbs' share is of the 2 clarify_verb events.
        #expect(report.clarifyVerbs.map(\.share) == [1.0, 0.5])
        #expect(report.hottestVerbs.map(\.matchRate) == [0.75, 1.0])
        #expect(report.promptVersions.map(\.promptVersion) == ["p1", "p2", nil])
        let p2 = report.promptVersions[1].rates
        #expect(
            (p2.events, p2.matchRate, p2.clarifyArgsRate, p2.semregDenyRate, p2.forcedRate) == (
                4, 0.75, 0.25, 0.5, 0.25
            ))
    }

    @Test func jsonHasAStableShape() {
        let json = report("p2").json()
        #expect(json.hasPrefix("{\n  \"window\": {\n    \"since\": \"2026-11-18T00:00:00.000000Z\""))
        #expect(
            json.contains("\"totals\": {\n    \"events\": 4,\n    \"match_rate\": 0.75,\n    \"clarify_rate\": 0.25,"))
        #expect(
            json.contains(
                "\"failure_modes\": [\n    {\n      \"outcome\": \"clarify_args\",\n      \"error_code\": null,\n"
                    + "      \"events\": 1,\n      \"share\": 0.25\n    }\n  ]"
            ))
        #expect(json.contains("\"prompt_version\": null,\n      \"events\": 1,"))
        #expect((try? JSONParser.parse(Array(json.utf8))) != nil)
    }

    @Test func tableNamesEverySection() {
        let table = report(nil).table()
        #expect(table.contains("events 13: matched 61.5%, clarify 23.1% (verb 15.4%, args 7.7%), SemReg deny 30.8%"))
        #expect(table.contains("\n  error (timeout)   1   7.7%\n  no_allowed_verbs  1   7.7%\n"))
        for title in [
            "top failure modes", "SemReg modes", "hottest verbs", "most denied verbs", "verbs offered in clarify_verb",
            "prompt versions",
        ] {
            #expect(table.contains(title))
        }
    }

    @Test func emptyWindowReportsZeroes() {
        let report = IntentReport(
            IntentReportInput(
                window: Self.window, promptVersion: nil, groups: [], hottestVerbs: [], deniedVerbs: [], clarifyVerbs: []
            ))
        #expect(report.totals.events == 0)
        #expect(report.totals.matchRate == 0)
        #expect(report.table().contains("(none)"))
    }
}

@Suite struct BoostProposalTests {
    static let window = IntentReportTests.window

    @Test func weightsAreSupportOverTheBucket() throws {
        // Bucket cbu/entity: 6 choices of cbu.create, 2 of cbu.list (8); kyc/none: 3 of kyc.open.
        let choices = [
            ChoiceTally(scopeBucket: "cbu", subjectKind: "entity", verb: "cbu.create", events: 6),
            ChoiceTally(scopeBucket: "cbu", subjectKind: "entity", verb: "cbu.list", events: 2),
            ChoiceTally(scopeBucket: "kyc", subjectKind: "none", verb: "kyc.open", events: 3),
        ]
        let forced = [
            ChoiceTally(scopeBucket: "cbu", subjectKind: "entity", verb: "cbu.archive", events: 4),
            ChoiceTally(scopeBucket: "cbu", subjectKind: "entity", verb: "cbu.merge", events: 2),
        ]
        let inForce = BoostKey(scopeBucket: "kyc", subjectKind: "none", phase: "discovery", verb: "kyc.open")
        let proposal = BoostProposal(
            window: Self.window, userChoices: choices, forcedOverrides: forced, current: [inForce: 1], minSupport: 3)
        // cbu.list (2) and cbu.merge (2) lack support; kyc.open's weight 3/3 = 1 is already in force.
        #expect(proposal.rules.map(\.rule.key.verb) == ["cbu.create", "cbu.archive"])
        #expect(proposal.rules.map(\.rule.weight) == [0.75, 0.67])  // 6/8, 4/6 = 0.666…
        #expect(proposal.rules.map(\.rule.key.phase) == ["discovery", "semreg"])
        #expect(
            proposal.rules[0].rule.reason.hasPrefix(
                "users picked it themselves (user_choice) in 6 of 8 choices (scope cbu, subject entity"))
        let parsed = try BoostProposal.rules(fromFile: Array(proposal.json().utf8))
        #expect(parsed == proposal.rules.map(\.rule))
    }

    @Test func aRuleCarriesTheWeightItReplaces() throws {
        let key = BoostKey(scopeBucket: "cbu", subjectKind: "entity", phase: "discovery", verb: "cbu.create")
        let proposal = BoostProposal(
            window: Self.window,
            userChoices: [ChoiceTally(scopeBucket: "cbu", subjectKind: "entity", verb: "cbu.create", events: 4)],
            forcedOverrides: [], current: [key: 0.5], minSupport: 1)
        #expect(proposal.rules.map(\.rule.replacing) == [0.5])
        #expect(proposal.json().contains("\"boost_weight\": 1,\n      \"current_weight\": 0.5,"))
        #expect(try BoostProposal.rules(fromFile: Array(proposal.json().utf8)).map(\.replacing) == [0.5])
    }

    @Test func theIdDependsOnTheRulesNotTheirOrder() {
        let a = BoostRule(
            key: BoostKey(scopeBucket: "cbu", subjectKind: "entity", phase: "discovery", verb: "cbu.create"),
            weight: 0.75, reason: "r")
        let b = BoostRule(
            key: BoostKey(scopeBucket: "cbu", subjectKind: "entity", phase: "semreg", verb: "cbu.archive"), weight: 0.5,
            reason: "r")
        #expect(BoostProposal.id(of: [a, b]) == BoostProposal.id(of: [b, a]))
        var edited = b
        edited.weight = 0.4
        #expect(BoostProposal.id(of: [a, b]) != BoostProposal.id(of: [a, edited]))
        #expect(BoostProposal.id(of: [a]).count == 19)  // "bp-" + 16 hex digits
    }

    @Test(arguments: [
        ("not json", IntentReviewError.Code.invalidProposal),
        ("{\"rules\": []}", .invalidProposal),
        ("{\"kind\": \"bte.verb-boost-proposal\", \"rules\": []}", .emptyProposal),
        (
            """
            {"kind": "bte.verb-boost-proposal", "rules": [{"scope_bucket": "cbu", "subject_kind": "entity", \
            "phase": "discovery", "verb_fqn": "x", "boost_weight": 1.5, "reason": "r"}]}
            """,
            .invalidProposal
        ),
        (
            """
            {"kind": "bte.verb-boost-proposal", "rules": [{"scope_bucket": " ", "subject_kind": "entity", \
            "phase": "discovery", "verb_fqn": "x", "boost_weight": 0.5, "reason": "r"}]}
            """,
            .invalidProposal
        ),
        (
            """
            {"kind": "bte.verb-boost-proposal", "rules": [{"scope_bucket": "cbu", "subject_kind": "entity", \
            "phase": "discovery", "verb_fqn": "x", "boost_weight": "0.5", "reason": "r"}]}
            """,
            .invalidProposal
        ),
        (
            """
            {"kind": "bte.verb-boost-proposal", "rules": [{"scope_bucket": "cbu", "subject_kind": "entity", \
            "phase": "discovery", "verb_fqn": "x", "boost_weight": 0.5, "current_weight": "none", "reason": "r"}]}
            """,
            .invalidProposal
        ),
        (
            """
            {"kind": "bte.verb-boost-proposal", "rules": [{"scope_bucket": "cbu", "subject_kind": "entity", \
            "phase": "discovery", "verb_fqn": "x", "boost_weight": 0.5, "reason": "r"}, \
            {"scope_bucket": "cbu", "subject_kind": "entity", "phase": "discovery", "verb_fqn": "x", \
            "boost_weight": 0.2, "reason": "r"}]}
            """,
            .invalidProposal
        ),
    ])
    func badProposalFilesAreRefused(_ text: String, _ code: IntentReviewError.Code) {
        #expect { try BoostProposal.rules(fromFile: Array(text.utf8)) } throws: {
            ($0 as? IntentReviewError)?.code == code
        }
    }
}

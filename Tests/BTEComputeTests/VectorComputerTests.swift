import BTECompute
import BTEDomain
import Testing

private func t(_ text: String) -> Timestamp { Timestamp(rfc3339: text) ?? Timestamp(microseconds: -1) }
private func user(_ id: String, _ workspace: String = UserKey.defaultWorkspace) -> UserKey {
    UserKey(workspaceID: workspace, userID: id)
}

@Suite struct VectorComputerTests {
    let asOf = t("2026-02-01T00:00:00Z")

    func interactions() -> [Interaction] {
        [
            // Session s1, Monday 2026-01-26 mornings: 09:00 → 10:00 = 60 minutes.
            Interaction(
                eventID: "e1", userID: "u", sessionID: "s1", timestamp: t("2026-01-26T09:00:00Z"), eventType: "tap",
                capsuleType: "task", durationMilliseconds: 400),
            Interaction(
                eventID: "e2", userID: "u", sessionID: "s1", timestamp: t("2026-01-26T09:30:00Z"), eventType: "expand",
                capsuleType: "task", durationMilliseconds: 600),
            Interaction(
                eventID: "e3", userID: "u", sessionID: "s1", timestamp: t("2026-01-26T10:00:00Z"), eventType: "click",
                capsuleType: "alert", durationMilliseconds: 200, success: false),
            // Session s2, Tuesday 2026-01-27: 13:00 (afternoon) → 23:00 (night) = 600 minutes.
            Interaction(
                eventID: "e4", userID: "u", sessionID: "s2", timestamp: t("2026-01-27T13:00:00Z"), eventType: "tap",
                capsuleType: "workflow"),
            Interaction(
                eventID: "e5", userID: "u", sessionID: "s2", timestamp: t("2026-01-27T23:00:00Z"), eventType: "expand",
                durationMilliseconds: 800),
            // Exactly 30 days before as_of (outside), after as_of, and another user's.
            Interaction(
                eventID: "e0", userID: "u", sessionID: "s0", timestamp: t("2026-01-02T00:00:00Z"), eventType: "tap"),
            Interaction(
                eventID: "e9", userID: "u", sessionID: "s9", timestamp: t("2026-02-02T00:00:00Z"), eventType: "tap"),
            Interaction(
                eventID: "x1", userID: "other", sessionID: "s1", timestamp: t("2026-01-26T09:10:00Z"),
                eventType: "tap"),
        ]
    }

    @Test func handComputedVector() throws {
        let vector = try #require(VectorComputer().compute(user: user("u"), interactions: interactions(), asOf: asOf))
        #expect(vector.totalInteractions == 5)
        #expect(vector.totalSessions == 2)
        #expect(vector.avgSessionDurationMinutes == 330)  // (60 + 600) / 2
        #expect(vector.avgInteractionsPerSession == 2.5)
        #expect(vector.timeOfDay.map(\.0) == ["morning", "afternoon", "evening", "night"])
        #expect(vector.timeOfDay.map(\.1) == [0.6, 0.2, 0, 0.2])  // 3, 1, 0, 1 of 5
        #expect(vector.dayOfWeek.map(\.1) == [0.6, 0.4, 0, 0, 0, 0, 0])  // Monday 3, Tuesday 2
        #expect(vector.capsuleTypes.map(\.0) == ["alert", "task", "workflow"])
        #expect(vector.capsuleTypes.map(\.1) == [0.25, 0.5, 0.25])  // 1, 2, 1 of the 4 with a type
        #expect(vector.avgInteractionDurationMs == 500)  // (400 + 600 + 200 + 800) / 4
        #expect(vector.animationPreference == "standard")  // 500 is not below 500
        #expect(vector.errorRate == 0.2)
        #expect(vector.completionRate == 0.8)
        #expect(vector.dataDensity == "high")  // 2 expands of 5 ≥ 0.2
        #expect(vector.layoutPreference == "comfortable")  // 2.5 < 10 a session
        #expect(vector.expertiseLevel == "novice")
        #expect(vector.activeDays == 2)
        // 0.4 · 2/20 + 0.3 · 2.5/10 + 0.3 · 2/30 = 0.04 + 0.075 + 0.02
        #expect(abs(vector.engagementScore - 0.135) < 1e-12)
        #expect(vector.lastActive == t("2026-01-27T23:00:00Z"))
        for distribution in [vector.timeOfDay, vector.dayOfWeek, vector.capsuleTypes] {
            #expect(abs(distribution.map(\.1).reduce(0, +) - 1) < 1e-12)
        }
    }

    /// The same user id in two workspaces is two people: each vector counts its own workspace's
    /// interactions only, and their ids differ.
    @Test func sameUserIDInTwoWorkspacesIsTwoPeople() throws {
        let a = "aaaaaaaa-0000-4000-8000-000000000001"
        let b = "BBBBBBBB-0000-4000-8000-000000000002"  // any letter case names the same workspace
        let day = t("2026-01-26T09:00:00Z").microseconds
        let events = (0..<10).map { index in
            Interaction(
                eventID: "w\(index)", workspaceID: index < 3 ? a : b.lowercased(), userID: "u-shared", sessionID: "s",
                timestamp: Timestamp(microseconds: day + Int64(index) * 60_000_000), eventType: "tap")
        }
        let inA = try #require(VectorComputer().compute(user: user("u-shared", a), interactions: events, asOf: asOf))
        let inB = try #require(VectorComputer().compute(user: user("u-shared", b), interactions: events, asOf: asOf))
        #expect(inA.totalInteractions == 3)  // w0…w2
        #expect(inB.totalInteractions == 7)  // w3…w9
        #expect(inA.id != inB.id)
        #expect(inB.user.workspaceID == "bbbbbbbb-0000-4000-8000-000000000002")
        #expect(VectorComputer().compute(user: user("u-shared"), interactions: events, asOf: asOf) == nil)
        let text = String(decoding: inB.json(thresholdsVersion: 1, computedFrom: 7), as: UTF8.self)
        #expect(text.contains("\"workspace_id\":\"bbbbbbbb-0000-4000-8000-000000000002\",\"user_id\":\"u-shared\""))
    }

    @Test func userKeyOnTheVectorsTopic() {
        let key = user("a/b", "AAAAAAAA-0000-4000-8000-000000000001")
        #expect(key.topicKey == "aaaaaaaa-0000-4000-8000-000000000001/a/b")
        #expect(UserKey(topicKey: key.topicKey) == key)
        #expect(UserKey(topicKey: "not-a-uuid/u") == nil)
        #expect(UserKey(topicKey: "u-without-workspace") == nil)
    }

    @Test func noInteractionsNoVector() {
        #expect(VectorComputer().compute(user: user("nobody"), interactions: interactions(), asOf: asOf) == nil)
    }

    @Test(arguments: [
        (0, "novice"), (19, "novice"), (20, "intermediate"), (99, "intermediate"), (100, "proficient"),
        (299, "proficient"), (300, "advanced"), (999, "advanced"), (1000, "power_user"),
    ])
    func expertiseTierBoundaries(interactions: Int, level: String) {
        #expect(ExpertiseTier.level(for: interactions) == level)
    }

    @Test func engagementScoreStaysInUnitInterval() throws {
        // 1000 interactions over 40 sessions on 30 days: every term saturates at 1.
        var many: [Interaction] = []
        for index in 0..<1000 {
            let day = index % 30
            let time = Timestamp(
                microseconds: asOf.microseconds - Int64(day + 1) * 86_400_000_000 + Int64(index) * 1_000_000)
            many.append(
                Interaction(
                    eventID: "m\(index)", userID: "p", sessionID: "s\(index % 40)", timestamp: time, eventType: "tap"))
        }
        let vector = try #require(VectorComputer().compute(user: user("p"), interactions: many, asOf: asOf))
        #expect(vector.engagementScore == 1)
        #expect(vector.expertiseLevel == "power_user")
        #expect(vector.layoutPreference == "compact")  // 25 a session
    }

    @Test func vectorJSONIsStableAndOrderIndependent() throws {
        let forward = try #require(VectorComputer().compute(user: user("u"), interactions: interactions(), asOf: asOf))
        let backward = try #require(
            VectorComputer().compute(user: user("u"), interactions: interactions().reversed(), asOf: asOf))
        #expect(
            forward.json(thresholdsVersion: 2, computedFrom: 5) == backward.json(thresholdsVersion: 2, computedFrom: 5))
        let text = String(decoding: forward.json(thresholdsVersion: 2, computedFrom: 5), as: UTF8.self)
        #expect(
            text.hasPrefix(
                "{\"id\":\"\(forward.id)\",\"workspace_id\":\"00000000-0000-0000-0000-000000000000\","
                    + "\"user_id\":\"u\",\"computed_at\":\"2026-02-01T00:00:00.000000Z\","
                    + "\"version\":\"1.0\",\"expertise_level\":\"novice\""
            ))
        #expect(
            text.contains(
                "\"time_of_day_distribution\":{\"morning\":0.6,\"afternoon\":0.2,\"evening\":0,\"night\":0.2}"))
        #expect(text.hasSuffix("\"thresholds_version\":2,\"computed_from\":5,\"engine_version\":\"bte-engine/1\"}"))
    }
}

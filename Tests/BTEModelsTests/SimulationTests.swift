import BTEModels
import Foundation
import Testing

@Suite struct SimulationTests {
    /// xoshiro256** seeded by SplitMix64(42), as the published algorithms give (computed with an
    /// independent implementation).
    @Test func generatorMatchesTheReferenceAlgorithm() {
        var rng = SeededGenerator(seed: 42)
        #expect(rng.next() == 1_546_998_764_402_558_742)
        #expect(rng.next() == 6_990_951_692_964_543_102)
        #expect(rng.next() == 12_544_586_762_248_559_009)
        var again = SeededGenerator(seed: 42)
        // (first >> 11 + 0.5) / 2^53
        #expect(abs(again.uniform() - 0.08386297105988222) < 1e-16)
    }

    /// x' = 0.5x + u, y = 2x + 0.5u, x0 = 1, u = 1, no noise: y = 2.5, 3.5, 4.0 (x = 1, 1.5,
    /// 1.75); in KPI units 10 + 2y = 15, 17, 18.
    static let scalar = StateSpaceParameters(
        a: Matrix([[0.5]]), b: Matrix([[1]]), c: Matrix([[2]]), d: Matrix([[0.5]]), e: Matrix([[0]]),
        q: Matrix([[0]]), r: Matrix([[0]]), initialMean: [1], initialCovariance: Matrix([[0]]))

    static func plan(controls: [[Double]], scenarios: Int = 100, seed: UInt64 = 1) -> SimulationPlan {
        SimulationPlan(
            startMean: [1], startCovariance: Matrix([[0]]), controls: controls,
            disturbances: controls.map { _ in [0] }, scenarios: scenarios, seed: seed, observationOffset: [10],
            observationScale: [2])
    }

    @Test func noiselessPlanFollowsTheDynamics() throws {
        let result = try Simulator.run(Self.scalar, Self.plan(controls: [[1], [1], [1]]))
        let mean = result.trajectories[0].mean
        for (value, expected) in zip(mean, [15.0, 17.0, 18.0]) { #expect(abs(value - expected) < 1e-6) }
        #expect(abs(result.trajectories[0].p2_5[2] - 18) < 1e-6 && abs(result.trajectories[0].p97_5[2] - 18) < 1e-6)
    }

    /// The noiseless path is 15, 17, 18 (above). Within [0, 16] day 1 stays 15 and days 2 and 3
    /// are set to 16: 2 of 3 scenario-days clamped in every scenario, share 2/3. Without a range
    /// nothing is clamped.
    @Test func drawsOutsideAKPIsPossibleRangeAreSetToItsEndAndCounted() throws {
        var plan = Self.plan(controls: [[1], [1], [1]], scenarios: 10)
        plan.observationRanges = [0...16]
        let kept = try Simulator.run(Self.scalar, plan)
        for (value, expected) in zip(kept.trajectories[0].mean, [15.0, 16.0, 16.0]) {
            #expect(abs(value - expected) < 1e-9)
        }
        for (value, expected) in zip(kept.trajectories[0].p97_5, [15.0, 16.0, 16.0]) {
            #expect(abs(value - expected) < 1e-9)
        }
        #expect(abs(kept.clampedShare[0] - 2.0 / 3.0) < 1e-12)
        #expect(try Simulator.run(Self.scalar, Self.plan(controls: [[1], [1], [1]])).clampedShare == [0])
        plan.observationRanges = [0...1, 0...1]
        #expect(throws: ModelError.self) { try Simulator.run(Self.scalar, plan) }
    }

    @Test func sameSeedSameNumbers() throws {
        var noisy = Self.scalar
        noisy.q = Matrix([[0.1]])
        noisy.r = Matrix([[0.2]])
        let a = try Simulator.run(noisy, Self.plan(controls: [[1], [0], [1]], seed: 7))
        let b = try Simulator.run(noisy, Self.plan(controls: [[1], [0], [1]], seed: 7))
        let c = try Simulator.run(noisy, Self.plan(controls: [[1], [0], [1]], seed: 8))
        #expect(a.samples == b.samples)
        #expect(a.trajectories == b.trajectories)
        #expect(a.samples != c.samples)
    }

    /// y = v with v ~ N(0, 1): the bands are the normal's quantiles (±1.96 at 95 %, ±1.2816 at
    /// 80 %), within Monte Carlo error at 20,000 scenarios.
    @Test func bandsAreTheScenariosQuantiles() throws {
        let white = StateSpaceParameters(
            a: Matrix([[0]]), b: Matrix([[0]]), c: Matrix([[1]]), d: Matrix([[0]]), e: Matrix([[0]]),
            q: Matrix([[0]]), r: Matrix([[1]]), initialMean: [0], initialCovariance: Matrix([[0]]))
        var plan = Self.plan(controls: [[0], [0]], scenarios: 20_000)
        plan.startMean = [0]
        plan.observationOffset = [0]
        plan.observationScale = [1]
        let t = try Simulator.run(white, plan).trajectories[0]
        for k in 0..<2 {
            #expect(abs(t.mean[k]) < 0.03)
            #expect(abs(t.p97_5[k] - 1.959964) < 0.06 && abs(t.p2_5[k] + 1.959964) < 0.06)
            #expect(abs(t.p90[k] - 1.281552) < 0.04 && abs(t.p10[k] + 1.281552) < 0.04)
        }
    }

    @Test func quantileInterpolatesBetweenOrderStatistics() {
        // Positions q·(n−1): 0.25·3 = 0.75 → 1 + 0.75·(2 − 1).
        #expect(Simulator.quantile([1, 2, 3, 4], 0.25) == 1.75)
        #expect(Simulator.quantile([1, 2, 3, 4], 1) == 4)
        #expect(Simulator.quantile([5], 0.9) == 5)
    }

    @Test func invalidPlansAreTypedErrors() {
        #expect(throws: ModelError.self) { try Simulator.run(Self.scalar, Self.plan(controls: [])) }
        #expect(throws: ModelError.self) { try Simulator.run(Self.scalar, Self.plan(controls: [[1], [.nan]])) }
        #expect(throws: ModelError.self) { try Simulator.run(Self.scalar, Self.plan(controls: [[1]], scenarios: 0)) }
        #expect(throws: ModelError.self) { try Simulator.run(Self.scalar, Self.plan(controls: [[1, 2]])) }
    }
}

@Suite struct GuardrailTests {
    /// On the noiseless trajectory 15, 17, 18 with controls 0.5, 1.2, 1 (bounds [0, 1]).
    @Test func hardChanceAndSoftConstraints() throws {
        let controls: [[Double]] = [[0.5], [1.2], [1]]
        let result = try Simulator.run(
            SimulationTests.scalar, SimulationTests.plan(controls: [[1], [1], [1]], scenarios: 1_000))
        let guardrails = Guardrails(
            kpiNames: ["latency_p95_ms"], controlNames: ["rollout_pct"],
            bounds: [.init(kpi: 0, upper: 16)], controlLower: [0], controlUpper: [1],
            chance: [.init(kpi: 0, threshold: 16, probability: 0.9)],
            penalties: .init(
                rewardKPI: 0, latencyKPI: 0, latencyCap: 16, latencyWeight: 2, budgetCoefficients: [100],
                weeklyBudget: 150, budgetWeight: 1))
        let report = guardrails.evaluate(controls: controls, result: result)
        // rollout 1.2 > 1 on day 1; the KPI's mean 17 and 18 > 16 on days 1 and 2, in every scenario.
        #expect(report.hardViolations.map(\.constraint) == ["rollout_pct ≤", "latency_p95_ms ≤", "latency_p95_ms ≤"])
        #expect(report.hardViolations.map(\.day) == [1, 1, 2])
        #expect(report.hardViolations.map(\.scenarioShare) == [1, 1, 1])
        // P(y ≥ 16): 0 on day 0 (y = 15), the worst day. Wilson upper end at p = 0, n = 1000:
        // (z²/n) / (1 + z²/n) = 0.0038415 / 1.0038415 = 0.0038268.
        let chance = try #require(report.chance.first)
        #expect(chance.worstDay == 0 && chance.probability == 0 && !chance.satisfied && !chance.confident)
        #expect(chance.lower95 < 1e-12 && abs(chance.upper95 - 0.0038268) < 1e-6)
        // Reward 15 + 17 + 18 = 50; latency over 16: 0 + 1 + 2 = 3, × 2 = 6; spend 100·(0.5 + 1.2 + 1)
        // = 270 in the first week, 120 over 150, × 1 = 120. Cost 50 − 6 − 120 = −76.
        let cost = try #require(report.cost)
        #expect(abs(cost.reward - 50) < 1e-6 && abs(cost.latencyPenalty - 6) < 1e-6)
        #expect(abs(cost.budgetPenalty - 120) < 1e-9 && abs(cost.total + 76) < 1e-6)
        #expect(!report.passes)
    }
}

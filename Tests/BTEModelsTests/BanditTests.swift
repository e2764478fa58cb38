import BTEModels
import Testing

@Suite struct BanditTests {
    /// Prior N(0, 1), noise 1, two rewards 2 and 4 at x = 1: Λ = 1 + 2 = 3, b = 6, μ = 2.
    @Test func posteriorIsTheClosedForm() throws {
        var model = try BayesianLinearRegression(dimension: 1, priorVariance: 1, noiseVariance: 1)
        try model.update(context: [1], reward: 2)
        try model.update(context: [1], reward: 4)
        #expect(model.precision[0, 0] == 3 && model.precisionMean == [6])
        #expect(abs(try model.mean()[0] - 2) < 1e-15)
        // Samples: mean 2, variance 1/3.
        var rng = SeededGenerator(seed: 4)
        let draws = try (0..<20_000).map { _ in try model.sample(&rng)[0] }
        let mean = draws.reduce(0, +) / 20_000
        let variance = draws.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 19_999
        #expect(abs(mean - 2) < 0.015 && abs(variance - 1.0 / 3) < 0.015, "\(mean) \(variance)")
    }

    /// Two correlated dimensions: the sampled covariance is Λ⁻¹ (here Λ = [[2, 1], [1, 2]],
    /// Λ⁻¹ = [[2, −1], [−1, 2]] / 3).
    @Test func samplesFollowThePrecision() throws {
        var model = try BayesianLinearRegression(dimension: 2, priorVariance: 1, noiseVariance: 1)
        try model.update(context: [1, 1], reward: 0)
        #expect(model.precision == Matrix([[2, 1], [1, 2]]))
        var rng = SeededGenerator(seed: 8)
        let draws = try (0..<40_000).map { _ in try model.sample(&rng) }
        let covariance = draws.reduce(0) { $0 + $1[0] * $1[1] } / 40_000
        let variance = draws.reduce(0) { $0 + $1[0] * $1[0] } / 40_000
        #expect(abs(covariance + 1.0 / 3) < 0.015 && abs(variance - 2.0 / 3) < 0.015)
    }

    @Test func guardrailsSkipToTheNextBestAction() throws {
        var model = try BayesianLinearRegression(dimension: 1, priorVariance: 1, noiseVariance: 1)
        // 100 rewards of 1: θ ~ N(100/101, 1/101), positive by ten standard deviations.
        for _ in 0..<100 { try model.update(context: [1], reward: 1) }
        var rng = SeededGenerator(seed: 1)
        // Scores 3θ > 2θ > θ: the best (action 0) violates, so action 1 is taken.
        let decision = try ConstrainedThompson.choose(
            posterior: model, contexts: [[3], [2], [1]], rng: &rng, allowed: { $0 != 0 })
        #expect(decision?.action == 1 && decision?.rejected == [0])
        #expect(
            try ConstrainedThompson.choose(posterior: model, contexts: [[3], [2]], rng: &rng, allowed: { _ in false })
                == nil)
    }

    /// Arms with mean rewards 1.0 and 0.6 (one-hot contexts, noise 0.5): after 400 rounds the
    /// better arm is chosen in at least 90 of the last 100.
    @Test func thompsonSamplingLearnsTheBetterArm() throws {
        var model = try BayesianLinearRegression(dimension: 2, priorVariance: 1, noiseVariance: 0.25)
        var rng = SeededGenerator(seed: 12)
        var log: [BanditLog.Entry] = []
        var lastHundred = 0
        for round in 0..<400 {
            let contexts: [[Double]] = [[1, 0], [0, 1]]
            let decision = try #require(
                try ConstrainedThompson.choose(posterior: model, contexts: contexts, rng: &rng, allowed: { _ in true }))
            let reward = (decision.action == 0 ? 1.0 : 0.6) + 0.5 * rng.normal()
            try model.update(context: contexts[decision.action], reward: reward)
            log.append(.decision(id: "d\(round)", action: decision.action, context: contexts[decision.action]))
            log.append(.reward(decisionID: "d\(round)", reward: reward))
            if round >= 300, decision.action == 0 { lastHundred += 1 }
        }
        #expect(lastHundred >= 90, "\(lastHundred)")
        // Replaying the log gives the same posterior.
        #expect(try BanditLog.posterior(log, dimension: 2, priorVariance: 1, noiseVariance: 0.25) == model)
        #expect(throws: ModelError.self) {
            try BanditLog.posterior([.reward(decisionID: "x", reward: 1)], dimension: 2)
        }
    }
}

import BTEModels
import Testing

@Suite struct UpliftTests {
    /// y = 2 + 3a − b exactly: ridge with a tiny λ gives the coefficients back.
    @Test func ridgeRecoversALinearRelation() throws {
        let x = [[0.0, 1], [1, 0], [2, 1], [3, 5], [1, 1]]
        let y = x.map { 2 + 3 * $0[0] - $0[1] }
        let beta = try Regression.ridge(x, y, lambda: 1e-9)
        #expect(abs(beta[0] - 2) < 1e-6 && abs(beta[1] - 3) < 1e-6 && abs(beta[2] + 1) < 1e-6)
    }

    /// Treatments drawn with P(T = 1 | x) = σ(−0.5 + 1.5x): the fit comes back near (−0.5, 1.5).
    @Test func logisticRecoversThePropensity() throws {
        var rng = SeededGenerator(seed: 3)
        let x = (0..<20_000).map { _ in [rng.normal()] }
        let t = x.map { rng.uniform() < Regression.sigmoid(-0.5 + 1.5 * $0[0]) ? 1.0 : 0.0 }
        let beta = try Regression.logistic(x, t, lambda: 1e-6)
        #expect(abs(beta[0] + 0.5) < 0.05 && abs(beta[1] - 1.5) < 0.07, "\(beta)")
    }

    static func experiment(seed: UInt64, n: Int, effect: (Double) -> Double) -> ([[Double]], [Bool], [Double], [String])
    {
        var rng = SeededGenerator(seed: seed)
        var x: [[Double]] = []
        var treated: [Bool] = []
        var y: [Double] = []
        var segments: [String] = []
        for _ in 0..<n {
            let a = rng.normal()
            let b = rng.normal()
            // Confounded: units with high a are treated more often and have higher outcomes.
            let t = rng.uniform() < Regression.sigmoid(0.8 * a)
            x.append([a, b])
            treated.append(t)
            y.append(1 + a + 0.5 * b + (t ? effect(b) : 0) + rng.normal())
            segments.append(b > 0 ? "b_high" : "b_low")
        }
        return (x, treated, y, segments)
    }

    /// A constant effect of 0.5 under confounding: the 95 % interval covers it in at least 95 %
    /// of 1,000 seeds (955 here), while the naive difference of means is biased well away from it.
    @Test func recoversAKnownEffectWithinItsInterval() throws {
        var covered = 0
        var naiveBias = 0.0
        for seed in 1...1000 {
            let (x, treated, y, _) = Self.experiment(seed: UInt64(seed), n: 1_000) { _ in 0.5 }
            var learner = DRLearner()
            learner.seed = UInt64(seed)
            let result = try learner.fit(features: x, treated: treated, outcomes: y)
            if result.overall.lower95 <= 0.5, 0.5 <= result.overall.upper95 { covered += 1 }
            let treatedY = zip(treated, y).filter { $0.0 }.map(\.1)
            let controlY = zip(treated, y).filter { !$0.0 }.map(\.1)
            naiveBias +=
                (treatedY.reduce(0, +) / Double(treatedY.count) - controlY.reduce(0, +) / Double(controlY.count) - 0.5)
                / 1000
        }
        #expect(covered >= 950, "covered in \(covered) of 1000")
        #expect(naiveBias > 0.3, "naive bias \(naiveBias)")
    }

    /// A heterogeneous effect (1 where b > 0, 0 elsewhere): per-segment uplifts and the effect
    /// model see it.
    @Test func segmentsSeeAHeterogeneousEffect() throws {
        let (x, treated, y, segments) = Self.experiment(seed: 9, n: 8_000) { $0 > 0 ? 1 : 0 }
        let result = try DRLearner().fit(features: x, treated: treated, outcomes: y, segments: segments)
        let high = try #require(result.segments.first { $0.segment == "b_high" })
        let low = try #require(result.segments.first { $0.segment == "b_low" })
        #expect(high.lower95 <= 1 && 1 <= high.upper95, "\(high)")
        #expect(low.lower95 <= 0 && 0 <= low.upper95, "\(low)")
        #expect(high.units + low.units == 8_000)
        // The best line through 1{b > 0} in b has slope Cov(1{b > 0}, b) / Var(b) = φ(0) = 0.399.
        #expect(abs(result.effectModel[2] - 0.399) < 0.1, "τ(x) slope in b: \(result.effectModel)")
        #expect(result.propensities.allSatisfy { $0 >= 0.01 && $0 <= 0.99 })
    }

    @Test func invalidInputsAreTypedErrors() {
        #expect(throws: ModelError.self) {
            try DRLearner().fit(features: [[1]], treated: [true, false], outcomes: [1, 2])
        }
        let x = (0..<10).map { [Double($0)] }
        #expect(throws: ModelError.self) {
            try DRLearner().fit(features: x, treated: x.map { _ in true }, outcomes: x.map { $0[0] })
        }
    }
}

import BTEModels
import Testing

@Suite struct SequentialTestingTests {
    /// Φ and Φ⁻¹ against scipy.stats.norm: ppf(0.975) = 1.959963984540054, ppf(0.001) =
    /// −3.090232306167813, cdf(−3) = 0.0013498980316300933.
    @Test func normalDistribution() {
        #expect(abs(Normal.quantile(0.975) - 1.959963984540054) < 1e-12)
        #expect(abs(Normal.quantile(0.001) + 3.090232306167813) < 1e-12)
        #expect(abs(Normal.cdf(-3) - 0.0013498980316300933) < 1e-15)
        #expect(Normal.cdf(0) == 0.5)
        for p in [1e-10, 0.01, 0.3, 0.5, 0.9, 0.999_999] {
            #expect(abs(Normal.cdf(Normal.quantile(p)) - p) < 1e-14 * max(1, 1 / p))
        }
    }

    /// α = 0.05 at t = 0.25, 0.5, 0.75, 1 (scipy for Φ): O'Brien–Fleming 2 − 2Φ(1.95996/√t),
    /// Pocock 0.05·ln(1 + (e − 1)t), linear 0.05·t.
    @Test(arguments: [
        (AlphaSpending.obrienFleming, [8.857543832130332e-05, 0.005574596680784305, 0.023625121317601305, 0.05]),
        (AlphaSpending.pocock, [0.01786870097543942, 0.031005725347913876, 0.04139944696214349, 0.05]),
        (AlphaSpending.linear, [0.0125, 0.025, 0.0375, 0.05]),
    ])
    func spendingFunctions(_ function: AlphaSpending, expected: [Double]) {
        for (t, value) in zip([0.25, 0.5, 0.75, 1.0], expected) {
            #expect(abs(function.spent(alpha: 0.05, fraction: t) - value) < 1e-12, "t = \(t)")
        }
        #expect(function.spent(alpha: 0.05, fraction: 0) == 0)
        let increments = function.increments(alpha: 0.05, fractions: [0.25, 0.5, 0.75, 1.0])
        #expect(abs(increments.reduce(0, +) - 0.05) < 1e-12)
        #expect(increments.allSatisfy { $0 >= 0 })
    }

    /// σ² = 1, τ² = 1, n = 100 a side, difference 0.3: Λ = √(2/102)·exp(100²·0.09/(4·102))
    /// = 1.2712104243132263, p = 0.7866518248072516.
    @Test func mixtureSPRT() throws {
        var test = try MixtureSPRT(variance: 1, mixingVariance: 1)
        #expect(abs(test.likelihoodRatio(n: 100, difference: 0.3) - 1.2712104243132263) < 1e-12)
        #expect(abs(try test.observe(n: 100, difference: 0.3) - 0.7866518248072516) < 1e-12)
        // A look with less evidence never raises the p-value again.
        #expect(abs(try test.observe(n: 120, difference: 0.0) - 0.7866518248072516) < 1e-12)
        // n = 400, 0.4: √(2/402)·exp(160,000·0.16/(4·402)) ≈ 5.79e5, p ≈ 1.73e-6.
        #expect(abs(try test.observe(n: 400, difference: 0.4) - 1.727e-6) < 0.01e-6)
        #expect(throws: ModelError.self) { try MixtureSPRT(variance: 0, mixingVariance: 1) }
        #expect(throws: ModelError.self) { try test.observe(n: 0, difference: 1) }
    }

    /// Under the null, always-valid: across 400 simulated A/A experiments looked at every 10
    /// users for 1,000 users a side, the share ever rejected at 0.05 stays below 0.05 (a fixed
    /// test looked at that often would reject far more).
    @Test func mSPRTControlsErrorUnderContinuousMonitoring() throws {
        var rng = SeededGenerator(seed: 2026)
        var rejected = 0
        for _ in 0..<400 {
            var test = try MixtureSPRT(variance: 1, mixingVariance: 0.1)
            var sumA = 0.0
            var sumB = 0.0
            for n in 1...1_000 {
                sumA += rng.normal()
                sumB += rng.normal()
                if n % 10 == 0, try test.observe(n: n, difference: (sumB - sumA) / Double(n)) < 0.05 {
                    rejected += 1
                    break
                }
            }
        }
        #expect(Double(rejected) / 400 < 0.05, "\(rejected) of 400")
    }

    @Test func holdoutsAreStableAndSized() {
        // FNV-1a 64 of "abc" is 0xe71fa2190541574b.
        #expect(Holdout.hash("abc") == 0xe71f_a219_0541_574b)
        let users = (0..<20_000).map { "user-\($0)" }
        let held = users.filter { Holdout.isHeldOut(workspace: "w", user: $0, period: 8_104, share: 0.05) }
        #expect(abs(Double(held.count) / 20_000 - 0.05) < 0.005)
        #expect(held == users.filter { Holdout.isHeldOut(workspace: "w", user: $0, period: 8_104, share: 0.05) })
        // Next quarter, a new draw: mostly other users.
        let next = Set(users.filter { Holdout.isHeldOut(workspace: "w", user: $0, period: 8_105, share: 0.05) })
        #expect(Double(Set(held).intersection(next).count) / Double(held.count) < 0.15)
        // 2026-12-04 (day 20,791) is in 2026's fourth quarter: 2026·4 + 3.
        #expect(Holdout.quarter(ofDay: 20_791) == 8_107)
    }
}

import BTEModels
import Foundation
import Testing

/// A known model and two years of daily data drawn from it.
enum Synthetic {
    static let truth = StateSpaceParameters(
        a: Matrix([
            [0.70, 0.10, 0.00, 0.05],
            [0.00, 0.60, 0.15, 0.00],
            [0.05, 0.00, 0.75, 0.10],
            [0.00, 0.05, 0.00, 0.50],
        ]),
        b: Matrix([
            [1.00, 0.00, 0.50, 0.00],
            [0.00, 0.80, 0.00, -0.40],
            [0.30, 0.00, 1.00, 0.00],
            [0.00, -0.50, 0.00, 0.90],
        ]),
        c: Matrix([
            [1.0, 0.2, 0.0, 0.0],
            [0.0, 1.0, 0.3, 0.0],
            [0.1, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.2, 1.0],
        ]),
        d: Matrix([
            [0.10, 0.00, 0.00, 0.00],
            [0.00, 0.00, 0.05, 0.00],
            [0.00, 0.10, 0.00, 0.00],
            [0.00, 0.00, 0.00, 0.20],
        ]),
        e: Matrix([[0.20, 0.00], [0.00, 0.10], [-0.10, 0.00], [0.00, 0.30]]),
        q: Matrix.identity(4, scale: 0.004), r: Matrix.identity(4, scale: 0.002),
        initialMean: [0, 0, 0, 0], initialCovariance: Matrix.identity(4, scale: 0.1))

    static func series(days: Int, seed: UInt64, missing: Set<Int> = []) throws -> StateSpaceSeries {
        var rng = SeededGenerator(seed: seed)
        let p = truth
        let q = try Cholesky(p.q)
        let r = try Cholesky(p.r)
        var x = try Cholesky(p.initialCovariance).lowerTimes((0..<4).map { _ in rng.normal() })
        var y: [[Double]?] = []
        var u: [[Double]] = []
        var d: [[Double]] = []
        for t in 0..<days {
            let ut = (0..<4).map { _ in rng.uniform() }
            let dt = [Double(t % 7) / 6, Double(t % 30) / 29]
            let noise = r.lowerTimes((0..<4).map { _ in rng.normal() })
            let yt = zip(zip(p.c.times(x), p.d.times(ut)), noise).map { $0.0 + $0.1 + $1 }
            y.append(missing.contains(t) ? nil : yt)
            u.append(ut)
            d.append(dt)
            let w = q.lowerTimes((0..<4).map { _ in rng.normal() })
            x = zip(zip(p.a.times(x), p.b.times(ut)), zip(p.e.times(dt), w)).map { $0.0 + $0.1 + $1.0 + $1.1 }
        }
        return StateSpaceSeries(y: y, u: u, d: d)
    }

    static func relativeError(_ estimate: Matrix, _ truth: Matrix) -> Double {
        (estimate - truth).frobeniusNorm / truth.frobeniusNorm
    }
}

@Suite struct ExpectationMaximizationTests {
    /// The seed's bar: with C fixed to the true full-rank matrix, A and B from 730 days come back
    /// within 5 % (Frobenius, relative), and one-step predictions are as good as the true model's
    /// within 5 %.
    @Test func recoversAAndBWithCFixed() throws {
        let series = try Synthetic.series(days: 730, seed: 7, missing: [40, 41, 300])
        let start = ExpectationMaximization.initialParameters(nx: 4, nu: 4, ny: 4, nd: 2, series: series)
        let fit = try ExpectationMaximization.fit(
            series, from: start, options: EMOptions(maxIterations: 500, fixedC: Synthetic.truth.c))
        let errorA = Synthetic.relativeError(fit.parameters.a, Synthetic.truth.a)
        let errorB = Synthetic.relativeError(fit.parameters.b, Synthetic.truth.b)
        #expect(fit.converged)
        #expect(errorA < 0.05, "A off by \(errorA)")
        #expect(errorB < 0.05, "B off by \(errorB)")
        let trueRun = try KalmanFilter.filter(Synthetic.truth, series)
        let trueRMSE = FitDiagnostics.of(
            predictions: trueRun.predictedObservations, observations: series.y, logLikelihood: 0
        ).rmse
        for k in 0..<4 {
            let ratio = fit.diagnostics.rmse[k] / trueRMSE[k]
            #expect(abs(ratio - 1) < 0.05, "KPI \(k): one-step RMSE \(fit.diagnostics.rmse[k]) vs \(trueRMSE[k])")
        }
        #expect(fit.diagnostics.observedDays == 727)
    }

    @Test func logLikelihoodNeverDecreases() throws {
        let series = try Synthetic.series(days: 365, seed: 11)
        let start = ExpectationMaximization.initialParameters(nx: 4, nu: 4, ny: 4, nd: 2, series: series)
        for fixedC in [Synthetic.truth.c, nil] {
            let fit = try ExpectationMaximization.fit(
                series, from: start, options: EMOptions(maxIterations: 60, fixedC: fixedC))
            #expect(fit.iterations.count > 5)
            for (previous, next) in zip(fit.iterations, fit.iterations.dropFirst()) {
                #expect(
                    next.logLikelihood >= previous.logLikelihood - 1e-9 * abs(previous.logLikelihood),
                    "iteration \(next.iteration): \(previous.logLikelihood) → \(next.logLikelihood)")
            }
            // The diagnostics report the final parameters' likelihood.
            let final = try KalmanFilter.filter(fit.parameters, series).logLikelihood
            #expect(fit.diagnostics.logLikelihood == final)
        }
    }

    /// With C estimated the state's coordinates are free, and plain EM gains a little each step for
    /// hundreds of steps (this series: not converged after 200); the accelerated fit converges
    /// within the default 200 iterations, its likelihood never decreasing.
    @Test func withCEstimatedTheFitConvergesWithinTheDefaultIterations() throws {
        let series = try Synthetic.series(days: 120, seed: 5, missing: [30, 31, 90])
        let start = ExpectationMaximization.initialParameters(nx: 4, nu: 4, ny: 4, nd: 2, series: series)
        let fit = try ExpectationMaximization.fit(series, from: start)
        let converged = fit.converged
        #expect(converged, "\(fit.iterations.count) iterations")
        #expect(fit.iterations.count <= 200)
        for (previous, next) in zip(fit.iterations, fit.iterations.dropFirst()) {
            #expect(next.logLikelihood >= previous.logLikelihood - 1e-9 * abs(previous.logLikelihood))
        }
    }

    @Test func estimatedCovariancesStaySymmetricPositiveDefinite() throws {
        let series = try Synthetic.series(days: 200, seed: 3, missing: Set(stride(from: 0, to: 200, by: 9)))
        let start = ExpectationMaximization.initialParameters(nx: 4, nu: 4, ny: 4, nd: 2, series: series)
        let fit = try ExpectationMaximization.fit(series, from: start, options: EMOptions(maxIterations: 40))
        for m in [fit.parameters.q, fit.parameters.r, fit.parameters.initialCovariance] {
            #expect(m == m.symmetrized)
            #expect((try? Cholesky(m)) != nil)
        }
    }

    @Test func tooFewDaysIsATypedError() throws {
        let series = try Synthetic.series(days: 8, seed: 1)
        let start = ExpectationMaximization.initialParameters(nx: 4, nu: 4, ny: 4, nd: 2, series: series)
        do {
            _ = try ExpectationMaximization.fit(series, from: start)
            Issue.record("fitted 8 days")
        } catch {
            #expect(error.code == .insufficientData)
        }
    }
}

@Suite struct RCRetentionTests {
    /// Exact points of R(t) = 0.25 + (0.6 − 0.25)·e^(−t/20) give the parameters back exactly.
    @Test func exactCurveIsRecoveredExactly() throws {
        let days = (1...60).map(Double.init)
        let retention = days.map { 0.25 + 0.35 * exp(-$0 / 20) }
        let fit = try RCRetention.fit(days: days, retention: retention)
        #expect(abs(fit.r0 - 0.6) < 1e-7)
        #expect(abs(fit.rInfinity - 0.25) < 1e-7)
        #expect(abs(fit.rc - 20) < 1e-5)
        #expect(fit.rmse < 1e-8)
        #expect(abs(fit.r2 - 1) < 1e-12)
    }

    /// The seed's bar: noisy cohorts (binomial noise of 2,000 users a day) from known parameters
    /// recover them within 5 %, each inside about two standard errors.
    @Test(arguments: [(0.55, 0.30, 9.6), (0.45, 0.12, 30.0), (0.70, 0.20, 60.0)])
    func noisyCohortsRecoverTheParameters(r0: Double, rInfinity: Double, rc: Double) throws {
        var rng = SeededGenerator(seed: UInt64(rc * 10))
        let days = (1...120).map(Double.init)
        let cohort = 2_000.0
        let retention = days.map { t -> Double in
            let p = rInfinity + (r0 - rInfinity) * exp(-t / rc)
            // Normal approximation of the binomial share.
            return p + (p * (1 - p) / cohort).squareRoot() * rng.normal()
        }
        let fit = try RCRetention.fit(days: days, retention: retention, weights: days.map { _ in cohort })
        #expect(abs(fit.r0 - r0) / r0 < 0.05, "R0 \(fit.r0)")
        #expect(abs(fit.rInfinity - rInfinity) / rInfinity < 0.05, "R∞ \(fit.rInfinity)")
        #expect(abs(fit.rc - rc) / rc < 0.05, "RC \(fit.rc)")
        #expect(abs(fit.rc - rc) < 3 * fit.rcStandardError, "RC \(fit.rc) ± \(fit.rcStandardError)")
        #expect(fit.rcStandardError > 0 && fit.r0StandardError > 0 && fit.rInfinityStandardError > 0)
    }

    @Test func readingFollowsTheTimeConstant() {
        func fit(_ rInf: Double, _ rc: Double) -> RCRetentionFit {
            RCRetentionFit(
                r0: 0.6, rInfinity: rInf, rc: rc, r0StandardError: 0, rInfinityStandardError: 0, rcStandardError: 0,
                rmse: 0, r2: 1, iterations: 1, points: 10)
        }
        #expect(fit(0.3, 9.6).reading.hasPrefix("quick habituation"))
        #expect(fit(0.3, 144).reading.hasPrefix("slow habituation"))
        #expect(fit(0.3, 40).reading.hasPrefix("moderate habituation"))
        #expect(fit(0.01, 25).reading.hasPrefix("never sticks"))
    }

    @Test func tooFewPointsAndBadValuesAreTypedErrors() {
        #expect(throws: ModelError.self) { try RCRetention.fit(days: [1, 2, 3], retention: [0.5, 0.4, 0.3]) }
        #expect(throws: ModelError.self) {
            try RCRetention.fit(days: [1, 2, 3, 4], retention: [0.5, .nan, 0.3, 0.2])
        }
        #expect(throws: ModelError.self) {
            try RCRetention.fit(days: [1, 2, 3, 4], retention: [0.5, 0.4, 0.3, 0.2], weights: [1, 1, 1])
        }
    }
}

@Suite struct RecursiveLeastSquaresTests {
    /// Without forgetting, noise-free data pin θ down: r = 2 + 3a − b.
    @Test func recoversAStaticRelation() throws {
        var rls = try RecursiveLeastSquares(dimension: 3, forgetting: 1, initialScale: 1e6)
        var rng = SeededGenerator(seed: 5)
        for _ in 0..<50 {
            let x = [1, rng.uniform(), rng.uniform()]
            try rls.update(x: x, r: 2 + 3 * x[1] - x[2])
        }
        #expect(abs(rls.theta[0] - 2) < 1e-4 && abs(rls.theta[1] - 3) < 1e-4 && abs(rls.theta[2] + 1) < 1e-4)
        #expect(abs(rls.predict([1, 0.5, 0.5]) - 3) < 1e-4)
    }

    /// With λ = 0.99 the estimate follows a change of slope (1 → 4) within a few hundred days;
    /// without forgetting it stays near the average of both regimes.
    @Test func forgettingTracksADrift() throws {
        var forgetting = try RecursiveLeastSquares(dimension: 2, forgetting: 0.99)
        var remembering = try RecursiveLeastSquares(dimension: 2, forgetting: 1)
        var rng = SeededGenerator(seed: 9)
        for day in 0..<800 {
            let x = [1, rng.uniform()]
            let slope = day < 400 ? 1.0 : 4.0
            let r = slope * x[1] + 0.01 * rng.normal()
            try forgetting.update(x: x, r: r)
            try remembering.update(x: x, r: r)
        }
        #expect(abs(forgetting.theta[1] - 4) < 0.1, "\(forgetting.theta)")
        #expect(abs(remembering.theta[1] - 4) > 0.5, "\(remembering.theta)")
    }

    @Test func invalidInputsAreTypedErrors() throws {
        #expect(throws: ModelError.self) { try RecursiveLeastSquares(dimension: 2, forgetting: 1.5) }
        var rls = try RecursiveLeastSquares(dimension: 2)
        #expect(throws: ModelError.self) { try rls.update(x: [1], r: 1) }
        #expect(throws: ModelError.self) { try rls.update(x: [1, .infinity], r: 1) }
    }
}

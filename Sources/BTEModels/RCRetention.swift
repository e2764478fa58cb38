import RealModule

/// R(t) = R∞ + (R0 − R∞)·e^(−t/RC): retention t days after a cohort's first day decays from R0
/// toward R∞ with time constant RC, like a capacitor discharging through a resistor.
public struct RCRetentionFit: Sendable, Equatable {
    public var r0: Double
    public var rInfinity: Double
    /// Days.
    public var rc: Double
    /// Standard errors of r0, rInfinity and rc (from the Jacobian at the optimum).
    public var r0StandardError: Double
    public var rInfinityStandardError: Double
    public var rcStandardError: Double
    public var rmse: Double
    public var r2: Double
    public var iterations: Int
    public var points: Int

    public init(
        r0: Double, rInfinity: Double, rc: Double, r0StandardError: Double, rInfinityStandardError: Double,
        rcStandardError: Double, rmse: Double, r2: Double, iterations: Int, points: Int
    ) {
        self.r0 = r0
        self.rInfinity = rInfinity
        self.rc = rc
        self.r0StandardError = r0StandardError
        self.rInfinityStandardError = rInfinityStandardError
        self.rcStandardError = rcStandardError
        self.rmse = rmse
        self.r2 = r2
        self.iterations = iterations
        self.points = points
    }

    public func value(at t: Double) -> Double { rInfinity + (r0 - rInfinity) * Double.exp(-t / rc) }

    /// The product reading of the time constant. Only RC = R·C is identified by a retention
    /// curve, so friction and habit capacity are read together: how fast the habit forms
    /// (RC) and how much of the cohort it holds (R∞).
    public var reading: String {
        if rInfinity < 0.02 { return "never sticks: retention decays toward zero (no habit forms)" }
        if rc <= 15 { return "quick habituation: low friction, habit within \(Int(rc.rounded())) days" }
        if rc >= 90 { return "slow habituation: high friction, habit takes \(Int(rc.rounded())) days" }
        return "moderate habituation: habit within \(Int(rc.rounded())) days"
    }
}

public enum RCRetention {
    /// Weighted nonlinear least squares by Levenberg–Marquardt over (R0, R∞, log RC), so RC stays
    /// positive. `weights` are typically the cohort sizes behind each point.
    public static func fit(
        days: [Double], retention: [Double], weights: [Double]? = nil, maxIterations: Int = 200
    ) throws(ModelError) -> RCRetentionFit {
        let n = days.count
        guard retention.count == n, weights.map({ $0.count == n }) ?? true else {
            throw ModelError(.invalidInput, "days, retention and weights differ in length")
        }
        guard n >= 4 else { throw ModelError(.insufficientData, "\(n) retention points; at least 4 are needed") }
        guard (days + retention).allSatisfy(\.isFinite), days.allSatisfy({ $0 >= 0 }) else {
            throw ModelError(.invalidInput, "days must be finite and non-negative, retention finite")
        }
        let w = weights ?? [Double](repeating: 1, count: n)
        guard w.allSatisfy({ $0 >= 0 && $0.isFinite }), w.contains(where: { $0 > 0 }) else {
            throw ModelError(.invalidInput, "weights must be non-negative with at least one positive")
        }
        var theta = initialGuess(days, retention)
        var cost = weightedCost(theta, days, retention, w)
        var lambda = 1e-3
        var iterations = 0
        var converged = false
        while iterations < maxIterations {
            iterations += 1
            let (jtj, jtr) = normalEquations(theta, days, retention, w)
            var stepped = false
            while lambda < 1e12 {
                var damped = jtj
                for i in 0..<3 { damped[i, i] += lambda * max(jtj[i, i], 1e-12) }
                guard let chol = try? Cholesky(damped) else {
                    lambda *= 10
                    continue
                }
                let delta = chol.solve(jtr)
                let candidate = zip(theta, delta).map { $0 + $1 }
                let candidateCost = weightedCost(candidate, days, retention, w)
                if candidateCost.isFinite && candidateCost <= cost {
                    let improvement = cost - candidateCost
                    theta = candidate
                    cost = candidateCost
                    lambda = max(lambda / 10, 1e-12)
                    stepped = true
                    if improvement <= 1e-14 * max(cost, 1e-300)
                        || delta.map(abs).max() ?? 0 < 1e-12
                    {
                        converged = true
                    }
                    break
                }
                lambda *= 10
            }
            if !stepped || converged { break }
        }
        // Standard errors: s² (Jᵀ W J)⁻¹ with s² = Σ w r² / (n − 3), which leaves them
        // independent of the weights' scale (only their ratios matter).
        let (jtj, _) = normalEquations(theta, days, retention, w)
        let dof = Double(max(n - 3, 1))
        let sumW = w.reduce(0, +)
        let s2 = 2 * cost / dof
        let covariance: Matrix
        do {
            covariance = s2 * (try Cholesky(jtj).solve(Matrix.identity(3)))
        } catch {
            throw ModelError(.notConverged, "the retention curve does not determine R0, R∞ and RC (flat or too short)")
        }
        let rc = Double.exp(theta[2])
        let predictions = days.map { theta[1] + (theta[0] - theta[1]) * Double.exp(-$0 / rc) }
        let meanW = zip(retention, w).reduce(0) { $0 + $1.0 * $1.1 } / sumW
        let ssRes = zip(zip(retention, predictions), w).reduce(0) { $0 + $1.1 * Double.pow($1.0.0 - $1.0.1, 2) }
        let ssTot = zip(retention, w).reduce(0) { $0 + $1.1 * Double.pow($1.0 - meanW, 2) }
        return RCRetentionFit(
            r0: theta[0], rInfinity: theta[1], rc: rc, r0StandardError: covariance[0, 0].squareRoot(),
            rInfinityStandardError: covariance[1, 1].squareRoot(),
            rcStandardError: rc * covariance[2, 2].squareRoot(),  // delta method from log RC
            rmse: (ssRes / sumW).squareRoot(), r2: ssTot > 0 ? 1 - ssRes / ssTot : 0, iterations: iterations,
            points: n)
    }

    /// R0 from the earliest point, R∞ from the latest, RC where the curve is a third of the way
    /// down (e^-1 of the span would be 63 %; a third is robust to noisy tails).
    static func initialGuess(_ days: [Double], _ retention: [Double]) -> [Double] {
        let order = days.indices.sorted { days[$0] < days[$1] }
        let head = order.prefix(max(1, order.count / 10)).map { retention[$0] }
        let tail = order.suffix(max(1, order.count / 10)).map { retention[$0] }
        let r0 = head.reduce(0, +) / Double(head.count)
        let rInf = tail.reduce(0, +) / Double(tail.count)
        let target = rInf + (r0 - rInf) * Double.exp(-1)
        let crossing = order.first { abs(retention[$0] - rInf) <= abs(target - rInf) }
        let span = (days[order.last ?? 0] - days[order.first ?? 0])
        let tau = crossing.map { max(days[$0] - days[order.first ?? 0], 1) } ?? max(span / 3, 1)
        return [r0, rInf, Double.log(tau)]
    }

    static func weightedCost(_ theta: [Double], _ days: [Double], _ r: [Double], _ w: [Double]) -> Double {
        let rc = Double.exp(theta[2])
        var cost = 0.0
        for i in days.indices {
            let f = theta[1] + (theta[0] - theta[1]) * Double.exp(-days[i] / rc)
            cost += w[i] * (r[i] - f) * (r[i] - f)
        }
        return cost / 2
    }

    /// Jᵀ W J and Jᵀ W r for the residuals r − f(θ).
    static func normalEquations(_ theta: [Double], _ days: [Double], _ r: [Double], _ w: [Double]) -> (Matrix, [Double])
    {
        let rc = Double.exp(theta[2])
        var jtj = Matrix(rows: 3, cols: 3)
        var jtr = [Double](repeating: 0, count: 3)
        for i in days.indices {
            let e = Double.exp(-days[i] / rc)
            let f = theta[1] + (theta[0] - theta[1]) * e
            let gradient = [e, 1 - e, (theta[0] - theta[1]) * e * days[i] / rc]
            let residual = r[i] - f
            for a in 0..<3 {
                jtr[a] += w[i] * gradient[a] * residual
                for b in 0..<3 { jtj[a, b] += w[i] * gradient[a] * gradient[b] }
            }
        }
        return (jtj, jtr)
    }
}

/// Recursive least squares with forgetting factor λ: θ tracks a slowly drifting linear
/// relation r ≈ xᵀθ, each day's evidence weighing λ times the day before's.
public struct RecursiveLeastSquares: Sendable, Equatable {
    public private(set) var theta: [Double]
    public private(set) var p: Matrix
    public let forgetting: Double

    /// P starts at δ·I: a large δ means little confidence in the initial θ.
    public init(dimension: Int, forgetting: Double = 0.99, initialScale: Double = 1_000) throws(ModelError) {
        guard forgetting > 0, forgetting <= 1 else {
            throw ModelError(.invalidInput, "the forgetting factor must be in (0, 1]")
        }
        theta = [Double](repeating: 0, count: dimension)
        p = Matrix.identity(dimension, scale: initialScale)
        self.forgetting = forgetting
    }

    /// P ← (P − P x xᵀ P / (λ + xᵀ P x)) / λ,  θ ← θ + P x (r − xᵀ θ).
    public mutating func update(x: [Double], r: Double) throws(ModelError) {
        guard x.count == theta.count, (x + [r]).allSatisfy(\.isFinite) else {
            throw ModelError(.invalidInput, "an RLS update needs \(theta.count) finite regressors and a finite target")
        }
        let px = p.times(x)
        let denominator = forgetting + zip(x, px).reduce(0) { $0 + $1.0 * $1.1 }
        var next = p
        for j in 0..<px.count {
            for i in 0..<px.count { next[i, j] = (p[i, j] - px[i] * px[j] / denominator) / forgetting }
        }
        p = next.symmetrized
        let error = r - zip(x, theta).reduce(0) { $0 + $1.0 * $1.1 }
        let gain = p.times(x)
        for i in theta.indices { theta[i] += gain[i] * error }
    }

    public func predict(_ x: [Double]) -> Double { zip(x, theta).reduce(0) { $0 + $1.0 * $1.1 } }
}

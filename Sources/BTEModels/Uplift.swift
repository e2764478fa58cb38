import RealModule

/// Ridge and logistic regressions with an intercept, by Cholesky solves of the normal equations.
public enum Regression {
    /// β minimizing Σ w (y − [1 x]β)² + λ‖β_{1:}‖² (the intercept is not shrunk).
    public static func ridge(_ x: [[Double]], _ y: [Double], weights: [Double]? = nil, lambda: Double)
        throws(ModelError)
        -> [Double]
    {
        let p = (x.first?.count ?? 0) + 1
        var xtx = Matrix(rows: p, cols: p)
        var xty = [Double](repeating: 0, count: p)
        for i in x.indices {
            let row = [1] + x[i]
            let w = weights?[i] ?? 1
            for a in 0..<p {
                xty[a] += w * row[a] * y[i]
                for b in 0..<p { xtx[a, b] += w * row[a] * row[b] }
            }
        }
        for a in 1..<p { xtx[a, a] += lambda }
        xtx[0, 0] += 1e-12 * max(xtx[0, 0], 1)
        return try Cholesky(xtx.symmetrized).solve(xty)
    }

    /// Logistic regression by iteratively reweighted least squares, with ridge λ.
    public static func logistic(_ x: [[Double]], _ t: [Double], lambda: Double, iterations: Int = 50) throws(ModelError)
        -> [Double]
    {
        let p = (x.first?.count ?? 0) + 1
        var beta = [Double](repeating: 0, count: p)
        for _ in 0..<iterations {
            var hessian = Matrix(rows: p, cols: p)
            var gradient = [Double](repeating: 0, count: p)
            for i in x.indices {
                let row = [1] + x[i]
                let pi = sigmoid(dot(row, beta))
                let w = max(pi * (1 - pi), 1e-10)
                for a in 0..<p {
                    gradient[a] += (t[i] - pi) * row[a]
                    for b in 0..<p { hessian[a, b] += w * row[a] * row[b] }
                }
            }
            for a in 1..<p {
                hessian[a, a] += lambda
                gradient[a] -= lambda * beta[a]
            }
            let step = try Cholesky(hessian.symmetrized).solve(gradient)
            beta = zip(beta, step).map { $0 + $1 }
            if step.map(abs).max() ?? 0 < 1e-10 { break }
        }
        return beta
    }

    public static func predict(_ beta: [Double], _ x: [Double]) -> Double { dot([1] + x, beta) }
    public static func sigmoid(_ z: Double) -> Double { 1 / (1 + Double.exp(-z)) }
    static func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
}

/// The doubly robust (DR, AIPW) learner of treatment effects: cross-fitted propensity
/// (logistic) and outcome (ridge, one per arm) models give each unit the pseudo-outcome
///
///     ψ = μ₁(x) − μ₀(x) + T(Y − μ₁(x))/π(x) − (1 − T)(Y − μ₀(x))/(1 − π(x)),
///
/// whose mean over a segment estimates its average uplift; consistent if either the
/// propensity or the outcome models are right.
public struct DRLearner: Sendable {
    public var folds = 5
    /// Propensities are clipped to [clip, 1 − clip] so no unit's weight explodes.
    public var clip = 0.01
    public var ridge = 1.0
    public var seed: UInt64 = 1

    public init() {}

    public struct SegmentUplift: Sendable, Equatable {
        public var segment: String
        public var units: Int
        public var uplift: Double
        public var standardError: Double
        public var lower95: Double
        public var upper95: Double
    }

    public struct Result: Sendable {
        public var pseudoOutcomes: [Double]
        public var propensities: [Double]
        public var overall: SegmentUplift
        public var segments: [SegmentUplift]
        /// τ(x) = [1 x]·β: ridge regression of ψ on the features (the meta-learner).
        public var effectModel: [Double]
    }

    public func fit(features x: [[Double]], treated: [Bool], outcomes y: [Double], segments: [String]? = nil)
        throws(ModelError) -> Result
    {
        let n = x.count
        guard treated.count == n, y.count == n, segments.map({ $0.count == n }) ?? true else {
            throw ModelError(.invalidInput, "features, treatments, outcomes and segments differ in length")
        }
        guard folds >= 2, clip > 0, clip < 0.5 else {
            throw ModelError(.invalidInput, "at least 2 folds, clip in (0, 0.5)")
        }
        guard (x.joined() + y).allSatisfy(\.isFinite), Set(x.map(\.count)).count <= 1 else {
            throw ModelError(.invalidInput, "features and outcomes must be finite, every row the same width")
        }
        let treatedCount = treated.filter { $0 }.count
        guard treatedCount >= 2 * folds, n - treatedCount >= 2 * folds else {
            throw ModelError(.insufficientData, "each arm needs at least \(2 * folds) units")
        }
        // A seeded shuffle into folds.
        var rng = SeededGenerator(seed: seed)
        var order = Array(0..<n)
        for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        var fold = [Int](repeating: 0, count: n)
        for (position, i) in order.enumerated() { fold[i] = position % folds }
        let t = treated.map { $0 ? 1.0 : 0.0 }
        var psi = [Double](repeating: 0, count: n)
        var propensities = [Double](repeating: 0, count: n)
        for k in 0..<folds {
            let train = (0..<n).filter { fold[$0] != k }
            let trainTreated = train.filter { treated[$0] }
            let trainControl = train.filter { !treated[$0] }
            guard !trainTreated.isEmpty, !trainControl.isEmpty else {
                throw ModelError(.insufficientData, "a fold has no treated or no control units to learn from")
            }
            let propensity = try Regression.logistic(train.map { x[$0] }, train.map { t[$0] }, lambda: ridge)
            let mu1 = try Regression.ridge(trainTreated.map { x[$0] }, trainTreated.map { y[$0] }, lambda: ridge)
            let mu0 = try Regression.ridge(trainControl.map { x[$0] }, trainControl.map { y[$0] }, lambda: ridge)
            for i in 0..<n where fold[i] == k {
                let pi = min(max(Regression.sigmoid(Regression.predict(propensity, x[i])), clip), 1 - clip)
                let m1 = Regression.predict(mu1, x[i])
                let m0 = Regression.predict(mu0, x[i])
                propensities[i] = pi
                psi[i] = m1 - m0 + t[i] * (y[i] - m1) / pi - (1 - t[i]) * (y[i] - m0) / (1 - pi)
            }
        }
        func summary(_ name: String, _ members: [Int]) -> SegmentUplift {
            let values = members.map { psi[$0] }
            let mean = values.reduce(0, +) / Double(max(values.count, 1))
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(max(values.count - 1, 1))
            let se = (variance / Double(max(values.count, 1))).squareRoot()
            let z = Normal.z975
            return SegmentUplift(
                segment: name, units: values.count, uplift: mean, standardError: se, lower95: mean - z * se,
                upper95: mean + z * se)
        }
        var bySegment: [String: [Int]] = [:]
        for i in 0..<n { bySegment[segments?[i] ?? "all", default: []].append(i) }
        return Result(
            pseudoOutcomes: psi, propensities: propensities, overall: summary("all", Array(0..<n)),
            segments: bySegment.keys.sorted().map { summary($0, bySegment[$0] ?? []) },
            effectModel: try Regression.ridge(x, psi, lambda: ridge))
    }
}

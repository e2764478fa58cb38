/// minimize ½ xᵀPx + qᵀx subject to l ≤ Ax ≤ u (P positive semidefinite; an equality is a row
/// with l = u, a one-sided bound uses ±infinity).
public struct QuadraticProgram: Sendable {
    public var p: Matrix
    public var q: [Double]
    public var a: Matrix
    public var lower: [Double]
    public var upper: [Double]

    public init(p: Matrix, q: [Double], a: Matrix, lower: [Double], upper: [Double]) {
        self.p = p
        self.q = q
        self.a = a
        self.lower = lower
        self.upper = upper
    }

    public func objective(_ x: [Double]) -> Double {
        let px = p.times(x)
        return zip(x, px).reduce(0) { $0 + 0.5 * $1.0 * $1.1 } + zip(q, x).reduce(0) { $0 + $1.0 * $1.1 }
    }
}

public struct QPSettings: Sendable, Equatable {
    public var rho = 0.1
    public var sigma = 1e-6
    /// Over-relaxation.
    public var alpha = 1.6
    /// Converged when the primal and dual residuals (∞-norm) are below ε_abs + ε_rel·scale.
    public var absoluteTolerance = 1e-7
    public var relativeTolerance = 1e-7
    public var maxIterations = 50_000
    public init() {}
}

public struct QPSolution: Sendable {
    public var x: [Double]
    /// Constraint multipliers: positive at an active upper bound, negative at an active lower one.
    public var y: [Double]
    public var iterations: Int
    public var primalResidual: Double
    public var dualResidual: Double
    public var converged: Bool
    public var objective: Double
}

/// The operator-splitting ADMM of OSQP (Stellato et al., 2020): each iteration solves the
/// reduced KKT system (P + σI + Aᵀ diag(ρ) A) x̃ = σx − q + Aᵀ(ρz − y) with a Cholesky factor
/// kept across iterations (refactored only when ρ adapts), then projects onto [l, u].
/// Equality rows get 1,000 times the step size, as OSQP does. Warm starts take a previous
/// solution's x and y.
public enum QPSolver {
    public static func solve(
        _ original: QuadraticProgram, settings: QPSettings = QPSettings(), warmStart: (x: [Double], y: [Double])? = nil
    ) throws(ModelError) -> QPSolution {
        // Equilibrate: every constraint row to unit ∞-norm and the cost to unit scale, so one
        // step size suits rows in USD and rows in fractions alike. Multipliers are mapped back.
        let m0 = original.lower.count
        guard original.a.rows == m0, original.upper.count == m0 else {
            throw ModelError(.invalidInput, "the QP's shapes do not match")
        }
        let rowScale = (0..<m0).map { i in
            let norm = (0..<original.a.cols).map { abs(original.a[i, $0]) }.max() ?? 0
            return norm > 0 ? 1 / norm : 1
        }
        let costNorm = max(original.p.storage.map(abs).max() ?? 0, original.q.map(abs).max() ?? 0)
        let costScale = costNorm > 0 ? 1 / costNorm : 1
        var scaledA = original.a
        for i in 0..<m0 {
            for j in 0..<scaledA.cols { scaledA[i, j] *= rowScale[i] }
        }
        let problem = QuadraticProgram(
            p: costScale * original.p, q: original.q.map { $0 * costScale }, a: scaledA,
            lower: zip(original.lower, rowScale).map { $0 * $1 }, upper: zip(original.upper, rowScale).map { $0 * $1 })
        let warm = warmStart.map { start in
            (x: start.x, y: start.y.indices.map { start.y[$0] * costScale / rowScale[$0] })
        }
        var solution = try solveScaled(problem, settings: settings, warmStart: warm)
        solution.y = solution.y.indices.map { solution.y[$0] * rowScale[$0] / costScale }
        solution.objective = original.objective(solution.x)
        return solution
    }

    static func solveScaled(
        _ problem: QuadraticProgram, settings: QPSettings, warmStart: (x: [Double], y: [Double])?
    ) throws(ModelError) -> QPSolution {
        let n = problem.q.count
        let m = problem.lower.count
        guard problem.p.rows == n, problem.p.cols == n, problem.a.cols == n, problem.a.rows == m,
            problem.upper.count == m
        else { throw ModelError(.invalidInput, "the QP's shapes do not match") }
        guard zip(problem.lower, problem.upper).allSatisfy({ $0 <= $1 }) else {
            throw ModelError(.invalidInput, "a constraint's lower bound is above its upper bound")
        }
        let at = problem.a.transposed
        var x = warmStart?.x ?? [Double](repeating: 0, count: n)
        var y = warmStart?.y ?? [Double](repeating: 0, count: m)
        var z = problem.a.times(x).enumerated().map {
            min(max($0.element, problem.lower[$0.offset]), problem.upper[$0.offset])
        }
        var rhoScale = settings.rho
        func rhos(_ base: Double) -> [Double] {
            (0..<m).map { problem.lower[$0] == problem.upper[$0] ? base * 1_000 : base }
        }
        var rho = rhos(rhoScale)
        func factor(_ rho: [Double]) throws(ModelError) -> Cholesky {
            var k = problem.p + Matrix.identity(n, scale: settings.sigma)
            // Aᵀ diag(ρ) A
            for i in 0..<m {
                for c in 0..<n where problem.a[i, c] != 0 {
                    let v = rho[i] * problem.a[i, c]
                    for r in 0..<n { k[r, c] += problem.a[i, r] * v }
                }
            }
            return try Cholesky(k.symmetrized)
        }
        var kkt = try factor(rho)
        var iterations = 0
        var primal = Double.infinity
        var dual = Double.infinity
        var converged = false
        while iterations < settings.maxIterations {
            iterations += 1
            var rhs = x.map { settings.sigma * $0 }
            let correction = at.times((0..<m).map { rho[$0] * z[$0] - y[$0] })
            for i in 0..<n { rhs[i] += correction[i] - problem.q[i] }
            let xTilde = kkt.solve(rhs)
            let zTilde = problem.a.times(xTilde)
            for i in 0..<n { x[i] = settings.alpha * xTilde[i] + (1 - settings.alpha) * x[i] }
            for i in 0..<m {
                let relaxed = settings.alpha * zTilde[i] + (1 - settings.alpha) * z[i]
                let next = min(max(relaxed + y[i] / rho[i], problem.lower[i]), problem.upper[i])
                y[i] += rho[i] * (relaxed - next)
                z[i] = next
            }
            guard iterations % 10 == 0 || iterations == settings.maxIterations else { continue }
            let ax = problem.a.times(x)
            let px = problem.p.times(x)
            let aty = at.times(y)
            primal = zip(ax, z).map { abs($0 - $1) }.max() ?? 0
            dual = (0..<n).map { abs(px[$0] + problem.q[$0] + aty[$0]) }.max() ?? 0
            let primalScale = max(norm(ax), norm(z))
            let dualScale = max(norm(px), norm(aty), norm(problem.q))
            if primal <= settings.absoluteTolerance + settings.relativeTolerance * primalScale,
                dual <= settings.absoluteTolerance + settings.relativeTolerance * dualScale
            {
                converged = true
                break
            }
            // Adapt ρ to balance the residuals; refactor only for a change of 5× or more.
            if iterations % 50 == 0 {
                let ratio =
                    (primal / max(primalScale, 1e-12)) / max(dual / max(dualScale, 1e-12), 1e-30)
                let proposed = min(max(rhoScale * ratio.squareRoot(), 1e-6), 1e6)
                if proposed > 5 * rhoScale || proposed < rhoScale / 5 {
                    rhoScale = proposed
                    rho = rhos(rhoScale)
                    kkt = try factor(rho)
                }
            }
        }
        return QPSolution(
            x: x, y: y, iterations: iterations, primalResidual: primal, dualResidual: dual, converged: converged,
            objective: problem.objective(x))
    }

    static func norm(_ v: [Double]) -> Double { v.map(abs).max() ?? 0 }
}

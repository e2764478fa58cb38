import RealModule

/// How EM runs.
public struct EMOptions: Sendable, Equatable {
    public var maxIterations: Int
    /// Converged when the log-likelihood changes by less than this, relative to its size.
    public var tolerance: Double
    /// Ridge λ of the M-step's regressions, relative to the mean diagonal of the regressors'
    /// second moments (so it means the same whatever the KPIs' units).
    public var ridge: Double
    /// Keep C at this matrix instead of estimating it (it pins down the state's coordinates).
    public var fixedC: Matrix?

    public init(maxIterations: Int = 200, tolerance: Double = 1e-6, ridge: Double = 1e-6, fixedC: Matrix? = nil) {
        self.maxIterations = maxIterations
        self.tolerance = tolerance
        self.ridge = ridge
        self.fixedC = fixedC
    }
}

public struct EMIteration: Sendable, Equatable {
    public var iteration: Int
    /// Of the parameters this iteration started from.
    public var logLikelihood: Double
    /// ‖θ_new − θ_old‖ of the M-step that followed (0 for the last one).
    public var parameterChange: Double
}

/// How well a fitted model predicts each KPI one day ahead (over the observed days).
public struct FitDiagnostics: Sendable, Equatable {
    public var rmse: [Double]
    public var r2: [Double]
    public var logLikelihood: Double
    public var observedDays: Int

    /// From one-step-ahead predictions and the observations.
    public static func of(predictions: [[Double]], observations: [[Double]?], logLikelihood: Double) -> FitDiagnostics {
        let pairs = zip(predictions, observations).compactMap { p, y in y.map { (p, $0) } }
        let ny = pairs.first?.1.count ?? 0
        var rmse = [Double](repeating: 0, count: ny)
        var r2 = [Double](repeating: 0, count: ny)
        for k in 0..<ny {
            let ys = pairs.map { $0.1[k] }
            let mean = ys.reduce(0, +) / Double(max(ys.count, 1))
            let ssRes = pairs.reduce(0) { $0 + ($1.1[k] - $1.0[k]) * ($1.1[k] - $1.0[k]) }
            let ssTot = ys.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
            rmse[k] = (ssRes / Double(max(ys.count, 1))).squareRoot()
            r2[k] = ssTot > 0 ? 1 - ssRes / ssTot : 0
        }
        return FitDiagnostics(rmse: rmse, r2: r2, logLikelihood: logLikelihood, observedDays: pairs.count)
    }
}

public struct EMResult: Sendable {
    public var parameters: StateSpaceParameters
    public var iterations: [EMIteration]
    public var converged: Bool
    public var diagnostics: FitDiagnostics
    /// The filter's pass with the final parameters (its last state starts forecasts).
    public var filtered: FilterResult
}

/// Maximum likelihood for A, B, C, D, E, Q, R (and the initial state) by expectation–
/// maximization: the E-step is the Kalman filter and RTS smoother, the M-step ridge regressions
/// on the smoothed states' expected sufficient statistics (covariances included, so each
/// iteration cannot lower the likelihood beyond the ridge's effect).
public enum ExpectationMaximization {
    public static func fit(
        _ series: StateSpaceSeries, from initial: StateSpaceParameters, options: EMOptions = EMOptions()
    ) throws(ModelError) -> EMResult {
        guard series.observedCount > initial.nx + initial.nu + initial.nd + 1 else {
            throw ModelError(
                .insufficientData,
                "\(series.observedCount) observed days for \(initial.nx + initial.nu + initial.nd) regressors")
        }
        guard options.maxIterations > 0 else { throw ModelError(.invalidInput, "at least one EM iteration") }
        var theta = initial
        if let c = options.fixedC { theta.c = c }
        var iterations: [EMIteration] = []
        var converged = false
        var filtered = try KalmanFilter.filter(theta, series)
        iterations.append(EMIteration(iteration: 1, logLikelihood: filtered.logLikelihood, parameterChange: 0))
        // Plain EM is monotone but slow where the state is weakly identified (a latent state read
        // through a free C): hundreds of steps that each gain little. SQUAREM extrapolates along
        // two EM steps and keeps the result only when the likelihood is no lower than EM's own.
        while iterations.count < options.maxIterations {
            let step = try squaremStep(theta, filtered, series, options)
            let previous = filtered.logLikelihood
            iterations[iterations.count - 1].parameterChange = distance(step.theta.flattened, theta.flattened)
            theta = step.theta
            filtered = step.filtered
            let ll = filtered.logLikelihood
            iterations.append(EMIteration(iteration: iterations.count + 1, logLikelihood: ll, parameterChange: 0))
            if abs(ll - previous) <= options.tolerance * max(1, abs(previous)) {
                converged = true
                break
            }
        }
        let diagnostics = FitDiagnostics.of(
            predictions: filtered.predictedObservations, observations: series.y,
            logLikelihood: filtered.logLikelihood)
        return EMResult(
            parameters: theta, iterations: iterations, converged: converged, diagnostics: diagnostics,
            filtered: filtered)
    }

    /// One accelerated step (Varadhan & Roland's SqS3 with a monotonicity safeguard): two EM
    /// steps θ₁, θ₂ from θ₀; r = θ₁ − θ₀, v = θ₂ − 2θ₁ + θ₀, α = −‖r‖/‖v‖ (at most −1);
    /// θ′ = θ₀ − 2αr + α²v, then one EM step from θ′. Kept when its likelihood is at least θ₂'s;
    /// otherwise α is halved toward −1 (where θ′ is θ₂), and θ₂ is the fallback.
    static func squaremStep(
        _ theta0: StateSpaceParameters, _ filtered0: FilterResult, _ series: StateSpaceSeries, _ options: EMOptions
    ) throws(ModelError) -> (theta: StateSpaceParameters, filtered: FilterResult) {
        let theta1 = try emStep(theta0, filtered0, series, options)
        let filtered1 = try KalmanFilter.filter(theta1, series)
        let theta2 = try emStep(theta1, filtered1, series, options)
        let filtered2 = try KalmanFilter.filter(theta2, series)
        let x0 = vector(theta0)
        let x1 = vector(theta1)
        let x2 = vector(theta2)
        let r = zip(x1, x0).map { $0 - $1 }
        let v = zip(zip(x2, x1), r).map { $0.0 - $0.1 - $1 }
        let rNorm = norm(r)
        let vNorm = norm(v)
        guard vNorm > 0, rNorm.isFinite, vNorm.isFinite else { return (theta2, filtered2) }
        var alpha = -rNorm / vNorm
        var attempts = 0
        while alpha < -1, attempts < 8 {
            attempts += 1
            let extrapolated = zip(zip(x0, r), v).map { $0.0 - 2 * alpha * $0.1 + alpha * alpha * $1 }
            if let candidate = parameters(extrapolated, like: theta0),
                let filteredCandidate = try? KalmanFilter.filter(candidate, series),
                filteredCandidate.logLikelihood.isFinite,
                let stabilized = try? emStep(candidate, filteredCandidate, series, options),
                let filteredStabilized = try? KalmanFilter.filter(stabilized, series),
                filteredStabilized.logLikelihood >= max(filtered2.logLikelihood, filtered0.logLikelihood)
            {
                return (stabilized, filteredStabilized)
            }
            alpha = (alpha - 1) / 2
        }
        // At the optimum the ridge can make an EM step lose a hair of likelihood: stay put.
        return filtered2.logLikelihood >= filtered0.logLikelihood ? (theta2, filtered2) : (theta0, filtered0)
    }

    static func emStep(
        _ theta: StateSpaceParameters, _ filtered: FilterResult, _ series: StateSpaceSeries, _ options: EMOptions
    ) throws(ModelError) -> StateSpaceParameters {
        try mStep(theta, series, try KalmanFilter.smooth(theta, filtered), options)
    }

    /// Every parameter, the initial state's included, in one vector.
    static func vector(_ p: StateSpaceParameters) -> [Double] {
        p.flattened + p.initialMean + p.initialCovariance.storage
    }

    /// The parameters a vector of `vector(_:)` holds, or nil when a covariance in it is not
    /// positive definite (an extrapolation went too far).
    static func parameters(_ x: [Double], like p: StateSpaceParameters) -> StateSpaceParameters? {
        var next = p
        var offset = 0
        func take(_ m: Matrix) -> Matrix {
            defer { offset += m.storage.count }
            return Matrix(rows: m.rows, cols: m.cols, storage: Array(x[offset..<(offset + m.storage.count)]))
        }
        next.a = take(p.a)
        next.b = take(p.b)
        next.c = take(p.c)
        next.d = take(p.d)
        next.e = take(p.e)
        next.q = take(p.q).symmetrized
        next.r = take(p.r).symmetrized
        next.initialMean = Array(x[offset..<(offset + p.nx)])
        offset += p.nx
        next.initialCovariance = take(p.initialCovariance).symmetrized
        for covariance in [next.q, next.r, next.initialCovariance] where (try? Cholesky(covariance)) == nil {
            return nil
        }
        return next
    }

    static func norm(_ x: [Double]) -> Double { x.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    /// A neutral start for standardized KPIs: persistent states read directly by C (identity-
    /// like), no control effect yet, noise shared between process and observation.
    public static func initialParameters(nx: Int, nu: Int, ny: Int, nd: Int, series: StateSpaceSeries)
        -> StateSpaceParameters
    {
        var c = Matrix(rows: ny, cols: nx)
        for i in 0..<min(nx, ny) { c[i, i] = 1 }
        var mean = [Double](repeating: 0, count: nx)
        if let first = series.y.compactMap({ $0 }).first {
            for i in 0..<min(nx, ny) { mean[i] = first[i] }
        }
        return StateSpaceParameters(
            a: Matrix.identity(nx, scale: 0.9), b: Matrix(rows: nx, cols: nu), c: c, d: Matrix(rows: ny, cols: nu),
            e: Matrix(rows: nx, cols: nd), q: Matrix.identity(nx, scale: 0.1), r: Matrix.identity(ny, scale: 0.1),
            initialMean: mean, initialCovariance: Matrix.identity(nx))
    }

    static func mStep(
        _ theta: StateSpaceParameters, _ s: StateSpaceSeries, _ sm: SmootherResult, _ options: EMOptions
    ) throws(ModelError) -> StateSpaceParameters {
        let nx = theta.nx
        let nu = theta.nu
        let nd = theta.nd
        let nz = nx + nu + nd
        let n = s.count
        // Transitions: x_{t+1} on z_t = [x_t; u_t; d_t].
        var szz = Matrix(rows: nz, cols: nz)
        var sxz = Matrix(rows: nx, cols: nz)
        var sxx1 = Matrix(rows: nx, cols: nx)
        for t in 0..<(n - 1) {
            let z = sm.means[t] + s.u[t] + s.d[t]
            addOuter(&szz, z, z)
            addBlock(&szz, sm.covariances[t])
            addOuter(&sxz, sm.means[t + 1], z)
            addBlock(&sxz, sm.lagOneCovariances[t])
            addOuter(&sxx1, sm.means[t + 1], sm.means[t + 1])
            addBlock(&sxx1, sm.covariances[t + 1])
        }
        let w = try ridgeSolve(sxz, szz, options.ridge)
        var next = theta
        next.a = w.block(rows: 0..<nx, cols: 0..<nx)
        next.b = w.block(rows: 0..<nx, cols: nx..<(nx + nu))
        next.e = w.block(rows: 0..<nx, cols: (nx + nu)..<nz)
        let residual = sxx1 - w * sxz.transposed - sxz * w.transposed + w * szz * w.transposed
        next.q = try positiveDefinite((1 / Double(n - 1)) * residual)

        // Observations: y_t on h_t = [x_t; u_t] over the observed days.
        let ny = theta.ny
        let observed = (0..<n).compactMap { t in s.y[t].map { (t, $0) } }
        if let fixed = options.fixedC {
            var syu = Matrix(rows: ny, cols: nu)
            var suu = Matrix(rows: nu, cols: nu)
            for (t, y) in observed {
                let cx = fixed.times(sm.means[t])
                addOuter(&syu, zip(y, cx).map { $0 - $1 }, s.u[t])
                addOuter(&suu, s.u[t], s.u[t])
            }
            next.c = fixed
            next.d = try ridgeSolve(syu, suu, options.ridge)
        } else {
            let nh = nx + nu
            var shh = Matrix(rows: nh, cols: nh)
            var syh = Matrix(rows: ny, cols: nh)
            for (t, y) in observed {
                let h = sm.means[t] + s.u[t]
                addOuter(&shh, h, h)
                addBlock(&shh, sm.covariances[t])
                addOuter(&syh, y, h)
            }
            let wy = try ridgeSolve(syh, shh, options.ridge)
            next.c = wy.block(rows: 0..<ny, cols: 0..<nx)
            next.d = wy.block(rows: 0..<ny, cols: nx..<nh)
        }
        var sr = Matrix(rows: ny, cols: ny)
        var observedCovariance = Matrix(rows: nx, cols: nx)
        for (t, y) in observed {
            let predicted = KalmanFilter.add(next.c.times(sm.means[t]), next.d.times(s.u[t]))
            let e = zip(y, predicted).map { $0 - $1 }
            addOuter(&sr, e, e)
            addBlock(&observedCovariance, sm.covariances[t])
        }
        // Σ C P_t Cᵀ = C (Σ P_t) Cᵀ.
        sr = sr + next.c * observedCovariance * next.c.transposed
        next.r = try positiveDefinite((1 / Double(observed.count)) * sr)
        next.initialMean = sm.means[0]
        next.initialCovariance = try positiveDefinite(sm.covariances[0])
        return next
    }

    /// W with W (S + λI) = Sxz, λ relative to S's mean diagonal, by a Cholesky solve.
    static func ridgeSolve(_ sxz: Matrix, _ s: Matrix, _ ridge: Double) throws(ModelError) -> Matrix {
        let scale = max(s.trace / Double(s.rows), .leastNormalMagnitude)
        let regularized = (s + Matrix.identity(s.rows, scale: ridge * scale)).symmetrized
        return try Cholesky(regularized).solve(sxz.transposed).transposed
    }

    /// Rounding can leave a covariance estimate a hair from positive definite: add the smallest
    /// multiple of the identity (relative to its scale) that makes it so.
    static func positiveDefinite(_ m: Matrix) throws(ModelError) -> Matrix {
        let m = m.symmetrized
        if (try? Cholesky(m)) != nil { return m }
        let scale = max(m.trace / Double(m.rows), 1e-12)
        var jitter = 1e-12 * scale
        while jitter < scale {
            let candidate = m + Matrix.identity(m.rows, scale: jitter)
            if (try? Cholesky(candidate)) != nil { return candidate }
            jitter *= 10
        }
        throw ModelError(.notPositiveDefinite, "a noise covariance estimate collapsed")
    }

    static func addOuter(_ m: inout Matrix, _ a: [Double], _ b: [Double]) {
        for j in 0..<b.count where b[j] != 0 {
            for i in 0..<a.count { m.storage[j * m.rows + i] += a[i] * b[j] }
        }
    }

    /// Adds `block` to the top-left corner of `m`.
    static func addBlock(_ m: inout Matrix, _ block: Matrix) {
        for j in 0..<block.cols {
            for i in 0..<block.rows { m.storage[j * m.rows + i] += block.storage[j * block.rows + i] }
        }
    }

    static func distance(_ a: [Double], _ b: [Double]) -> Double {
        zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
    }
}

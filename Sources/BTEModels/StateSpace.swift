import RealModule

/// The linear Gaussian state-space model, at a daily step:
///
///     x_{t+1} = A x_t + B u_t + E d_t + w_t,   w_t ~ N(0, Q)
///     y_t     = C x_t + D u_t + v_t,           v_t ~ N(0, R)
///     x_0     ~ N(m0, P0)
///
/// u are the controls, d the disturbances, y the observed KPIs.
public struct StateSpaceParameters: Equatable, Sendable {
    public var a: Matrix
    public var b: Matrix
    public var c: Matrix
    public var d: Matrix
    public var e: Matrix
    public var q: Matrix
    public var r: Matrix
    public var initialMean: [Double]
    public var initialCovariance: Matrix

    public var nx: Int { a.rows }
    public var nu: Int { b.cols }
    public var ny: Int { c.rows }
    public var nd: Int { e.cols }

    public init(
        a: Matrix, b: Matrix, c: Matrix, d: Matrix, e: Matrix, q: Matrix, r: Matrix, initialMean: [Double],
        initialCovariance: Matrix
    ) {
        precondition(a.rows == a.cols && b.rows == a.rows && e.rows == a.rows && c.cols == a.rows)
        precondition(d.rows == c.rows && d.cols == b.cols && q.rows == a.rows && r.rows == c.rows)
        precondition(initialMean.count == a.rows && initialCovariance.rows == a.rows)
        self.a = a
        self.b = b
        self.c = c
        self.d = d
        self.e = e
        self.q = q
        self.r = r
        self.initialMean = initialMean
        self.initialCovariance = initialCovariance
    }

    /// Every parameter in one vector, for the change between EM iterations.
    public var flattened: [Double] {
        a.storage + b.storage + c.storage + d.storage + e.storage + q.storage + r.storage
    }
}

/// A series to filter or fit: one entry a day. A day without its KPIs (`y[t] == nil`) is
/// predicted through but not used to update.
public struct StateSpaceSeries: Sendable {
    public var y: [[Double]?]
    public var u: [[Double]]
    public var d: [[Double]]

    public init(y: [[Double]?], u: [[Double]], d: [[Double]]) {
        self.y = y
        self.u = u
        self.d = d
    }

    public var count: Int { y.count }
    public var observedCount: Int { y.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }

    func check(against p: StateSpaceParameters) throws(ModelError) {
        guard u.count == y.count, d.count == y.count else {
            throw ModelError(
                .invalidInput, "the series have different lengths (y \(y.count), u \(u.count), d \(d.count))")
        }
        for t in 0..<y.count {
            if let yt = y[t], yt.count != p.ny {
                throw ModelError(.invalidInput, "day \(t) has \(yt.count) KPIs, the model \(p.ny)")
            }
            guard u[t].count == p.nu, d[t].count == p.nd else {
                throw ModelError(.invalidInput, "day \(t) has \(u[t].count) controls and \(d[t].count) disturbances")
            }
            let values = (y[t] ?? []) + u[t] + d[t]
            guard values.allSatisfy(\.isFinite) else {
                throw ModelError(.invalidInput, "day \(t) holds a value that is not a finite number")
            }
        }
    }
}

/// The Kalman filter's pass over a series.
public struct FilterResult: Sendable {
    /// x_{t|t-1} and P_{t|t-1}: before day t's KPIs.
    public var predictedMeans: [[Double]]
    public var predictedCovariances: [Matrix]
    /// x_{t|t} and P_{t|t}: after them (equal to the prediction on a missing day).
    public var filteredMeans: [[Double]]
    public var filteredCovariances: [Matrix]
    /// log p(y_0..y_{T-1}), over the observed days.
    public var logLikelihood: Double
    /// One-step-ahead predictions C x_{t|t-1} + D u_t.
    public var predictedObservations: [[Double]]
}

/// The RTS smoother's pass, from a filter result.
public struct SmootherResult: Sendable {
    public var means: [[Double]]
    public var covariances: [Matrix]
    /// Cov(x_{t+1}, x_t | all days), t = 0..T-2, which EM's expected statistics need.
    public var lagOneCovariances: [Matrix]
}

public enum KalmanFilter {
    static let log2π = Double.log(2 * Double.pi)

    /// The filter with Joseph-form covariance updates and Cholesky solves of the innovation
    /// covariance (no inverse is formed); covariances are re-symmetrized after every step.
    public static func filter(_ p: StateSpaceParameters, _ s: StateSpaceSeries) throws(ModelError) -> FilterResult {
        try s.check(against: p)
        let n = s.count
        let identity = Matrix.identity(p.nx)
        let ct = p.c.transposed
        let at = p.a.transposed
        var result = FilterResult(
            predictedMeans: [], predictedCovariances: [], filteredMeans: [], filteredCovariances: [],
            logLikelihood: 0, predictedObservations: [])
        result.predictedMeans.reserveCapacity(n)
        result.predictedCovariances.reserveCapacity(n)
        result.filteredMeans.reserveCapacity(n)
        result.filteredCovariances.reserveCapacity(n)
        var xp = p.initialMean
        var pp = p.initialCovariance.symmetrized
        for t in 0..<n {
            if t > 0 {
                let xf = result.filteredMeans[t - 1]
                xp = add(p.a.times(xf), p.b.times(s.u[t - 1]), p.e.times(s.d[t - 1]))
                pp = (p.a * result.filteredCovariances[t - 1] * at + p.q).symmetrized
            }
            result.predictedMeans.append(xp)
            result.predictedCovariances.append(pp)
            let yHat = add(p.c.times(xp), p.d.times(s.u[t]))
            result.predictedObservations.append(yHat)
            guard let y = s.y[t] else {
                result.filteredMeans.append(xp)
                result.filteredCovariances.append(pp)
                continue
            }
            let innovation = zip(y, yHat).map { $0 - $1 }
            let cp = p.c * pp
            let sCov = (cp * ct + p.r).symmetrized
            let sChol = try Cholesky(sCov)
            // K = P Cᵀ S⁻¹, from S Kᵀ = C P.
            let k = sChol.solve(cp).transposed
            let xf = add(xp, k.times(innovation))
            let ikc = identity - k * p.c
            let pf = (ikc * pp * ikc.transposed + k * p.r * k.transposed).symmetrized
            result.filteredMeans.append(xf)
            result.filteredCovariances.append(pf)
            result.logLikelihood -=
                0.5 * (Double(p.ny) * log2π + sChol.logDeterminant + sChol.mahalanobis(innovation))
        }
        return result
    }

    /// Rauch–Tung–Striebel: J_t = P_{t|t} Aᵀ P_{t+1|t}⁻¹ by a Cholesky solve.
    public static func smooth(_ p: StateSpaceParameters, _ f: FilterResult) throws(ModelError) -> SmootherResult {
        let n = f.filteredMeans.count
        guard n > 0 else { return SmootherResult(means: [], covariances: [], lagOneCovariances: []) }
        var means = f.filteredMeans
        var covariances = f.filteredCovariances
        var lagOne = [Matrix](repeating: Matrix(rows: p.nx, cols: p.nx), count: max(n - 1, 0))
        for t in stride(from: n - 2, through: 0, by: -1) {
            let pf = f.filteredCovariances[t]
            let pNext = f.predictedCovariances[t + 1]
            let chol = try Cholesky(pNext)
            let jt = chol.solve(p.a * pf)
            let j = jt.transposed
            let diff = zip(means[t + 1], f.predictedMeans[t + 1]).map { $0 - $1 }
            means[t] = add(f.filteredMeans[t], j.times(diff))
            covariances[t] = (pf + j * (covariances[t + 1] - pNext) * jt).symmetrized
            lagOne[t] = covariances[t + 1] * jt
        }
        return SmootherResult(means: means, covariances: covariances, lagOneCovariances: lagOne)
    }

    /// a + b, elementwise.
    @inline(__always) public static func add(_ a: [Double], _ b: [Double]) -> [Double] {
        var out = a
        for i in out.indices { out[i] += b[i] }
        return out
    }

    @inline(__always) public static func add(_ a: [Double], _ b: [Double], _ c: [Double]) -> [Double] {
        var out = a
        for i in out.indices { out[i] += b[i] + c[i] }
        return out
    }
}

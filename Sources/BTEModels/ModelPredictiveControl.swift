/// The control problem over a horizon of H days, on a fitted state-space model:
///
///     minimize   Σ_k (y_k − y_ref)ᵀ Q (y_k − y_ref) + u_kᵀ R u_k
///     subject to x_{k+1} = A x_k + B u_k + E d_k,  y_k = C x_k + D u_k,
///                u_min ≤ u_k ≤ u_max,  y_k[i] ≤ limit_i,  Σ_{k in a week} cᵀu_k ≤ budget.
///
/// The dynamics are substituted (Y = F + G U), leaving a QP in the plan U alone.
public struct MPCProblem: Sendable {
    public var parameters: StateSpaceParameters
    public var startMean: [Double]
    public var disturbances: [[Double]]
    public var targets: [Double]
    public var kpiWeights: [Double]
    public var controlWeights: [Double]
    public var controlLower: [Double]
    public var controlUpper: [Double]
    /// Upper limits on KPIs (model units), every day.
    public var outputLimits: [(kpi: Int, limit: Double)]
    public var budgetCoefficients: [Double]
    public var weeklyBudget: Double?
    public var kpiNames: [String]
    public var controlNames: [String]

    public init(
        parameters: StateSpaceParameters, startMean: [Double], disturbances: [[Double]], targets: [Double],
        kpiWeights: [Double], controlWeights: [Double], controlLower: [Double], controlUpper: [Double],
        outputLimits: [(kpi: Int, limit: Double)], budgetCoefficients: [Double], weeklyBudget: Double?,
        kpiNames: [String], controlNames: [String]
    ) {
        self.parameters = parameters
        self.startMean = startMean
        self.disturbances = disturbances
        self.targets = targets
        self.kpiWeights = kpiWeights
        self.controlWeights = controlWeights
        self.controlLower = controlLower
        self.controlUpper = controlUpper
        self.outputLimits = outputLimits
        self.budgetCoefficients = budgetCoefficients
        self.weeklyBudget = weeklyBudget
        self.kpiNames = kpiNames
        self.controlNames = controlNames
    }

    public var horizon: Int { disturbances.count }
}

public struct MPCPlan: Sendable {
    /// u_0 … u_{H−1}.
    public var controls: [[Double]]
    /// y_0 … y_{H−1} predicted under the plan (model units, no noise).
    public var predicted: [[Double]]
    public var activeConstraints: [String]
    public var solution: QPSolution
}

public enum ModelPredictiveControl {
    /// The condensed QP and the prediction's free part F and input response G.
    public static func quadraticProgram(_ m: MPCProblem) throws(ModelError) -> (
        qp: QuadraticProgram, f: [Double], g: Matrix, labels: [String]
    ) {
        let p = m.parameters
        let h = m.horizon
        let (nx, nu, ny) = (p.nx, p.nu, p.ny)
        guard h > 0, m.startMean.count == nx, m.targets.count == ny, m.kpiWeights.count == ny,
            m.controlWeights.count == nu, m.controlLower.count == nu, m.controlUpper.count == nu,
            m.disturbances.allSatisfy({ $0.count == p.nd }), m.budgetCoefficients.count == nu,
            m.outputLimits.allSatisfy({ (0..<ny).contains($0.kpi) })
        else { throw ModelError(.invalidInput, "the control problem's shapes do not match the model") }
        // Free response F_k = C x_k with u = 0; impulse blocks C A^i B.
        var f = [Double](repeating: 0, count: h * ny)
        var x = m.startMean
        for k in 0..<h {
            let y = p.c.times(x)
            for i in 0..<ny { f[k * ny + i] = y[i] }
            x = KalmanFilter.add(p.a.times(x), p.e.times(m.disturbances[k]))
        }
        var markov: [Matrix] = []  // C A^i B, i = 0 … H−2
        var power = Matrix.identity(nx)
        for _ in 0..<max(h - 1, 0) {
            markov.append(p.c * power * p.b)
            power = p.a * power
        }
        var g = Matrix(rows: h * ny, cols: h * nu)
        for k in 0..<h {
            for j in 0...k {
                let block = j == k ? p.d : markov[k - 1 - j]
                for r in 0..<ny {
                    for c in 0..<nu { g[k * ny + r, j * nu + c] = block[r, c] }
                }
            }
        }
        // P = 2(GᵀQG + R), q = 2GᵀQ(F − y_ref).
        let n = h * nu
        var qg = g
        for row in 0..<(h * ny) {
            let w = m.kpiWeights[row % ny]
            for c in 0..<n { qg[row, c] *= w }
        }
        var pMatrix = 2 * (g.transposed * qg)
        for i in 0..<n { pMatrix[i, i] += 2 * m.controlWeights[i % nu] }
        let offset = (0..<(h * ny)).map { f[$0] - m.targets[$0 % ny] }
        let q = qg.transposed.times(offset).map { 2 * $0 }
        // Constraints: the controls' bounds, the KPI limits each day, the weekly budgets.
        var rows: [[Double]] = []
        var lower: [Double] = []
        var upper: [Double] = []
        var labels: [String] = []
        for k in 0..<h {
            for c in 0..<nu {
                var row = [Double](repeating: 0, count: n)
                row[k * nu + c] = 1
                rows.append(row)
                lower.append(m.controlLower[c])
                upper.append(m.controlUpper[c])
                labels.append("\(m.controlNames[c]) bounds on day \(k + 1)")
            }
        }
        for (kpi, limit) in m.outputLimits {
            for k in 0..<h {
                rows.append((0..<n).map { g[k * ny + kpi, $0] })
                lower.append(-.infinity)
                upper.append(limit - f[k * ny + kpi])
                labels.append("\(m.kpiNames[kpi]) limit on day \(k + 1)")
            }
        }
        if let budget = m.weeklyBudget, m.budgetCoefficients.contains(where: { $0 != 0 }) {
            for week in stride(from: 0, to: h, by: 7) {
                var row = [Double](repeating: 0, count: n)
                for k in week..<min(week + 7, h) {
                    for c in 0..<nu { row[k * nu + c] = m.budgetCoefficients[c] }
                }
                rows.append(row)
                lower.append(-.infinity)
                upper.append(budget)
                labels.append("weekly budget, week \(week / 7 + 1)")
            }
        }
        let a = Matrix(rows)
        return (QuadraticProgram(p: pMatrix.symmetrized, q: q, a: a, lower: lower, upper: upper), f, g, labels)
    }

    public static func solve(
        _ m: MPCProblem, settings: QPSettings = QPSettings(), warmStart: (x: [Double], y: [Double])? = nil
    ) throws(ModelError) -> MPCPlan {
        let (qp, f, g, labels) = try quadraticProgram(m)
        let solution = try QPSolver.solve(qp, settings: settings, warmStart: warmStart)
        guard solution.converged else {
            throw ModelError(
                .notConverged,
                "the control problem did not converge in \(solution.iterations) iterations (infeasible constraints?)")
        }
        let nu = m.parameters.nu
        let ny = m.parameters.ny
        let controls = (0..<m.horizon).map { k in Array(solution.x[(k * nu)..<((k + 1) * nu)]) }
        let y = zip(f, g.times(solution.x)).map { $0 + $1 }
        let predicted = (0..<m.horizon).map { k in Array(y[(k * ny)..<((k + 1) * ny)]) }
        let ax = qp.a.times(solution.x)
        let active = labels.indices.filter { i in
            let scale = max(1, abs(qp.upper[i].isFinite ? qp.upper[i] : 0), abs(qp.lower[i].isFinite ? qp.lower[i] : 0))
            return abs(solution.y[i]) > 1e-6 * scale
                && (abs(ax[i] - qp.upper[i]) <= 1e-5 * scale || abs(ax[i] - qp.lower[i]) <= 1e-5 * scale)
        }.map { labels[$0] }
        return MPCPlan(controls: controls, predicted: predicted, activeConstraints: active, solution: solution)
    }
}

import BTEModels
import Dispatch

/// Times the KPI models on data drawn from a known model: an EM fit of 730 days (nx = nu =
/// ny = 4, nd = 2) next to one Kalman filter pass over the same days, and a Monte Carlo
/// simulation of H = 28 days × 1,000 scenarios next to drawing the same normals alone (the
/// simulation's floor), all in the same run.
public struct ModelsBenchmark: Sendable {
    public struct Result: Sendable {
        public var days = 0
        public var filterSeconds = 0.0
        public var emSeconds = 0.0
        public var emIterations = 0
        public var converged = false
        public var horizon = 0
        public var scenarios = 0
        public var normalsSeconds = 0.0
        public var simulationSeconds = 0.0
        /// With C fixed to the truth: relative Frobenius errors of A and B, and the fitted model's
        /// one-step RMSE over the true model's, per KPI.
        public var errorA = 0.0
        public var errorB = 0.0
        public var rmseRatios: [Double] = []
        public var mpcBoxSeconds = 0.0
        public var mpcSeconds = 0.0
        public var mpcIterations = 0

        public func render() -> String {
            func ms(_ s: Double) -> String { String(format: "%8.1f ms", s * 1_000) }
            return """
                one Kalman filter pass, \(days) days:        \(ms(filterSeconds))
                EM fit, \(days) days, \(emIterations) iterations\(converged ? "" : " (not converged)"):  \
                \(ms(emSeconds))  \
                (\(String(format: "%.0f", emSeconds / max(filterSeconds, 1e-12)))× one filter pass, \
                \(String(format: "%.2f", emSeconds / Double(max(emIterations, 1)) * 1_000)) ms an iteration)
                drawing the normals alone, H=\(horizon) × \(scenarios):  \(ms(normalsSeconds))
                simulation H=\(horizon), \(scenarios) scenarios:        \(ms(simulationSeconds))  \
                (\(String(format: "%.1f", simulationSeconds / max(normalsSeconds, 1e-12)))× the normals)
                MPC H=\(horizon), bounds only:               \(ms(mpcBoxSeconds))
                MPC H=\(horizon), + output limit and budget: \(ms(mpcSeconds))  \
                (\(mpcIterations) ADMM iterations, \
                \(String(format: "%.1f", mpcSeconds / max(mpcBoxSeconds, 1e-12)))× bounds only)
                recovery with C fixed: A within \(String(format: "%.2f", errorA * 100)) %, B within \
                \(String(format: "%.2f", errorB * 100)) % (relative Frobenius); one-step RMSE / true model's: \
                \(rmseRatios.map { String(format: "%.3f", $0) }.joined(separator: ", "))
                """
        }
    }

    public var days = 730
    public var horizon = 28
    public var scenarios = 1_000
    /// Each timing is the best of this many runs.
    public var repeats = 5

    public init() {}

    public func run() throws -> Result {
        let truth = Self.truth
        let series = try StateSpaceSeries.sample(from: truth, days: days, seed: 7)
        var result = Result()
        result.days = days
        result.horizon = horizon
        result.scenarios = scenarios
        let start = ExpectationMaximization.initialParameters(nx: 4, nu: 4, ny: 4, nd: 2, series: series)
        result.filterSeconds = try best { _ = try KalmanFilter.filter(start, series) }
        var fit: EMResult?
        result.emSeconds = try best { fit = try ExpectationMaximization.fit(series, from: start) }
        result.emIterations = fit?.iterations.count ?? 0
        result.converged = fit?.converged ?? false
        let plan = SimulationPlan(
            startMean: [0, 0, 0, 0], startCovariance: truth.initialCovariance,
            controls: Array(repeating: [0.5, 0.5, 1, 0.5], count: horizon),
            disturbances: (0..<horizon).map { [Double($0 % 7) / 6, Double($0 % 30) / 29] }, scenarios: scenarios,
            seed: 1, observationOffset: [0, 0, 0, 0], observationScale: [1, 1, 1, 1])
        let draws = scenarios * (4 + horizon * 8)
        result.normalsSeconds = try best {
            var rng = SeededGenerator(seed: 1)
            var sum = 0.0
            for _ in 0..<draws { sum += rng.normal() }
            if sum.isNaN { print("") }
        }
        result.simulationSeconds = try best { _ = try Simulator.run(truth, plan) }
        func mpc(limits: Bool) -> MPCProblem {
            MPCProblem(
                parameters: truth, startMean: [0, 0, 0, 0], disturbances: plan.disturbances, targets: [1, 0.5, 1, 0],
                kpiWeights: [1, 1, 1, 0], controlWeights: [0.01, 0.01, 0.01, 0.01], controlLower: [0, 0, 0, 0],
                controlUpper: [1, 1, 1, 1], outputLimits: limits ? [(kpi: 3, limit: 0.8)] : [],
                budgetCoefficients: limits ? [0, 1, 0, 0] : [0, 0, 0, 0], weeklyBudget: limits ? 3 : nil,
                kpiNames: ["y0", "y1", "y2", "y3"], controlNames: ["u0", "u1", "u2", "u3"])
        }
        result.mpcBoxSeconds = try best { _ = try ModelPredictiveControl.solve(mpc(limits: false)) }
        var planned: MPCPlan?
        result.mpcSeconds = try best { planned = try ModelPredictiveControl.solve(mpc(limits: true)) }
        result.mpcIterations = planned?.solution.iterations ?? 0
        let pinned = try ExpectationMaximization.fit(
            series, from: start, options: EMOptions(maxIterations: 500, fixedC: truth.c))
        result.errorA = (pinned.parameters.a - truth.a).frobeniusNorm / truth.a.frobeniusNorm
        result.errorB = (pinned.parameters.b - truth.b).frobeniusNorm / truth.b.frobeniusNorm
        let trueRun = try KalmanFilter.filter(truth, series)
        let trueRMSE = FitDiagnostics.of(
            predictions: trueRun.predictedObservations, observations: series.y, logLikelihood: 0
        ).rmse
        result.rmseRatios = zip(pinned.diagnostics.rmse, trueRMSE).map { $0 / $1 }
        return result
    }

    func best(_ body: () throws -> Void) throws -> Double {
        var fastest = Double.infinity
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            fastest = min(fastest, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return fastest
    }

    static let truth = StateSpaceParameters(
        a: Matrix([[0.7, 0.1, 0, 0.05], [0, 0.6, 0.15, 0], [0.05, 0, 0.75, 0.1], [0, 0.05, 0, 0.5]]),
        b: Matrix([[1, 0, 0.5, 0], [0, 0.8, 0, -0.4], [0.3, 0, 1, 0], [0, -0.5, 0, 0.9]]),
        c: Matrix([[1, 0.2, 0, 0], [0, 1, 0.3, 0], [0.1, 0, 1, 0], [0, 0, 0.2, 1]]),
        d: Matrix([[0.1, 0, 0, 0], [0, 0, 0.05, 0], [0, 0.1, 0, 0], [0, 0, 0, 0.2]]),
        e: Matrix([[0.2, 0], [0, 0.1], [-0.1, 0], [0, 0.3]]), q: Matrix.identity(4, scale: 0.004),
        r: Matrix.identity(4, scale: 0.002), initialMean: [0, 0, 0, 0],
        initialCovariance: Matrix.identity(4, scale: 0.1))
}

import BTEModels
import Foundation
import Testing

@Suite struct QuadraticProgramTests {
    /// min ½(x₁² + x₂²) − x₁ − x₂ s.t. x₁ + x₂ ≤ 1, 0 ≤ x ≤ 1: by symmetry and KKT, x = (½, ½)
    /// with multiplier ½ on the sum (1 − ½ = y), objective ¼ − 1 = −¾.
    @Test func smallProblemByHand() throws {
        let qp = QuadraticProgram(
            p: Matrix.identity(2), q: [-1, -1], a: Matrix([[1, 1], [1, 0], [0, 1]]), lower: [-.infinity, 0, 0],
            upper: [1, 1, 1])
        let s = try QPSolver.solve(qp)
        #expect(s.converged)
        #expect(abs(s.x[0] - 0.5) < 1e-6 && abs(s.x[1] - 0.5) < 1e-6, "\(s.x)")
        #expect(abs(s.y[0] - 0.5) < 1e-5 && abs(s.y[1]) < 1e-5 && abs(s.y[2]) < 1e-5, "\(s.y)")
        #expect(abs(s.objective + 0.75) < 1e-6)
        // An equality row: x₁ = 0.2 moves the optimum to (0.2, 0.8) (then x₂ ≤ 1 − 0.2 binds).
        let pinned = QuadraticProgram(
            p: Matrix.identity(2), q: [-1, -1], a: Matrix([[1, 1], [1, 0]]), lower: [-.infinity, 0.2], upper: [1, 0.2])
        let t = try QPSolver.solve(pinned)
        #expect(abs(t.x[0] - 0.2) < 1e-6 && abs(t.x[1] - 0.8) < 1e-6, "\(t.x)")
        // A warm start from the answer converges at once.
        let warm = try QPSolver.solve(qp, warmStart: (s.x, s.y))
        #expect(warm.iterations <= 10)
    }

    @Test func inconsistentBoundsAreTypedErrors() {
        let qp = QuadraticProgram(p: Matrix.identity(1), q: [0], a: Matrix([[1]]), lower: [1], upper: [0])
        #expect(throws: ModelError.self) { try QPSolver.solve(qp) }
    }
}

/// The MPC plan against cvxpy (Clarabel) solving the same problem in its natural form, with
/// states as variables (scripts/fixtures/mpc-reference.py wrote the fixture), to 1e-4.
@Suite struct MPCReferenceTests {
    static func fixture() throws -> [String: Any] {
        let url = try #require(
            Bundle.module.url(forResource: "mpc_reference", withExtension: "json", subdirectory: "Fixtures"))
        return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    @Test(arguments: ["binding", "tracking"])
    func planMatchesTheReference(_ name: String) throws {
        let json = try Self.fixture()
        func matrix(_ key: String) throws -> Matrix { Matrix(try #require(json[key] as? [[Double]])) }
        let cases = try #require(json["cases"] as? [[String: Any]])
        let c = try #require(cases.first { $0["name"] as? String == name })
        let parameters = StateSpaceParameters(
            a: try matrix("A"), b: try matrix("B"), c: try matrix("C"), d: try matrix("D"), e: try matrix("E"),
            q: Matrix.identity(2), r: Matrix.identity(2), initialMean: [0, 0], initialCovariance: Matrix.identity(2))
        let problem = MPCProblem(
            parameters: parameters, startMean: try #require(json["x0"] as? [Double]),
            disturbances: try #require(json["d"] as? [[Double]]), targets: try #require(c["yref"] as? [Double]),
            kpiWeights: try #require(c["kpi_weights"] as? [Double]),
            controlWeights: try #require(c["control_weights"] as? [Double]),
            controlLower: try #require(c["control_lower"] as? [Double]),
            controlUpper: try #require(c["control_upper"] as? [Double]),
            outputLimits: [(kpi: try #require(c["limit_kpi"] as? Int), limit: try #require(c["limit"] as? Double))],
            budgetCoefficients: try #require(c["budget_coefficients"] as? [Double]),
            weeklyBudget: try #require(c["weekly_budget"] as? Double), kpiNames: ["y0", "y1"],
            controlNames: ["u0", "u1"])
        let plan = try ModelPredictiveControl.solve(problem)
        let expected = try #require(c["controls"] as? [[Double]])
        for (k, (got, want)) in zip(plan.controls, expected).enumerated() {
            #expect(zip(got, want).allSatisfy { abs($0 - $1) < 1e-4 }, "day \(k): \(got) vs \(want)")
        }
        // The cost of the plan, from its own predictions, equals the reference optimum.
        let q = problem.kpiWeights
        var cost = 0.0
        for (y, u) in zip(plan.predicted, plan.controls) {
            cost += (0..<2).reduce(0) { $0 + q[$1] * pow(y[$1] - problem.targets[$1], 2) }
            cost += (0..<2).reduce(0) { $0 + problem.controlWeights[$1] * u[$1] * u[$1] }
        }
        let reference = try #require(c["cost"] as? Double)
        #expect(abs(cost - reference) <= 1e-4 * max(1, abs(reference)), "\(cost) vs \(reference)")
        if name == "binding" {
            #expect(plan.activeConstraints.contains { $0.hasPrefix("y1 limit") }, "\(plan.activeConstraints)")
            #expect(plan.activeConstraints.contains { $0.hasPrefix("weekly budget") }, "\(plan.activeConstraints)")
        } else {
            #expect(!plan.activeConstraints.contains { $0.hasPrefix("y1 limit") || $0.hasPrefix("weekly budget") })
        }
    }
}

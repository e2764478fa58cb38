/// Bayesian linear regression of a reward on a context, r = xᵀθ + ε, ε ~ N(0, σ²), with the
/// prior θ ~ N(0, τ²I). Kept as the precision Λ = Σ⁻¹ and b = Λμ, so each update is a sum:
/// Λ ← Λ + xxᵀ/σ², b ← b + x r/σ² (the seed's Σ⁻¹_new = Σ⁻¹_old + xxᵀ/σ², μ_new = Σ_new(Σ⁻¹_old μ_old + x r/σ²)).
public struct BayesianLinearRegression: Sendable, Equatable {
    public private(set) var precision: Matrix
    public private(set) var precisionMean: [Double]
    public let noiseVariance: Double

    public init(dimension: Int, priorVariance: Double = 1, noiseVariance: Double = 1) throws(ModelError) {
        guard dimension > 0, priorVariance > 0, noiseVariance > 0, priorVariance.isFinite, noiseVariance.isFinite
        else { throw ModelError(.invalidInput, "a positive dimension and positive, finite variances") }
        precision = Matrix.identity(dimension, scale: 1 / priorVariance)
        precisionMean = [Double](repeating: 0, count: dimension)
        self.noiseVariance = noiseVariance
    }

    public mutating func update(context x: [Double], reward: Double) throws(ModelError) {
        guard x.count == precisionMean.count, (x + [reward]).allSatisfy(\.isFinite) else {
            throw ModelError(.invalidInput, "a reward needs \(precisionMean.count) finite context values")
        }
        for j in x.indices {
            precisionMean[j] += x[j] * reward / noiseVariance
            for i in x.indices { precision[i, j] += x[i] * x[j] / noiseVariance }
        }
    }

    /// μ = Λ⁻¹ b by a Cholesky solve.
    public func mean() throws(ModelError) -> [Double] { try Cholesky(precision).solve(precisionMean) }

    /// θ ~ N(μ, Λ⁻¹): μ + L⁻ᵀz with Λ = LLᵀ, no inverse formed.
    public func sample(_ rng: inout SeededGenerator) throws(ModelError) -> [Double] {
        let chol = try Cholesky(precision)
        let mu = chol.solve(precisionMean)
        let z = (0..<mu.count).map { _ in rng.normal() }
        return zip(mu, chol.upperTransposedSolve(z)).map { $0 + $1 }
    }
}

/// Linear Thompson sampling with guardrails: sample θ from the posterior, rank the actions by
/// their sampled reward x_aᵀθ, and take the best one the guardrail check allows (it simulates
/// the action forward; a violating action is skipped for the next best).
public enum ConstrainedThompson {
    public struct Decision: Sendable, Equatable {
        public var action: Int
        public var sampledReward: Double
        /// Better-ranked actions the guardrails rejected, in rank order.
        public var rejected: [Int]
    }

    /// nil when every action violates the guardrails.
    public static func choose(
        posterior: BayesianLinearRegression, contexts: [[Double]], rng: inout SeededGenerator,
        allowed: (Int) throws -> Bool
    ) throws -> Decision? {
        let theta = try posterior.sample(&rng)
        let scores = contexts.map { zip($0, theta).reduce(0) { $0 + $1.0 * $1.1 } }
        let ranked = scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        var rejected: [Int] = []
        for action in ranked {
            if try allowed(action) {
                return Decision(action: action, sampledReward: scores[action], rejected: rejected)
            }
            rejected.append(action)
        }
        return nil
    }
}

/// The bandit's state as an append-only log: decisions and the rewards that followed. The
/// posterior is a fold over the rewards, so replaying the log gives it back exactly.
public enum BanditLog {
    public enum Entry: Sendable, Equatable {
        case decision(id: String, action: Int, context: [Double])
        case reward(decisionID: String, reward: Double)
    }

    public static func posterior(_ log: [Entry], dimension: Int, priorVariance: Double = 1, noiseVariance: Double = 1)
        throws(ModelError) -> BayesianLinearRegression
    {
        var model = try BayesianLinearRegression(
            dimension: dimension, priorVariance: priorVariance, noiseVariance: noiseVariance)
        var contexts: [String: [Double]] = [:]
        for entry in log {
            switch entry {
            case .decision(let id, _, let context): contexts[id] = context
            case .reward(let id, let reward):
                guard let context = contexts.removeValue(forKey: id) else {
                    throw ModelError(.invalidInput, "a reward for decision \(id), which is unknown or already rewarded")
                }
                try model.update(context: context, reward: reward)
            }
        }
        return model
    }
}

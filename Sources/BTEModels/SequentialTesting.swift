import RealModule

/// The standard normal distribution.
public enum Normal {
    /// z with Φ(z) = 0.975: the half-width of a 95 % interval in standard errors.
    public static let z975 = 1.959963984540054

    /// Φ(x) = erfc(−x/√2) / 2.
    public static func cdf(_ x: Double) -> Double { Double.erfc(-x / 2.0.squareRoot()) / 2 }

    /// Φ⁻¹(p): Acklam's rational approximation refined by one Halley step (to about 1e-15).
    public static func quantile(_ p: Double) -> Double {
        guard p > 0 else { return -.infinity }
        guard p < 1 else { return .infinity }
        let a = [
            -3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
            -3.066479806614716e+01, 2.506628277459239e+00,
        ]
        let b = [
            -5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
            -1.328068155288572e+01,
        ]
        let c = [
            -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
            4.374664141464968e+00, 2.938163982698783e+00,
        ]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let low = 0.02425
        var x: Double
        if p < low {
            let q = (-2 * Double.log(p)).squareRoot()
            x =
                (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        } else if p <= 1 - low {
            let q = p - 0.5
            let r = q * q
            x =
                (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
                / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        } else {
            let q = (-2 * Double.log(1 - p)).squareRoot()
            x =
                -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        let e = cdf(x) - p
        let u = e * (2 * Double.pi).squareRoot() * Double.exp(x * x / 2)
        x -= u / (1 + x * u / 2)
        return x
    }
}

/// How much of the type-I error α a sequential test may have spent by information fraction t.
public enum AlphaSpending: String, Sendable, CaseIterable {
    /// Lan–DeMets O'Brien–Fleming type: 2 − 2Φ(z_{α/2} / √t); almost nothing early.
    case obrienFleming = "obrien_fleming"
    /// Lan–DeMets Pocock type: α · ln(1 + (e − 1) t); evenly spread.
    case pocock
    /// α · t.
    case linear

    public func spent(alpha: Double, fraction t: Double) -> Double {
        let t = min(max(t, 0), 1)
        guard t > 0 else { return 0 }
        switch self {
        case .obrienFleming: return min(alpha, 2 - 2 * Normal.cdf(Normal.quantile(1 - alpha / 2) / t.squareRoot()))
        case .pocock: return alpha * Double.log(1 + (Double.exp(1) - 1) * t)
        case .linear: return alpha * t
        }
    }

    /// The α available at look k: spent(t_k) − spent(t_{k−1}) for increasing fractions.
    public func increments(alpha: Double, fractions: [Double]) -> [Double] {
        var previous = 0.0
        return fractions.map { t in
            let now = spent(alpha: alpha, fraction: t)
            defer { previous = max(previous, now) }
            return max(0, now - previous)
        }
    }
}

/// The mixture sequential probability ratio test (mSPRT) for the difference of two means with
/// a normal mixture N(0, τ²) over the effect: its p-value is valid whenever the experiment
/// stops, however often it is looked at.
public struct MixtureSPRT: Sendable, Equatable {
    /// Variance of one observation in each arm, and of the mixing distribution.
    public let variance: Double
    public let mixingVariance: Double
    public private(set) var pValue = 1.0

    public init(variance: Double, mixingVariance: Double) throws(ModelError) {
        guard variance > 0, mixingVariance > 0, variance.isFinite, mixingVariance.isFinite else {
            throw ModelError(.invalidInput, "mSPRT variances must be positive and finite")
        }
        self.variance = variance
        self.mixingVariance = mixingVariance
    }

    /// Λ_n = √(2σ² / (2σ² + nτ²)) · exp(n²τ²(ȳ_B − ȳ_A − θ₀)² / (4σ²(2σ² + nτ²))) with n observations
    /// in each arm.
    public func likelihoodRatio(n: Int, difference: Double, null: Double = 0) -> Double {
        let n = Double(n)
        let s2 = 2 * variance
        let total = s2 + n * mixingVariance
        let delta = difference - null
        return (s2 / total).squareRoot() * Double.exp(n * n * mixingVariance * delta * delta / (2 * s2 * total))
    }

    /// Takes the look at n per arm with the observed difference of means; the p-value only falls.
    @discardableResult
    public mutating func observe(n: Int, difference: Double, null: Double = 0) throws(ModelError) -> Double {
        guard n > 0, difference.isFinite, null.isFinite else {
            throw ModelError(.invalidInput, "an mSPRT look needs n > 0 and a finite difference")
        }
        pValue = min(pValue, 1 / likelihoodRatio(n: n, difference: difference, null: null))
        return pValue
    }
}

/// Global holdouts: a stable share of users that never enters experiments, chosen by a hash of
/// the workspace, the user and the refresh period (a new draw each period, e.g. each quarter).
public enum Holdout {
    /// FNV-1a, 64 bits: stable across processes and machines (Swift's Hasher is not).
    public static func hash(_ text: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01b3
        }
        return h
    }

    /// The quarter of a day count since 1970-01-01: year·4 + (month − 1)/3.
    public static func quarter(ofDay day: Int) -> Int {
        let (year, month, _) = KPISeries.civil(day)
        return year * 4 + (month - 1) / 3
    }

    /// True for about `share` of users (0.05 to 0.10 in practice), the same answer for the same
    /// user all period long.
    public static func isHeldOut(workspace: String, user: String, period: Int, share: Double) -> Bool {
        let bucket = hash("\(workspace)|\(period)|\(user)") % 10_000
        return Double(bucket) < share * 10_000
    }
}

import BTEDomain
import BTEModels
import Foundation

/// Model requests from JSON: the bodies of `POST /v1/estimate|simulate|forecast|recommend` and
/// the files `bte models` reads (controls, guardrails, constraints). One reading for both, so the
/// API and the commands accept the same inputs and say the same thing about bad ones. Unknown
/// members are refused: a misspelt setting silently left at its default would mislead.
public enum ModelRequests {
    static func invalid(_ message: String) -> ModelError { ModelError(.invalidInput, message) }

    static func members(_ v: JSONValue, _ what: String) throws -> [(key: String, value: JSONValue)] {
        guard case .object(let members) = v else { throw invalid("\(what) must be a JSON object") }
        return members
    }

    /// A finite number; `key` names it in the error.
    public static func finite(_ v: JSONValue, _ key: String) throws -> Double {
        guard case .number(let text) = v, let x = Double(text), x.isFinite else {
            throw invalid("\(key) must be a finite number")
        }
        return x
    }

    /// A whole number in `range`.
    static func integer(_ v: JSONValue, _ key: String, in range: ClosedRange<Int>) throws -> Int {
        guard case .number(let text) = v, let x = Int(text), range.contains(x) else {
            throw invalid("\(key) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return x
    }

    static func text(_ v: JSONValue, _ key: String) throws -> String {
        guard case .string(let s) = v, !s.isEmpty, s.count <= 200 else {
            throw invalid("\(key) must be a string of 1 to 200 characters")
        }
        return s
    }

    /// An object of finite numbers, e.g. a day's controls.
    public static func finiteObject(_ v: JSONValue, _ key: String) throws -> [String: Double] {
        var out: [String: Double] = [:]
        for (name, value) in try members(v, key) { out[name] = try finite(value, "\(key).\(name)") }
        return out
    }

    /// A number of days: 90, "90", "90d" or "13w".
    public static func days(_ text: String) -> Int? {
        if let n = Int(text) { return n }
        guard let unit = text.last, let n = Int(text.dropLast()) else { return nil }
        switch unit {
        case "d": return n
        case "w": return n.multipliedReportingOverflow(by: 7).overflow ? nil : n * 7
        default: return nil
        }
    }

    public static let sinceRange = 14...3_660

    /// Yesterday, in days since 1970-01-01 (UTC): the last whole day, where fits end by default.
    public static func yesterday() -> Int { Int((Date().timeIntervalSince1970 / 86_400).rounded(.down)) - 1 }

    /// `POST /v1/estimate`: `{"model": …, "segment"?, "since"?, "until"?, "nx"?, "disturbances"?,
    /// "ridge"?, "max_iterations"?, "forgetting"?}`; the workspace is the caller's.
    public static func estimate(_ body: JSONValue, workspaceID: String, yesterday: Int) throws
        -> ModelRuns.FitRequest
    {
        var model: String?
        var segment: String?
        var days = 365
        var toDay = yesterday
        var nx: Int?
        var disturbances: [String]?
        var ridge: Double?
        // EM's default, as bte models fit's --max-iterations: both give the same fit.
        var iterations = EMOptions().maxIterations
        var forgetting: Double?
        for (key, value) in try members(body, "the body") {
            switch key {
            case "model": model = try text(value, key)
            case "workspace_id", "workspace": try Self.sameWorkspace(value, workspaceID)
            case "segment": segment = try text(value, key)
            case "since":
                let given: Int?
                switch value {
                case .number(let t): given = Int(t)
                case .string(let t): given = Self.days(t)
                default: given = nil
                }
                guard let given, sinceRange.contains(given) else {
                    throw invalid("since is 14 to 3,660 days (90, \"90d\" or \"13w\")")
                }
                days = given
            case "until":
                guard case .string(let t) = value, let day = ModelJSON.day(t) else {
                    throw invalid("until must be a date, YYYY-MM-DD")
                }
                toDay = day
            case "nx": nx = try integer(value, key, in: 1...12)
            case "disturbances":
                guard case .array(let items) = value else { throw invalid("disturbances must be an array of names") }
                disturbances = try items.map { try text($0, "disturbances[]") }
            case "ridge":
                let x = try finite(value, key)
                guard x >= 0 else { throw invalid("ridge must not be negative") }
                ridge = x
            case "max_iterations": iterations = try integer(value, key, in: 1...10_000)
            case "forgetting":
                let x = try finite(value, key)
                guard x > 0, x <= 1 else { throw invalid("forgetting is in (0, 1]") }
                forgetting = x
            default: throw invalid("unknown member \(key)")
            }
        }
        guard let model else { throw invalid("model is required: \(ModelRuns.models.joined(separator: " or "))") }
        guard ModelRuns.models.contains(model) else {
            throw invalid("model is \(ModelRuns.models.joined(separator: " or ")), not \(model)")
        }
        var request = ModelRuns.FitRequest(
            workspaceID: workspaceID, model: model, segment: segment, toDay: toDay, days: days)
        if let nx { request.stateDimension = nx }
        if let disturbances { request.disturbances = disturbances }
        if let ridge { request.options.ridge = ridge }
        request.options.maxIterations = iterations
        if let forgetting { request.forgetting = forgetting }
        return request
    }

    /// `{"run_id", "horizon"?, "controls"?, "scenarios"?, "seed"?, "guardrails"?}`; a forecast
    /// (no `controls`) holds the run's last controls.
    public static func simulate(_ body: JSONValue, forecast: Bool, workspaceID: String? = nil) throws
        -> ModelRuns.SimulateRequest
    {
        var runID: String?
        var horizon = 28
        var plan: [[String: Double]] = []
        var scenarios = 1_000
        var seed: UInt64 = 1
        var guardrails = ModelRuns.GuardrailSettings()
        for (key, value) in try members(body, "the body") {
            switch key {
            case "run_id", "run": runID = try Self.runID(value)
            case "workspace_id", "workspace": try Self.sameWorkspace(value, workspaceID)
            case "horizon": horizon = try integer(value, key, in: 1...366)
            case "controls" where !forecast: plan = try Self.plan(value)
            case "scenarios": scenarios = try integer(value, key, in: 1...100_000)
            case "seed": seed = try Self.seed(value)
            case "guardrails": guardrails = try Self.guardrails(value)
            default: throw invalid("unknown member \(key)")
            }
        }
        guard let runID else { throw invalid("run_id is required: a state_space estimate run") }
        var request = ModelRuns.SimulateRequest(runID: runID, horizon: horizon, plan: forecast ? nil : plan)
        request.scenarios = scenarios
        request.seed = seed
        request.guardrails = guardrails
        return request
    }

    /// `{"run_id", "horizon"?, "constraints", "scenarios"?, "seed"?}`.
    public static func recommend(_ body: JSONValue, workspaceID: String? = nil) throws -> ModelRuns.RecommendRequest {
        var runID: String?
        var horizon = 14
        var settings: ModelRuns.RecommendSettings?
        var scenarios = 1_000
        var seed: UInt64 = 1
        for (key, value) in try members(body, "the body") {
            switch key {
            case "run_id", "run": runID = try Self.runID(value)
            case "workspace_id", "workspace": try Self.sameWorkspace(value, workspaceID)
            case "horizon": horizon = try integer(value, key, in: 1...90)
            case "constraints": settings = try constraints(value)
            case "scenarios": scenarios = try integer(value, key, in: 1...100_000)
            case "seed": seed = try Self.seed(value)
            default: throw invalid("unknown member \(key)")
            }
        }
        guard let runID else { throw invalid("run_id is required: a state_space estimate run") }
        guard let settings else { throw invalid("constraints is required, with targets") }
        var request = ModelRuns.RecommendRequest(runID: runID, horizon: horizon, settings: settings)
        request.scenarios = scenarios
        request.seed = seed
        return request
    }

    /// A body may name its workspace (as the commands' --workspace); it must be the caller's,
    /// and another one is not found rather than forbidden, so nothing tells whether it exists.
    static func sameWorkspace(_ v: JSONValue, _ workspaceID: String?) throws {
        guard case .string(let s) = v, let id = canonicalUUID(s) else { throw invalid("workspace_id must be a UUID") }
        if let workspaceID, id != workspaceID.lowercased() {
            throw ModelError(.notFound, "no workspace \(id) for this key")
        }
    }

    static func runID(_ v: JSONValue) throws -> String {
        guard case .string(let s) = v, let id = canonicalUUID(s) else { throw invalid("run_id must be a UUID") }
        return id
    }

    static func seed(_ v: JSONValue) throws -> UInt64 {
        guard case .number(let text) = v, let x = UInt64(text) else {
            throw invalid("seed must be a whole number from 0 to 2^64 − 1")
        }
        return x
    }

    /// `[{"rollout_pct": 0.5}, {}, {"promo_voltage": 0.2}]` (day by day; a day keeps the day
    /// before's controls but for what it names) or one object (from day 0).
    public static func plan(_ v: JSONValue) throws -> [[String: Double]] {
        // The commands' controls file, {"controls": …}, given whole.
        if case .object(let members) = v, members.count == 1, members[0].key == "controls" {
            return try plan(members[0].value)
        }
        if case .array(let days) = v { return try days.map { try finiteObject($0, "controls") } }
        return [try finiteObject(v, "controls")]
    }

    /// Guardrails over the seed's defaults: `latency_max`, `retention_min`,
    /// `retention_probability`, `budget_weekly`, `lambda_latency`, `lambda_budget`,
    /// `budget_coefficients`.
    public static func guardrails(_ v: JSONValue) throws -> ModelRuns.GuardrailSettings {
        var s = ModelRuns.GuardrailSettings()
        for (key, value) in try members(v, "guardrails") {
            if key == "budget_coefficients" {
                s.budgetCoefficients = try finiteObject(value, key)
                continue
            }
            let x = try finite(value, "guardrail \(key)")
            switch key {
            case "latency_max": s.latencyMax = x
            case "retention_min": s.retentionMin = x
            case "retention_probability":
                guard (0...1).contains(x) else { throw invalid("retention_probability is in [0, 1]") }
                s.retentionProbability = x
            case "budget_weekly": s.weeklyBudget = x
            case "lambda_latency": s.latencyWeight = x
            case "lambda_budget": s.budgetWeight = x
            default: throw invalid("unknown guardrail \(key)")
            }
        }
        return s
    }

    /// MPC constraints: `targets` (required), `kpi_weights`, `control_weights`,
    /// `control_bounds` ({name: [lower, upper]}), `latency_max`, `weekly_budget` (null: none),
    /// `budget_coefficients`.
    public static func constraints(_ v: JSONValue) throws -> ModelRuns.RecommendSettings {
        var s = ModelRuns.RecommendSettings()
        for (key, value) in try members(v, "constraints") {
            switch key {
            case "targets": s.targets = try finiteObject(value, key)
            case "kpi_weights": s.kpiWeights = try finiteObject(value, key)
            case "control_weights": s.controlWeights = try finiteObject(value, key)
            case "budget_coefficients": s.budgetCoefficients = try finiteObject(value, key)
            case "latency_max": s.latencyMax = value == .null ? nil : try finite(value, key)
            case "weekly_budget": s.weeklyBudget = value == .null ? nil : try finite(value, key)
            case "control_bounds":
                for (name, bounds) in try members(value, key) {
                    guard case .array(let pair) = bounds, pair.count == 2 else {
                        throw invalid("control_bounds.\(name) is [lower, upper]")
                    }
                    let lower = try finite(pair[0], "control_bounds.\(name)")
                    let upper = try finite(pair[1], "control_bounds.\(name)")
                    guard lower <= upper else { throw invalid("control_bounds.\(name): lower above upper") }
                    s.controlBounds[name] = lower...upper
                }
            default: throw invalid("unknown constraint \(key)")
            }
        }
        guard !s.targets.isEmpty else { throw invalid("the constraints need targets") }
        return s
    }
}

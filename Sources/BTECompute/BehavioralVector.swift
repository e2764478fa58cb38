import BTEDomain

/// An interaction event as the vector computation sees it (a row of `core.interaction_events`).
public struct Interaction: Sendable, Equatable {
    public let eventID: String
    /// The workspace the event was collected for (`UserKey.defaultWorkspace` when it named none).
    public let workspaceID: String
    public let userID: String
    public let sessionID: String
    public let timestamp: Timestamp
    public let eventType: String
    public let capsuleType: String?
    public let durationMilliseconds: Int?
    public let success: Bool

    public init(
        eventID: String, workspaceID: String = UserKey.defaultWorkspace, userID: String, sessionID: String,
        timestamp: Timestamp, eventType: String, capsuleType: String? = nil, durationMilliseconds: Int? = nil,
        success: Bool = true
    ) {
        self.eventID = eventID
        self.workspaceID = workspaceID
        self.userID = userID
        self.sessionID = sessionID
        self.timestamp = timestamp
        self.eventType = eventType
        self.capsuleType = capsuleType
        self.durationMilliseconds = durationMilliseconds
        self.success = success
    }

    public var user: UserKey { UserKey(workspaceID: workspaceID, userID: userID) }
}

/// Seed 001's behavioral vector, computed from a user's interactions in the 30 days up to as_of.
public struct BehavioralVector: Sendable, Equatable {
    public let user: UserKey
    public var userID: String { user.userID }
    public let asOf: Timestamp
    public let expertiseLevel: String
    public let totalInteractions: Int
    public let totalSessions: Int
    public let avgSessionDurationMinutes: Double
    public let avgInteractionsPerSession: Double
    /// Fractions that sum to 1 (or are all 0 when there is nothing to count).
    public let timeOfDay: [(String, Double)]
    public let dayOfWeek: [(String, Double)]
    public let capsuleTypes: [(String, Double)]
    public let layoutPreference: String
    public let dataDensity: String
    public let animationPreference: String
    public let avgInteractionDurationMs: Double
    public let errorRate: Double
    public let completionRate: Double
    public let engagementScore: Double
    public let lastActive: Timestamp
    public let activeDays: Int

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.user == rhs.user && lhs.asOf == rhs.asOf
            && lhs.json(thresholdsVersion: 0, computedFrom: 0) == rhs.json(thresholdsVersion: 0, computedFrom: 0)
    }
}

/// Expertise tiers by interactions in the window: the lower bound of each tier.
public enum ExpertiseTier {
    public static let tiers: [(name: String, minimum: Int)] = [
        ("novice", 0), ("intermediate", 20), ("proficient", 100), ("advanced", 300), ("power_user", 1000),
    ]

    public static func level(for interactions: Int) -> String {
        tiers.last { interactions >= $0.minimum }?.name ?? "novice"
    }
}

public struct VectorComputer: Sendable {
    public init() {}

    /// The user's vector as of `asOf`, or nil when the window holds no interaction of that
    /// user in that workspace.
    public func compute(user: UserKey, interactions all: [Interaction], asOf: Timestamp) -> BehavioralVector? {
        let start = asOf.microseconds - SignalComputer.window
        let events = all.filter {
            $0.userID == user.userID && $0.workspaceID == user.workspaceID && $0.timestamp.microseconds > start
                && $0.timestamp <= asOf
        }
        .sorted { ($0.timestamp, $0.eventID) < ($1.timestamp, $1.eventID) }
        guard let last = events.last else { return nil }
        let total = events.count

        let sessions = Dictionary(grouping: events, by: \.sessionID)
        // Summed in session-id order: floating-point addition is not associative, and a
        // dictionary's order changes from process to process.
        let sessionMinutes = sessions.keys.sorted().map { key -> Double in
            let session = sessions[key] ?? []
            let times = session.map(\.timestamp.microseconds)
            return Double((times.max() ?? 0) - (times.min() ?? 0)) / 60_000_000
        }
        let avgSessionMinutes = sessionMinutes.reduce(0, +) / Double(sessions.count)
        let perSession = Double(total) / Double(sessions.count)

        // UTC parts of day: morning [05, 12), afternoon [12, 17), evening [17, 22), night otherwise.
        var parts: [String: Int] = ["morning": 0, "afternoon": 0, "evening": 0, "night": 0]
        var weekdays = [Int](repeating: 0, count: 7)
        var days: Set<Int64> = []
        for event in events {
            let seconds = event.timestamp.microseconds / 1_000_000
            let day = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
            days.insert(day)
            let hour = Int((seconds - day * 86_400) / 3600)
            switch hour {
            case 5..<12: parts["morning", default: 0] += 1
            case 12..<17: parts["afternoon", default: 0] += 1
            case 17..<22: parts["evening", default: 0] += 1
            default: parts["night", default: 0] += 1
            }
            // 1970-01-01 was a Thursday: index 0 = Monday.
            weekdays[Int(((day % 7) + 7 + 3) % 7)] += 1
        }
        func fractions(_ counts: [(String, Int)]) -> [(String, Double)] {
            let sum = counts.reduce(0) { $0 + $1.1 }
            return counts.map { ($0.0, sum > 0 ? Double($0.1) / Double(sum) : 0) }
        }
        let timeOfDay = fractions(["morning", "afternoon", "evening", "night"].map { ($0, parts[$0] ?? 0) })
        let dayNames = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
        let dayOfWeek = fractions(zip(dayNames, weekdays).map { ($0, $1) })
        var capsuleCounts: [String: Int] = [:]
        for event in events { if let type = event.capsuleType { capsuleCounts[type, default: 0] += 1 } }
        let capsuleTypes = fractions(capsuleCounts.keys.sorted().map { ($0, capsuleCounts[$0] ?? 0) })

        let durations = events.compactMap(\.durationMilliseconds)
        let avgDuration = durations.isEmpty ? 0 : Double(durations.reduce(0, +)) / Double(durations.count)
        let failures = events.filter { !$0.success }.count
        let errorRate = Double(failures) / Double(total)
        let expands = events.filter { $0.eventType == "expand" }.count
        let level = ExpertiseTier.level(for: total)

        // Engagement: sessions (up to 20), depth (up to 10 interactions a session) and
        // regularity (active days of 30), weighted 0.4 / 0.3 / 0.3; always in [0, 1].
        let sessionPart: Double = 0.4 * min(1, Double(sessions.count) / 20)
        let depthPart: Double = 0.3 * min(1, perSession / 10)
        let regularityPart: Double = 0.3 * min(1, Double(days.count) / 30)
        let engagement = sessionPart + depthPart + regularityPart

        return BehavioralVector(
            user: user, asOf: asOf, expertiseLevel: level, totalInteractions: total, totalSessions: sessions.count,
            avgSessionDurationMinutes: avgSessionMinutes, avgInteractionsPerSession: perSession,
            timeOfDay: timeOfDay, dayOfWeek: dayOfWeek, capsuleTypes: capsuleTypes,
            layoutPreference: perSession >= 10 ? "compact" : "comfortable",
            dataDensity: Double(expands) / Double(total) >= 0.2 ? "high" : "normal",
            animationPreference: avgDuration > 0 && avgDuration < 500 ? "minimal" : "standard",
            avgInteractionDurationMs: avgDuration, errorRate: errorRate, completionRate: 1 - errorRate,
            engagementScore: engagement, lastActive: last.timestamp, activeDays: days.count)
    }
}

extension BehavioralVector {
    public var id: String {
        UUIDv5.make(name: "vector|user|\(user.workspaceID)|\(user.userID)|\(asOf.rfc3339)")
    }

    /// Seed 001's BehavioralVector plus engagement metrics and the output envelope; fixed key
    /// order and number format.
    public func json(thresholdsVersion: Int, computedFrom: Int) -> [UInt8] {
        func distribution(_ pairs: [(String, Double)]) -> String {
            JSONValue.object(pairs.map { ($0.0, formatNumber($0.1)) })
        }
        let advanced = expertiseLevel == "advanced" || expertiseLevel == "power_user"
        let fields: [(String, String)] = [
            ("id", quoted(id)),
            ("workspace_id", quoted(user.workspaceID)),
            ("user_id", quoted(userID)),
            ("computed_at", quoted(asOf.rfc3339)),
            ("version", quoted("1.0")),
            ("expertise_level", quoted(expertiseLevel)),
            ("total_interactions", String(totalInteractions)),
            ("total_sessions", String(totalSessions)),
            ("avg_session_duration_minutes", formatNumber(avgSessionDurationMinutes)),
            (
                "usage_patterns",
                JSONValue.object([
                    ("time_of_day_distribution", distribution(timeOfDay)),
                    ("day_of_week_distribution", distribution(dayOfWeek)),
                    ("capsule_type_distribution", distribution(capsuleTypes)),
                ])
            ),
            (
                "user_preferences",
                JSONValue.object([
                    ("layout_preference", quoted(layoutPreference)),
                    ("data_density", quoted(dataDensity)),
                    ("animation_preference", quoted(animationPreference)),
                ])
            ),
            (
                "proficiency_indicators",
                JSONValue.object([
                    ("avg_interaction_duration_ms", formatNumber(avgInteractionDurationMs)),
                    ("error_rate", formatNumber(errorRate)),
                    ("completion_rate", formatNumber(completionRate)),
                ])
            ),
            (
                "engagement_metrics",
                JSONValue.object([
                    ("total_sessions", String(totalSessions)),
                    ("avg_session_duration_minutes", formatNumber(avgSessionDurationMinutes)),
                    ("avg_interactions_per_session", formatNumber(avgInteractionsPerSession)),
                    ("engagement_score", formatNumber(engagementScore)),
                    ("last_active", quoted(lastActive.rfc3339)),
                ])
            ),
            (
                "adaptive_ux_config",
                JSONValue.object([
                    ("guided_mode", expertiseLevel == "novice" ? "true" : "false"),
                    ("show_shortcuts", advanced ? "true" : "false"),
                    ("layout", quoted(layoutPreference)),
                    ("density", quoted(dataDensity)),
                    ("animations", quoted(animationPreference)),
                ])
            ),
            ("as_of", quoted(asOf.rfc3339)),
            ("thresholds_version", String(thresholdsVersion)),
            ("computed_from", String(computedFrom)),
            ("engine_version", quoted(engineVersion)),
        ]
        return JSONValue.objectBytes(fields)
    }
}

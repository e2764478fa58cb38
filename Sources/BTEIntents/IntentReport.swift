/// Intent events of a window counted by everything the rates need; the store reads these in
/// one grouped scan, and every figure of the report is derived from them.
public struct OutcomeGroup: Equatable, Sendable {
    public var promptVersion: String?
    public var outcome: String
    public var errorCode: String?
    public var semregMode: String
    public var events: Int
    /// Events with at least one verb denied by SemReg.
    public var denied: Int
    /// Events with a forced verb.
    public var forced: Int

    public init(
        promptVersion: String?, outcome: String, errorCode: String?, semregMode: String, events: Int, denied: Int,
        forced: Int
    ) {
        self.promptVersion = promptVersion
        self.outcome = outcome
        self.errorCode = errorCode
        self.semregMode = semregMode
        self.events = events
        self.denied = denied
        self.forced = forced
    }
}

/// How often a verb appears in a window (chosen, denied or offered), and how often it matched.
public struct VerbTally: Equatable, Sendable {
    public var verb: String
    public var events: Int
    public var matched: Int

    public init(verb: String, events: Int, matched: Int = 0) {
        self.verb = verb
        self.events = events
        self.matched = matched
    }
}

/// What the store reads for a report.
public struct IntentReportInput: Sendable {
    public var window: ReviewWindow
    /// Only this prompt version in every section but the comparison; nil for all.
    public var promptVersion: String?
    /// Every prompt version's groups, whatever `promptVersion` is: the comparison needs them.
    public var groups: [OutcomeGroup]
    /// Chosen verbs, most frequent first.
    public var hottestVerbs: [VerbTally]
    /// Verbs SemReg denied, most frequent first (an event counts once per verb).
    public var deniedVerbs: [VerbTally]
    /// Verbs offered in clarify_verb outcomes, most frequent first.
    public var clarifyVerbs: [VerbTally]

    public init(
        window: ReviewWindow, promptVersion: String?, groups: [OutcomeGroup], hottestVerbs: [VerbTally],
        deniedVerbs: [VerbTally], clarifyVerbs: [VerbTally]
    ) {
        self.window = window
        self.promptVersion = promptVersion
        self.groups = groups
        self.hottestVerbs = hottestVerbs
        self.deniedVerbs = deniedVerbs
        self.clarifyVerbs = clarifyVerbs
    }
}

/// Counts behind the rates of a set of intent events.
public struct IntentRates: Equatable, Sendable {
    public var events = 0
    public var matched = 0
    public var clarifyVerb = 0
    public var clarifyArgs = 0
    public var denied = 0
    /// SemReg not applied normally: deny_all, unavailable or fail_open.
    public var degraded = 0
    public var forced = 0
    public var errors = 0

    public init() {}

    mutating func add(_ group: OutcomeGroup) {
        events += group.events
        denied += group.denied
        forced += group.forced
        if group.semregMode != "applied" { degraded += group.events }
        switch group.outcome {
        case "matched": matched += group.events
        case "clarify_verb": clarifyVerb += group.events
        case "clarify_args": clarifyArgs += group.events
        case "error": errors += group.events
        default: break
        }
    }

    public var matchRate: Double { share(matched) }
    /// clarify_verb and clarify_args together.
    public var clarifyRate: Double { share(clarifyVerb + clarifyArgs) }
    public var clarifyVerbRate: Double { share(clarifyVerb) }
    public var clarifyArgsRate: Double { share(clarifyArgs) }
    public var semregDenyRate: Double { share(denied) }
    public var semregDegradedRate: Double { share(degraded) }
    public var forcedRate: Double { share(forced) }
    public var errorRate: Double { share(errors) }

    public func share(_ count: Int) -> Double { events == 0 ? 0 : Double(count) / Double(events) }
}

/// The review of a window: failure modes, clarify and SemReg deny rates, hottest verbs and a
/// comparison across prompt versions.
public struct IntentReport: Sendable {
    public struct Count: Equatable, Sendable {
        public var name: String
        public var events: Int
        public var share: Double
    }

    public struct FailureMode: Equatable, Sendable {
        public var outcome: String
        public var errorCode: String?
        public var events: Int
        public var share: Double

        public init(outcome: String, errorCode: String?, events: Int, share: Double) {
            self.outcome = outcome
            self.errorCode = errorCode
            self.events = events
            self.share = share
        }
    }

    public struct Verb: Equatable, Sendable {
        public var verb: String
        public var events: Int
        /// Of all events in the report.
        public var share: Double
        /// Of this verb's events, the fraction that matched (hottest verbs only).
        public var matchRate: Double?
    }

    public struct Version: Equatable, Sendable {
        public var promptVersion: String?
        public var rates: IntentRates
    }

    public let window: ReviewWindow
    public let promptVersion: String?
    public let totals: IntentRates
    public let outcomes: [Count]
    public let failureModes: [FailureMode]
    public let semregModes: [Count]
    public let hottestVerbs: [Verb]
    public let deniedVerbs: [Verb]
    /// `share` is of the clarify_verb events.
    public let clarifyVerbs: [Verb]
    public let promptVersions: [Version]

    public init(_ input: IntentReportInput) {
        window = input.window
        promptVersion = input.promptVersion
        let selected = input.groups.filter { input.promptVersion == nil || $0.promptVersion == input.promptVersion }
        var totals = IntentRates()
        var outcomes: [String: Int] = [:]
        var failures: [FailureKey: Int] = [:]
        var modes: [String: Int] = [:]
        for group in selected {
            totals.add(group)
            outcomes[group.outcome, default: 0] += group.events
            modes[group.semregMode, default: 0] += group.events
            if group.outcome != "matched" {
                failures[FailureKey(outcome: group.outcome, errorCode: group.errorCode), default: 0] += group.events
            }
        }
        self.totals = totals
        self.outcomes = Self.counts(outcomes, of: totals)
        self.semregModes = Self.counts(modes, of: totals)
        failureModes =
            failures
            .map {
                FailureMode(
                    outcome: $0.key.outcome, errorCode: $0.key.errorCode, events: $0.value,
                    share: totals.share($0.value))
            }
            .sorted { ($1.events, $0.outcome, $0.errorCode ?? "") < ($0.events, $1.outcome, $1.errorCode ?? "") }
        hottestVerbs = input.hottestVerbs.map {
            Verb(
                verb: $0.verb, events: $0.events, share: totals.share($0.events),
                matchRate: $0.events == 0 ? 0 : Double($0.matched) / Double($0.events))
        }
        deniedVerbs = input.deniedVerbs.map {
            Verb(verb: $0.verb, events: $0.events, share: totals.share($0.events), matchRate: nil)
        }
        let clarifying = totals.clarifyVerb
        clarifyVerbs = input.clarifyVerbs.map {
            Verb(
                verb: $0.verb, events: $0.events, share: clarifying == 0 ? 0 : Double($0.events) / Double(clarifying),
                matchRate: nil)
        }
        var versions: [String?: IntentRates] = [:]
        for group in input.groups { versions[group.promptVersion, default: IntentRates()].add(group) }
        // Named versions in code-point order, then events without a version.
        promptVersions = versions.map { Version(promptVersion: $0.key, rates: $0.value) }
            .sorted {
                ($0.promptVersion == nil ? 1 : 0, $0.promptVersion ?? "") < (
                    $1.promptVersion == nil ? 1 : 0, $1.promptVersion ?? ""
                )
            }
    }

    private struct FailureKey: Hashable {
        var outcome: String
        var errorCode: String?
    }

    private static func counts(_ tally: [String: Int], of totals: IntentRates) -> [Count] {
        tally.map { Count(name: $0.key, events: $0.value, share: totals.share($0.value)) }
            .sorted { ($1.events, $0.name) < ($0.events, $1.name) }
    }
}

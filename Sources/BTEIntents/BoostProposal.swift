import BTEDomain
import Crypto

/// Where a boost applies in the orchestrator's ranking: (scope bucket, subject kind, phase, verb).
public struct BoostKey: Hashable, Comparable, Sendable {
    public var scopeBucket: String
    public var subjectKind: String
    public var phase: String
    public var verb: String

    public init(scopeBucket: String, subjectKind: String, phase: String, verb: String) {
        self.scopeBucket = scopeBucket
        self.subjectKind = subjectKind
        self.phase = phase
        self.verb = verb
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.scopeBucket, lhs.subjectKind, lhs.phase, lhs.verb) < (
            rhs.scopeBucket, rhs.subjectKind, rhs.phase, rhs.verb
        )
    }
}

/// Events of one verb in one (scope bucket, subject kind), e.g. how often users chose it.
public struct ChoiceTally: Equatable, Sendable {
    public var scopeBucket: String
    public var subjectKind: String
    public var verb: String
    public var events: Int

    public init(scopeBucket: String, subjectKind: String, verb: String, events: Int) {
        self.scopeBucket = scopeBucket
        self.subjectKind = subjectKind
        self.verb = verb
        self.events = events
    }
}

/// A rule to append to `agent.verb_boost_rules`.
public struct BoostRule: Equatable, Sendable {
    public var key: BoostKey
    /// In [-1, 1]; 0 switches an earlier rule off.
    public var weight: Double
    public var reason: String
    /// The weight in force when the rule was proposed (nil: none). Applying refuses a rule whose
    /// key changed since, so an old proposal can't silently undo newer rules.
    public var replacing: Double?

    public init(key: BoostKey, weight: Double, reason: String, replacing: Double? = nil) {
        self.key = key
        self.weight = weight
        self.reason = reason
        self.replacing = replacing
    }
}

/// A reviewable set of boost rules derived from a window of intent telemetry. Nothing is
/// changed by proposing: an admin edits or accepts the file and applies it explicitly.
public struct BoostProposal: Sendable {
    public struct Proposed: Equatable, Sendable {
        public var rule: BoostRule
        /// The weight in force for the key, if any.
        public var currentWeight: Double?
        /// Events supporting the rule, out of the events of its kind in the same bucket.
        public var support: Int
        public var outOf: Int
    }

    public static let kind = "bte.verb-boost-proposal"
    /// Boosts from verbs users pick after a clarify: discovery should rank them higher.
    public static let discoveryPhase = "discovery"
    /// Boosts from verbs forced over discovery's first candidate.
    public static let semregPhase = "semreg"

    public let window: ReviewWindow
    public let minSupport: Int
    public let rules: [Proposed]

    /// Proposes, per (scope bucket, subject kind), a boost for every verb with at least
    /// `minSupport` events: weight = its events ÷ the bucket's events of the same kind, rounded
    /// to two decimals. A rule equal to the one in force is left out.
    public init(
        window: ReviewWindow, userChoices: [ChoiceTally], forcedOverrides: [ChoiceTally], current: [BoostKey: Double],
        minSupport: Int
    ) {
        self.window = window
        self.minSupport = minSupport
        var rules: [Proposed] = []
        for (phase, tallies) in [(Self.discoveryPhase, userChoices), (Self.semregPhase, forcedOverrides)] {
            var bucketTotals: [String: Int] = [:]
            for tally in tallies {
                bucketTotals[tally.scopeBucket + "\u{0}" + tally.subjectKind, default: 0] += tally.events
            }
            for tally in tallies where tally.events >= max(minSupport, 1) {
                let outOf = bucketTotals[tally.scopeBucket + "\u{0}" + tally.subjectKind] ?? tally.events
                let key = BoostKey(
                    scopeBucket: tally.scopeBucket, subjectKind: tally.subjectKind, phase: phase, verb: tally.verb)
                let weight = (Double(tally.events) / Double(outOf) * 100).rounded() / 100
                if current[key] == weight { continue }
                let what =
                    phase == Self.discoveryPhase
                    ? "users picked it themselves (user_choice) in \(tally.events) of \(outOf) choices"
                    : "forced over discovery's first candidate in \(tally.events) of \(outOf) overrides"
                let reason =
                    "\(what) (scope \(tally.scopeBucket), subject \(tally.subjectKind), "
                    + "\(window.since.rfc3339) .. \(window.until.rfc3339))"
                rules.append(
                    Proposed(
                        rule: BoostRule(key: key, weight: weight, reason: reason, replacing: current[key]),
                        currentWeight: current[key], support: tally.events, outOf: outOf))
            }
        }
        self.rules = rules.sorted { $0.rule.key < $1.rule.key }
    }

    /// The proposal file: reviewers may delete rules or change weights and reasons before applying.
    public func json() -> String {
        let document: JSONValue = .object([
            ("kind", .string(Self.kind)),
            ("format", .number("1")),
            ("window", .object([("since", .string(window.since.rfc3339)), ("until", .string(window.until.rfc3339))])),
            ("min_support", .number(String(minSupport))),
            (
                "rules",
                .array(
                    rules.map { proposed in
                        let key = proposed.rule.key
                        return .object([
                            ("scope_bucket", .string(key.scopeBucket)), ("subject_kind", .string(key.subjectKind)),
                            ("phase", .string(key.phase)), ("verb_fqn", .string(key.verb)),
                            ("boost_weight", .number(formatRate(proposed.rule.weight))),
                            ("current_weight", proposed.currentWeight.map { .number(formatRate($0)) } ?? .null),
                            ("support", .number(String(proposed.support))), ("out_of", .number(String(proposed.outOf))),
                            ("reason", .string(proposed.rule.reason)),
                        ])
                    })
            ),
        ])
        return document.prettyString()
    }

    /// The rules of a proposal file, checked: every rule needs a non-empty scope bucket, subject
    /// kind, phase, verb and reason, and a weight in [-1, 1]; a key may appear once.
    /// `current_weight` (absent or null: no rule in force) is what applying expects in force.
    public static func rules(fromFile bytes: [UInt8]) throws(IntentReviewError) -> [BoostRule] {
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes)
        } catch {
            throw IntentReviewError(.invalidProposal, "the proposal is not valid JSON (\(error))")
        }
        guard case .string(kind)? = document["kind"] else {
            throw IntentReviewError(.invalidProposal, "not a boost proposal: \"kind\" must be \"\(kind)\"")
        }
        guard case .array(let items)? = document["rules"] else {
            throw IntentReviewError(.invalidProposal, "the proposal has no \"rules\" array")
        }
        guard !items.isEmpty else {
            throw IntentReviewError(.emptyProposal, "the proposal has no rules: nothing to apply")
        }
        var rules: [BoostRule] = []
        var seen: Set<BoostKey> = []
        for (index, item) in items.enumerated() {
            func text(_ field: String) throws(IntentReviewError) -> String {
                guard case .string(let value)? = item[field], !value.allSatisfy(\.isWhitespace), value.utf8.count <= 500
                else {
                    throw IntentReviewError(
                        .invalidProposal,
                        "rule \(index + 1): \"\(field)\" must be a non-empty string of at most 500 bytes")
                }
                return value
            }
            let key = BoostKey(
                scopeBucket: try text("scope_bucket"), subjectKind: try text("subject_kind"), phase: try text("phase"),
                verb: try text("verb_fqn"))
            guard case .number(let weightText)? = item["boost_weight"], let weight = Double(weightText),
                weight.isFinite, (-1...1).contains(weight)
            else {
                throw IntentReviewError(
                    .invalidProposal, "rule \(index + 1): \"boost_weight\" must be a number in [-1, 1]")
            }
            var replacing: Double?
            switch item["current_weight"] {
            case nil, .null?: replacing = nil
            case .number(let text)?:
                guard let value = Double(text), value.isFinite else { fallthrough }
                replacing = value
            default:
                throw IntentReviewError(
                    .invalidProposal,
                    "rule \(index + 1): \"current_weight\" must be a number or null (the weight in force when proposed)"
                )
            }
            guard seen.insert(key).inserted else {
                throw IntentReviewError(
                    .invalidProposal,
                    "rule \(index + 1): \(key.scopeBucket)/\(key.subjectKind)/\(key.phase)/\(key.verb) appears twice")
            }
            rules.append(BoostRule(key: key, weight: weight, reason: try text("reason"), replacing: replacing))
        }
        return rules
    }

    /// A name for a set of rules: the same rules give the same id, so a proposal can't be
    /// applied twice by accident.
    public static func id(of rules: [BoostRule]) -> String {
        let canonical: JSONValue = .array(
            rules.sorted { $0.key < $1.key }.map {
                .array([
                    .string($0.key.scopeBucket), .string($0.key.subjectKind), .string($0.key.phase),
                    .string($0.key.verb),
                    .number(formatRate($0.weight)), .string($0.reason),
                ])
            })
        let digest = SHA256.hash(data: canonical.canonicalBytes())
        return "bp-" + hexString(digest.prefix(8))
    }
}

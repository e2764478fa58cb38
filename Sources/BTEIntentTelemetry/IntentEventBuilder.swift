import Foundation

/// Builds a valid `intent_event` record for `bte.intent-events.v1` from an utterance without
/// ever putting the raw utterance in it: only its hash and (optionally) a redacted preview.
public struct IntentEventBuilder: Sendable {
    public var eventID = UUID()
    public var timestamp = Date()
    public var sessionID: UUID
    public var actorID: String
    /// chat, mcp, repl or execute.
    public var entrypoint: String
    /// applied, deny_all, unavailable or fail_open.
    public var semregMode: String
    /// matched, clarify_verb, clarify_args, no_allowed_verbs, direct_dsl_denied, error, …
    public var outcome: String
    public var preview: PreviewMode = .redacted
    public var chosenVerb: String?
    public var selectionSource: String?
    public var forcedVerb: String?
    public var verbCandidatesPre: [String] = []
    public var verbCandidatesPost: [String] = []
    public var semregDeniedVerbs: [String] = []
    public var promptVersion: String?
    public var errorCode: String?

    public init(sessionID: UUID, actorID: String, entrypoint: String, semregMode: String, outcome: String) {
        self.sessionID = sessionID
        self.actorID = actorID
        self.entrypoint = entrypoint
        self.semregMode = semregMode
        self.outcome = outcome
    }

    /// The record's JSON; `utterance` is hashed and, unless `preview` is `.none`, previewed redacted.
    public func json(utterance: String) -> Data {
        var record: [String: Any] = [
            "record_type": "intent_event",
            "event_id": eventID.uuidString.lowercased(),
            "ts": timestampText,
            "session_id": sessionID.uuidString.lowercased(),
            "actor_id": actorID,
            "entrypoint": entrypoint,
            "utterance_hash": utteranceHash(utterance),
            "semreg_mode": semregMode,
            "outcome": outcome,
            "macro_semreg_checked": false,
        ]
        if preview == .redacted { record["utterance_preview"] = previewRedacted(utterance) }
        if let chosenVerb { record["chosen_verb_fqn"] = chosenVerb }
        if let selectionSource { record["selection_source"] = selectionSource }
        if let forcedVerb { record["forced_verb_fqn"] = forcedVerb }
        if !verbCandidatesPre.isEmpty { record["verb_candidates_pre"] = verbCandidatesPre }
        if !verbCandidatesPost.isEmpty { record["verb_candidates_post"] = verbCandidatesPost }
        if !semregDeniedVerbs.isEmpty { record["semreg_denied_verbs"] = semregDeniedVerbs }
        if let promptVersion { record["prompt_version"] = promptVersion }
        if let errorCode { record["error_code"] = errorCode }
        return (try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])) ?? Data("{}".utf8)
    }

    /// RFC 3339 UTC with milliseconds.
    private var timestampText: String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: timestamp)
    }
}

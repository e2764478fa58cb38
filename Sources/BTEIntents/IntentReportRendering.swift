import BTEDomain

/// A fraction rounded to four decimals, as a JSON number (0.375, 0.3333, 1, 0).
public func formatRate(_ value: Double) -> String {
    let rounded = (value * 10_000).rounded() / 10_000
    if rounded == rounded.rounded() { return String(Int64(rounded)) }
    return String(rounded)
}

/// A fraction as a percentage with one decimal (37.5%).
func percent(_ value: Double) -> String {
    let tenths = Int64((value * 1_000).rounded())
    return "\(tenths / 10).\(tenths % 10)%"
}

extension IntentReport {
    /// The report as JSON with a fixed key order; rates are fractions rounded to four decimals.
    public func json() -> String {
        func number(_ value: Int) -> JSONValue { .number(String(value)) }
        func rate(_ value: Double) -> JSONValue { .number(formatRate(value)) }
        func text(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
        func rates(_ r: IntentRates) -> [(key: String, value: JSONValue)] {
            [
                ("events", number(r.events)), ("match_rate", rate(r.matchRate)), ("clarify_rate", rate(r.clarifyRate)),
                ("clarify_verb_rate", rate(r.clarifyVerbRate)), ("clarify_args_rate", rate(r.clarifyArgsRate)),
                ("semreg_deny_rate", rate(r.semregDenyRate)), ("semreg_degraded_rate", rate(r.semregDegradedRate)),
                ("forced_rate", rate(r.forcedRate)), ("error_rate", rate(r.errorRate)),
            ]
        }
        func verbs(_ list: [Verb]) -> JSONValue {
            .array(
                list.map { verb in
                    var members: [(key: String, value: JSONValue)] = [
                        ("verb_fqn", .string(verb.verb)), ("events", number(verb.events)), ("share", rate(verb.share)),
                    ]
                    if let matchRate = verb.matchRate { members.append(("match_rate", rate(matchRate))) }
                    return .object(members)
                })
        }
        let document: JSONValue = .object([
            ("window", .object([("since", .string(window.since.rfc3339)), ("until", .string(window.until.rfc3339))])),
            ("prompt_version", text(promptVersion)),
            ("totals", .object(rates(totals))),
            (
                "outcomes",
                .array(
                    outcomes.map {
                        .object([
                            ("outcome", .string($0.name)), ("events", number($0.events)), ("share", rate($0.share)),
                        ])
                    })
            ),
            (
                "failure_modes",
                .array(
                    failureModes.map {
                        .object([
                            ("outcome", .string($0.outcome)), ("error_code", text($0.errorCode)),
                            ("events", number($0.events)), ("share", rate($0.share)),
                        ])
                    })
            ),
            (
                "semreg_modes",
                .array(
                    semregModes.map {
                        .object([
                            ("semreg_mode", .string($0.name)), ("events", number($0.events)), ("share", rate($0.share)),
                        ])
                    })
            ),
            ("hottest_verbs", verbs(hottestVerbs)),
            ("denied_verbs", verbs(deniedVerbs)),
            ("clarify_verbs", verbs(clarifyVerbs)),
            (
                "prompt_versions",
                .array(promptVersions.map { .object([("prompt_version", text($0.promptVersion))] + rates($0.rates)) })
            ),
        ])
        return document.prettyString()
    }

    /// The report as aligned text for a terminal.
    public func table() -> String {
        var lines: [String] = []
        lines.append(
            "intent report \(window.since.rfc3339) .. \(window.until.rfc3339), prompt version \(promptVersion ?? "all")"
        )
        let t = totals
        lines.append(
            "events \(t.events): matched \(percent(t.matchRate)), clarify \(percent(t.clarifyRate)) "
                + "(verb \(percent(t.clarifyVerbRate)), args \(percent(t.clarifyArgsRate))), "
                + "SemReg deny \(percent(t.semregDenyRate)), SemReg not applied \(percent(t.semregDegradedRate)), "
                + "forced \(percent(t.forcedRate)), error \(percent(t.errorRate))"
        )
        func section(_ title: String, _ rows: [[String]]) {
            lines.append("")
            lines.append(title)
            if rows.isEmpty {
                lines.append("  (none)")
                return
            }
            let widths = (0..<(rows.map(\.count).max() ?? 0)).map { column in
                rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0
            }
            for row in rows {
                let cells = row.enumerated().map { column, cell in
                    // First column left-aligned, numbers right-aligned.
                    let pad = String(repeating: " ", count: widths[column] - cell.count)
                    return column == 0 ? cell + pad : pad + cell
                }
                lines.append("  " + cells.joined(separator: "  "))
            }
        }
        section(
            "top failure modes",
            failureModes.map {
                [$0.outcome + ($0.errorCode.map { " (\($0))" } ?? ""), String($0.events), percent($0.share)]
            })
        section("SemReg modes", semregModes.map { [$0.name, String($0.events), percent($0.share)] })
        section(
            "hottest verbs (events, share, matched)",
            hottestVerbs.map { [$0.verb, String($0.events), percent($0.share), percent($0.matchRate ?? 0)] })
        section(
            "most denied verbs (events, share of all events)",
            deniedVerbs.map { [$0.verb, String($0.events), percent($0.share)] })
        section(
            "verbs offered in clarify_verb (events, share of clarify_verb)",
            clarifyVerbs.map { [$0.verb, String($0.events), percent($0.share)] })
        var versions = [["version", "events", "matched", "clarify", "deny", "forced", "error"]]
        versions += promptVersions.map {
            let r = $0.rates
            return [
                $0.promptVersion ?? "(none)", String(r.events), percent(r.matchRate), percent(r.clarifyRate),
                percent(r.semregDenyRate), percent(r.forcedRate), percent(r.errorRate),
            ]
        }
        section("prompt versions", promptVersions.isEmpty ? [] : versions)
        return lines.joined(separator: "\n") + "\n"
    }
}

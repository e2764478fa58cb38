import BTECompute
import BTEDomain
import BTEOperations
import BTEStore
import Crypto
import Foundation
import Hummingbird
import Mustache
import Synchronization

/// `GET /dashboard`: one server-rendered page (no script, no asset from elsewhere) for a key's
/// workspace: its ingest rate and freshness, signals with sparklines, insights and their feedback
/// rates. The pipeline-wide figures (every workspace's ingest rate, lag per group, rejects by
/// code, problems) are an operator key's only; no page shows an error's raw text.
///
/// A browser signs in by posting the admin key once; it gets a session cookie that names the
/// key's hash, signed with a secret of this process, valid 12 h and only while the key is
/// live (a revoked key's sessions stop with it).
struct DashboardSessions: Sendable {
    /// Random per process: sessions end when the server restarts.
    let secret: [UInt8] = {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }()
    static let cookie = "bte_session"
    static let lifetimeSeconds: Int64 = 12 * 3600

    func issue(keyHash: [UInt8], now: Int64) -> String {
        let payload = hexString(keyHash) + "." + String(now + Self.lifetimeSeconds)
        return payload + "." + signature(payload)
    }

    /// The key hash a valid, unexpired session names.
    func verify(_ value: String, now: Int64) -> [UInt8]? {
        let parts = value.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let expiry = Int64(parts[1]), expiry > now else { return nil }
        let payload = parts[0] + "." + parts[1]
        guard ApiKeyHash.constantTimeEqual(Array(signature(String(payload)).utf8), Array(parts[2].utf8)),
            let hash = bytes(hex: String(parts[0])), hash.count == 32
        else { return nil }
        return hash
    }

    private func signature(_ payload: String) -> String {
        hexString(Array(HMAC<SHA256>.authenticationCode(for: Array(payload.utf8), using: SymmetricKey(data: secret))))
    }
}

/// The pipeline figures, gathered at most every few seconds (they cost broker round trips).
final class OperationsSnapshot: Sendable {
    struct Figures: Sendable {
        var groups: [(group: String, lagMessages: Int64, lagSeconds: Double)] = []
        var rejects: [(code: String, count: Int)] = []
        var problems: [String] = []
        /// The database's role, backups, WAL archive and standbys, as rows of (what, value).
        var database: [(what: String, value: String)] = []
    }

    private let status: Status
    private let cached = Mutex<(figures: Figures, at: ContinuousClock.Instant)?>(nil)

    init(status: Status) { self.status = status }

    func figures() async -> Figures {
        if let cached = cached.withLock({ $0 }), ContinuousClock.now - cached.at < .seconds(5) { return cached.figures }
        let status = self.status
        let figures = await withCheckedContinuation { (continuation: CheckedContinuation<Figures, Never>) in
            Thread {
                var figures = Figures()
                do {
                    let report = try status.report()
                    figures.groups = report.groups.map { group in
                        (
                            group.group, group.partitions.reduce(0) { $0 + $1.lagMessages },
                            group.partitions.map(\.lagSeconds).max() ?? 0
                        )
                    }
                    figures.rejects = report.rejectsLast24Hours.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
                    figures.problems = report.problems.map(Self.withoutDetails)
                    figures.database = report.database.map(Self.rows) ?? []
                } catch {
                    figures.problems = ["the pipeline's status can't be read now"]
                }
                continuation.resume(returning: figures)
            }.start()
        }
        cached.withLock { $0 = (figures, ContinuousClock.now) }
        return figures
    }

    static func rows(_ db: DatabaseHealth) -> [(what: String, value: String)] {
        func age(_ seconds: Double?) -> String { seconds.map { String(format: "%.0f s ago", $0) } ?? "none recorded" }
        var rows = [
            ("server", db.inRecovery ? "standby (read-only)" : "primary"),
            ("last backup", db.lastBackupType.map { "\($0), \(age(db.backupAgeSeconds))" } ?? "none recorded"),
            ("WAL archive", db.archiving ? "\(age(db.archiveAgeSeconds)), \(db.archiveFailures) failures" : "off"),
        ]
        for standby in db.standbys {
            rows.append(
                (
                    "standby \(standby.name)",
                    "\(standby.state ?? "state unknown"), "
                        + (standby.lagSeconds.map { String(format: "%.1f s behind", $0) } ?? "lag unknown")
                ))
        }
        return rows
    }

    /// A problem without the server's error text (hosts, roles, paths): what failed, not how.
    static func withoutDetails(_ problem: String) -> String {
        if problem.hasPrefix("PostgreSQL") { return "PostgreSQL can't be read now (see bte status)" }
        if problem.hasPrefix("Kafka") { return "the broker can't be read now (see bte status)" }
        return problem
    }
}

extension APIServer {
    static let dashboardTemplate: MustacheTemplate? = try? MustacheTemplate(string: DashboardPage.template)

    func addDashboardRoutes(to router: Router<APIRequestContext>) {
        router.get("dashboard") { request, _ -> Response in
            await self.answer("dashboard") {
                guard let key = try await self.dashboardKey(request) else { return DashboardPage.signIn(status: .ok) }
                return try await self.renderDashboard(key: key)
            }
        }
        // The sign-in form posts the key; a valid admin key gets the session cookie.
        router.post("dashboard") { request, _ -> Response in
            await self.answer("dashboard") {
                try Self.checkOrigin(request)
                let body = try await self.body(request, limit: Self.signInBodyLimit)
                let form = String(decoding: body, as: UTF8.self)
                var token = ""
                for pair in form.split(separator: "&") where pair.hasPrefix("key=") {
                    token =
                        String(pair.dropFirst(4)).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
                }
                let found = try await self.key(sha256: ApiKeyHash.sha256(token.trimmingCharacters(in: .whitespaces)))
                guard let key = found, Self.dashboardScopes.contains(key.scope) else {
                    return DashboardPage.signIn(status: .unauthorized)
                }
                let cookie = self.sessions.issue(keyHash: key.sha256, now: Self.nowSeconds())
                let secure = Self.isTLS(request) ? "Secure; " : ""
                return Response(
                    status: .seeOther,
                    headers: [
                        .location: "/dashboard",
                        .setCookie:
                            "\(DashboardSessions.cookie)=\(cookie); Path=/dashboard; HttpOnly; "
                            + "\(secure)SameSite=Strict; Max-Age=\(DashboardSessions.lifetimeSeconds)",
                    ])
            }
        }
    }

    static func nowSeconds() -> Int64 { Int64(Date().timeIntervalSince1970) }

    /// A sign-in form holds one key: a few hundred bytes.
    static let signInBodyLimit = 4_096
    /// Who may open the dashboard: a workspace's admin, or an operator (who also sees the pipeline).
    static let dashboardScopes: Set<String> = ["admin", "operator"]

    /// Behind a TLS-terminating proxy (`X-Forwarded-Proto: https`, or `Forwarded: proto=https`)
    /// the session cookie is `Secure`.
    static func isTLS(_ request: Request) -> Bool {
        if request.uri.scheme == .https { return true }
        for field in request.headers {
            let name = field.name.canonicalName
            let value = field.value.lowercased()
            if name == "x-forwarded-proto",
                value.split(separator: ",").first?.trimmingCharacters(in: .whitespaces) == "https"
            {
                return true
            }
            if name == "forwarded", value.contains("proto=https") { return true }
        }
        return false
    }

    /// A sign-in posted from another site's page is refused: its `Origin` (when the browser
    /// sends one) must be this server's own.
    static func checkOrigin(_ request: Request) throws {
        guard let origin = request.headers.first(where: { $0.name.canonicalName == "origin" })?.value else { return }
        let host = request.head.authority ?? request.headers.first { $0.name.canonicalName == "host" }?.value
        let sameSite = host.map { origin == "http://\($0)" || origin == "https://\($0)" } ?? false
        guard sameSite else {
            throw APIError(.forbidden, "cross_origin", "sign in from this server's own page")
        }
    }

    /// The admin key of the bearer header or of a session cookie; nil: sign in first. A key
    /// without admin scope is refused like any other endpoint refuses it.
    func dashboardKey(_ request: Request) async throws -> StoredApiKey? {
        if request.headers[.authorization] != nil {
            return try await authorize(request, scope: "admin", or: "operator")
        }
        let cookies = request.headers[values: .cookie].flatMap { $0.split(separator: ";") }
        for cookie in cookies {
            let pair = cookie.trimmingCharacters(in: .whitespaces)
            guard pair.hasPrefix(DashboardSessions.cookie + "=") else { continue }
            let value = String(pair.dropFirst(DashboardSessions.cookie.count + 1))
            guard let hash = sessions.verify(value, now: Self.nowSeconds()) else { return nil }
            guard let key = try await self.key(sha256: hash), Self.dashboardScopes.contains(key.scope) else {
                return nil
            }
            return key
        }
        return nil
    }

    func renderDashboard(key: StoredApiKey) async throws -> Response {
        let workspace = key.workspaceID.lowercased()
        let pipelineWide = key.scope == "operator"
        let now = Self.now()
        let from = Timestamp(microseconds: now.microseconds - 30 * Self.day)
        let types = Self.insightTypes
        let data = try await readers.read { reader in
            let latest = try reader.latestSignals(workspaceID: workspace)
            var histories: [String: [String]] = [:]
            for type in Self.signalTypes {
                histories[type] =
                    try reader.signalHistory(
                        workspaceID: workspace, signalType: type, from: from, to: now, limit: Self.maxListRows
                    ).records
            }
            return DashboardData(
                ingestRate: try reader.ingestRate(seconds: 60, workspaceID: pipelineWide ? nil : workspace),
                latest: latest, histories: histories,
                insights: try reader.latestInsights(workspaceID: workspace, since: from),
                momentumCounts: try Self.momentumAsOf(latest).map {
                    try reader.momentumCounts(workspaceID: workspace, asOf: $0)
                },
                feedback: try reader.feedbackStats(since: from, workspaceID: workspace, types: types),
                newestOutput: try reader.newestOutputStoredAt(workspaceID: pipelineWide ? nil : workspace),
                deliveries: try reader.deliveryStats(since: from, workspaceID: workspace, types: types).types)
        }
        let figures = pipelineWide ? await operations.figures() : nil
        var page = data
        page.freshness = await projectorFreshness.read()
        page.freshnessConfigured = await projectorFreshness.configured
        let text = DashboardPage.render(
            workspace: workspace, data: page, figures: figures, now: now, template: Self.dashboardTemplate)
        return Response(
            status: .ok,
            headers: [
                .contentType: "text/html; charset=utf-8",
                .contentSecurityPolicy:
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'",
                .cacheControl: "no-store",
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// The as_of of the latest momentum among the latest signals.
    static func momentumAsOf(_ latest: [String]) -> Timestamp? {
        for text in latest {
            guard let record = try? JSONParser.parse(Array(text.utf8)),
                DashboardPage.field(record, "signal_type") == SignalType.momentum.rawValue
            else { continue }
            return Timestamp(rfc3339: DashboardPage.field(record, "as_of"))
        }
        return nil
    }
}

struct DashboardData: Sendable {
    var ingestRate: Double
    var latest: [String]
    var histories: [String: [String]]
    /// Each insight type's newest.
    var insights: [String]
    /// User actions of the week before the latest momentum and of the week before that.
    var momentumCounts: (recent: Int, earlier: Int)?
    var feedback: [ProjectionReader.FeedbackStats]
    var newestOutput: Timestamp?
    var freshness: ProjectorFreshness.Reading?
    var freshnessConfigured = false
    /// In-context deliveries of the same period, per insight type.
    var deliveries: [ProjectionReader.DeliveryStats] = []
}

/// The page: a Mustache template filled from plain dictionaries; every value is HTML-escaped by
/// Mustache's `{{…}}`.
enum DashboardPage {
    static func signIn(status: HTTPResponse.Status) -> Response {
        let message = status == .ok ? "" : "<p class=\"error\">That is not a live admin or operator key.</p>"
        let page = """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><title>BTE dashboard: sign in</title>
            <link rel="icon" href="data:,"></head><body><h1>BTE dashboard</h1>\(message)
            <form method="post" action="/dashboard"><label>Admin or operator API key <input type="password" name="key" \
            autocomplete="off"></label> <button type="submit">Sign in</button></form></body></html>
            """
        return Response(
            status: status == .ok ? .unauthorized : status,
            headers: [
                .contentType: "text/html; charset=utf-8",
                .contentSecurityPolicy:
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'",
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(string: page)))
    }

    /// The number text of a record's field, as published.
    static func field(_ record: JSONValue, _ name: String) -> String {
        switch record[name] {
        case .string(let text)?: return text
        case .number(let text)?: return text
        default: return ""
        }
    }

    /// An SVG polyline of `values` in a 120×24 box (oldest left); a single value is a flat line.
    static func sparkline(_ values: [Double]) -> String {
        guard let low = values.min(), let high = values.max(), !values.isEmpty else { return "" }
        let span = high - low
        let step = values.count > 1 ? 120.0 / Double(values.count - 1) : 0
        return values.enumerated().map { index, value in
            let x = Double(index) * step
            let y = span == 0 ? 12 : 22 - (value - low) / span * 20
            return String(format: "%.1f,%.1f", x, y)
        }.joined(separator: " ")
    }

    static func render(
        workspace: String, data: DashboardData, figures pipeline: OperationsSnapshot.Figures?, now: Timestamp,
        template: MustacheTemplate?
    ) -> String {
        let latest = data.latest.compactMap { try? JSONParser.parse(Array($0.utf8)) }
        let signals: [[String: Any]] = latest.map { record in
            let type = field(record, "signal_type")
            let history = (data.histories[type] ?? []).compactMap { try? JSONParser.parse(Array($0.utf8)) }
            let values = history.compactMap { Double(field($0, "signal_value")) }
            let value = field(record, "signal_value")
            return [
                "type": type, "value": value, "label": field(record, "label"),
                "shown": SignalDisplay.text(
                    type: type, value: value, label: field(record, "label"),
                    counts: type == SignalType.momentum.rawValue ? data.momentumCounts : nil),
                "as_of": field(record, "as_of"), "points": sparkline(values), "count": values.count,
            ]
        }
        let insights: [[String: Any]] = data.insights.compactMap { text in
            guard let record = try? JSONParser.parse(Array(text.utf8)) else { return nil }
            return [
                "id": field(record, "id"), "type": field(record, "insight_type"),
                "priority": field(record, "priority"), "message": field(record, "message"),
                "as_of": field(record, "as_of"),
            ]
        }
        func percent(_ rate: Double?) -> String { rate.map { String(format: "%.1f%%", $0 * 100) } ?? "–" }
        let feedback: [[String: Any]] = data.feedback.map { stats in
            [
                "type": stats.insightType, "delivered": stats.delivered, "acted": stats.acted,
                "useful": stats.useful, "not_useful": stats.notUseful,
                "positive_rate": percent(stats.positiveFeedbackRate), "action_rate": percent(stats.actionRate),
            ]
        }
        func ratio(_ a: Int, _ b: Int) -> String { b == 0 ? "–" : percent(Double(a) / Double(b)) }
        let deliveries: [[String: Any]] = data.deliveries.map { stats in
            [
                "type": stats.insightType, "delivered": stats.delivered, "suppressed": stats.suppressed,
                "impression_rate": ratio(stats.impressions, stats.delivered),
                "click_rate": ratio(stats.clicks, stats.impressions),
                "action_rate": ratio(stats.acted, stats.delivered),
                "dismiss_rate": ratio(stats.dismissed, stats.impressions),
            ]
        }
        let freshness = SignalDisplay.freshness(data.freshness, configured: data.freshnessConfigured)
        let stored = data.newestOutput.map {
            String(format: "%.1f", Double(now.microseconds - $0.microseconds) / 1e6)
        }
        let figures = pipeline ?? OperationsSnapshot.Figures()
        let context: [String: Any] = [
            "workspace": workspace, "now": now.rfc3339, "pipeline": pipeline != nil,
            "rate_scope": pipeline != nil ? "all workspaces" : "this workspace",
            "ingest_rate": String(format: "%.1f", data.ingestRate),
            "groups": figures.groups.map {
                [
                    "group": $0.group, "lag_messages": $0.lagMessages,
                    "lag_seconds": String(format: "%.1f", $0.lagSeconds),
                ]
                    as [String: Any]
            },
            "rejects": figures.rejects.map { ["code": $0.code, "count": $0.count] as [String: Any] },
            "no_rejects": figures.rejects.isEmpty,
            "problems": figures.problems.map { ["text": $0] },
            "database": figures.database.map { ["what": $0.what, "value": $0.value] },
            "freshness": freshness, "newest_output": stored ?? "–",
            "signals": signals, "no_signals": signals.isEmpty,
            "insights": insights, "no_insights": insights.isEmpty,
            "feedback": feedback, "deliveries": deliveries,
        ]
        return template?.render(context) ?? "<!doctype html><title>BTE</title><p>template unavailable</p>"
    }

    static let template = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>BTE dashboard</title>
        <meta http-equiv="refresh" content="30"><link rel="icon" href="data:,">
        <style>
        body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
        table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{padding:.25em .75em;border-bottom:1px solid #ddd;\
        text-align:left}
        td.num{text-align:right;font-variant-numeric:tabular-nums}svg.sparkline polyline{fill:none;stroke:#2a6fdb;\
        stroke-width:1.5}
        .problem{color:#b00}
        </style></head>
        <body>
        <h1>BTE dashboard</h1>
        <p>Workspace <code id="workspace">{{workspace}}</code> · rendered {{now}}</p>
        {{#problems}}<p class="problem">{{text}}</p>{{/problems}}
        <h2>Pipeline</h2>
        <table id="pipeline"><tr><th>ingest rate of {{rate_scope}} (events/s, last 60 s)</th>\
        <td class="num" id="ingest-rate">{{ingest_rate}}</td></tr>
        <tr><th>freshness: event produced → outputs published (the projectors' p99)</th>\
        <td class="num" id="freshness">{{freshness}}</td></tr>
        <tr><th>newest output of {{rate_scope}} stored (s ago)</th>\
        <td class="num" id="newest-output">{{newest_output}}</td></tr></table>
        {{^pipeline}\
        }<p id="pipeline-note">Lag, rejects and the pipeline's problems are shown to operator keys.</p>{{/pipeline}}
        {{#pipeline}}
        <h3>Lag per consumer group</h3>
        <table id="lag"><tr><th>group</th><th>messages</th><th>seconds</th></tr>
        {{#groups}}<tr data-group="{{group}}"><td>{{group}}</td><td class="num lag-messages">{{lag_messages}}</td>\
        <td class="num lag-seconds">{{lag_seconds}}</td></tr>{{/groups}}
        </table>
        <h3>Rejects by code (24 h)</h3>
        <table id="rejects"><tr><th>code</th><th>count</th></tr>
        {{#rejects}}<tr data-code="{{code}}"><td>{{code}}</td><td class="num reject-count">{{count}}</td>\
        </tr>{{/rejects}}
        {{#no_rejects}}<tr><td colspan="2">none</td></tr>{{/no_rejects}}
        </table>
        <h3>Database: backups and replication</h3>
        <table id="database">{{#database}}<tr><th>{{what}}</th><td>{{value}}</td></tr>{{/database}}</table>
        {{/pipeline}}
        <h2>Signals</h2>
        <table id="signals"><tr><th>signal</th><th>value</th><th>as of</th><th>last 30 days</th></tr>
        {{#signals}}<tr data-signal="{{type}}"><td>{{type}}</td>\
        <td class="num signal-value" data-value="{{value}}">{{shown}}</td><td>{{as_of}}</td>
        <td>\
        <svg class="sparkline" data-count="{{count}}" width="120" height="24" viewBox="0 0 120 24" \
        role="img" aria-label="{{type}} over 30 days"><polyline points="{{points}}"/></svg></td></tr>{{/signals}}
        {{#no_signals}}<tr><td colspan="4">no signal stored yet</td></tr>{{/no_signals}}
        </table>
        <h2>Insights (the newest of each type, 30 days)</h2>
        <table id="insights"><tr><th>type</th><th>priority</th><th>message</th><th>as of</th></tr>
        {{#insights}}<tr data-insight="{{id}}"><td>{{type}}</td><td>{{priority}}</td><td>{{message}}</td>\
        <td>{{as_of}}</td></tr>{{/insights}}
        {{#no_insights}}<tr><td colspan="4">no insight in the last 30 days</td></tr>{{/no_insights}}
        </table>
        <h3>Feedback (insights of the last 30 days)</h3>
        <table id="feedback"><tr><th>type</th><th>delivered</th><th>acted</th><th>useful</th><th>not useful</th>\
        <th>positive feedback</th><th>action rate</th></tr>
        {{#feedback}}<tr data-type="{{type}}"><td>{{type}}</td><td class="num">{{delivered}}</td>\
        <td class="num">{{acted}}</td><td class="num">{{useful}}</td><td class="num">{{not_useful}}</td>\
        <td class="num positive-rate">{{positive_rate}}</td><td class="num action-rate">{{action_rate}}</td>\
        </tr>{{/feedback}}
        </table>
        <h3>Insights delivered in context (last 30 days)</h3>
        <table id="deliveries"><tr><th>type</th><th>delivered</th><th>suppressed</th><th>seen</th><th>clicked</th>\
        <th>acted</th><th>dismissed</th></tr>
        {{#deliveries}}<tr data-type="{{type}}"><td>{{type}}</td><td class="num">{{delivered}}</td>\
        <td class="num">{{suppressed}}</td><td class="num impression-rate">{{impression_rate}}</td>\
        <td class="num click-rate">{{click_rate}}</td><td class="num">{{action_rate}}</td>\
        <td class="num dismiss-rate">{{dismiss_rate}}</td></tr>{{/deliveries}}
        </table>
        </body></html>
        """
}

/// Signal values as a person reads them: each in its unit (docs/signals.md gives the formulas).
enum SignalDisplay {
    static func text(type: String, value: String, label: String, counts: (recent: Int, earlier: Int)?) -> String {
        guard let number = Double(value), number.isFinite else { return value }
        switch SignalType(rawValue: type) {
        case .decisionLatency, .executionConsistency: return String(format: "%.1f h", number / 3_600)
        case .idleDecay: return String(format: "%.1f days", number)
        case .momentum:
            let ratio = String(format: "%.2f×", number)
            // The counts of the logs, shown when they give the published ratio.
            guard let counts, counts.earlier > 0, Double(counts.recent) / Double(counts.earlier) == number else {
                return ratio
            }
            return "\(ratio) (\(counts.recent) actions in the last 7 days, \(counts.earlier) the 7 days before)"
        case .nbaAdoptionRate, .followThroughRate: return String(format: "%.1f%%", number * 100)
        case .dropOffPoint: return label.isEmpty ? value : "\(value) abandoned at \(label)"
        case .hesitationIndex: return String(format: "%.2f× the expected page views", number)
        case .missedOpportunityCount: return "\(value) missed"
        case .executionGap: return String(format: "%.2f", number)
        case nil: return value
        }
    }

    static func freshness(_ reading: ProjectorFreshness.Reading?, configured: Bool) -> String {
        guard configured else { return "– (bte serve --projector-metrics-url)" }
        guard let reading, reading.answered > 0 else { return "– (no projector answered)" }
        let period = reading.window.map { String(format: "in the last %.0f s", $0) } ?? "since the projectors started"
        let answered = "\(reading.answered) of \(reading.asked) projector\(reading.asked == 1 ? "" : "s")"
        guard let p99 = reading.p99 else { return "no output published \(period) (\(answered))" }
        return String(format: "p99 %.2f s", p99) + " (\(reading.published) events \(period); \(answered))"
    }
}

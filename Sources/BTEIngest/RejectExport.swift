import BTEDomain
import BTEStore
import Foundation

/// `bte rejects export`: one NDJSON line per reject, to fix in bulk (with jq, say) and give back
/// to `bte rejects redrive --fixed`. A payload that is a JSON object is the line's `record`, in
/// canonical form (one line, keys sorted); any other payload is `payload_base64`, for a person
/// to turn into a record.
public enum RejectExport {
    /// The reject's line; nil when its payload was not kept (personal data, intent telemetry, a
    /// tombstone): there is nothing to fix.
    public static func line(_ reject: StoredReject) -> String? {
        guard reject.payloadKept, let payload = reject.payload else { return nil }
        if let value = try? JSONParser.parse(payload), case .object = value {
            return "{\"reject_id\":\(reject.id),\"record\":\(value.canonicalString())}"
        }
        return "{\"reject_id\":\(reject.id),\"payload_base64\":\"\(Data(payload).base64EncodedString())\"}"
    }
}

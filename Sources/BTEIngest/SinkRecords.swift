import BTEDomain
import BTEStore
import Kafka

/// Reads an output topic's record into the row the sink stores. The projectors write these
/// records, but anything can be produced to a topic: a record that isn't one is refused with a
/// reject code (and dead-lettered) instead of stopping the sink.
public enum SinkRecords {
    public enum Row: Sendable, Equatable {
        case signal(SinkSignal)
        case vector(SinkVector)
        case insight(SinkInsight)
        case delivery(SinkDelivery)
    }

    public static func row(topic: OutputTopic, value: [UInt8]?) -> Result<Row, Rejection> {
        guard let value, !value.isEmpty else { return .failure(Rejection(.tombstone, "the record has no value")) }
        guard let text = String(validating: value, as: UTF8.self) else {
            return .failure(Rejection(.invalidUTF8, "the record is not UTF-8"))
        }
        let parsed: JSONValue
        do { parsed = try JSONParser.parse(value) } catch {
            return .failure(Rejection(.invalidJSON, "the record is not JSON: \(error)"))
        }
        guard case .object = parsed else { return .failure(Rejection(.notAnObject, "the record is not an object")) }
        do {
            let fields = Fields(parsed)
            let id = try fields.uuid("id")
            // A delivery is a decision at a time, not a value as of one.
            let asOf = try fields.timestamp(topic == .insightDeliveries ? "decided_at" : "as_of")
            let version = try fields.integer("thresholds_version")
            switch topic {
            case .signals:
                guard case .number(let number)? = parsed["signal_value"] else {
                    throw Rejection(.missingField, "signal_value is missing or not a number")
                }
                // A number beyond a double's range reads as infinity, which the table can't hold.
                guard let double = Double(number), double.isFinite else {
                    throw Rejection(.invalidValue, "signal_value is not a finite double")
                }
                return .success(
                    .signal(
                        SinkSignal(
                            id: id, workspaceID: try fields.uuid("entity_id"),
                            signalType: try fields.text("signal_type"), value: number,
                            label: try fields.optionalText("label"), asOf: asOf, thresholdsVersion: version,
                            record: text)))
            case .behavioralVectors:
                return .success(
                    .vector(
                        SinkVector(
                            id: id,
                            user: UserKey(
                                workspaceID: try fields.uuid("workspace_id"), userID: try fields.text("user_id")),
                            asOf: asOf, thresholdsVersion: version, record: text)))
            case .insights:
                return .success(
                    .insight(
                        SinkInsight(
                            id: id, workspaceID: try fields.uuid("workspace_id"),
                            insightType: try fields.text("insight_type"), priority: try fields.text("priority"),
                            asOf: asOf, thresholdsVersion: version, record: text)))
            case .insightDeliveries:
                return .success(
                    .delivery(
                        SinkDelivery(
                            id: id,
                            user: UserKey(
                                workspaceID: try fields.uuid("workspace_id"), userID: try fields.text("user_id")),
                            insightType: try fields.text("insight_type"), outcome: try fields.text("outcome"),
                            decidedAt: asOf, thresholdsVersion: version, record: text)))
            case .deadLetter:
                throw Rejection(.unknownRecordType, "\(topic.rawValue) is not sunk")
            }
        } catch let rejection as Rejection {
            return .failure(rejection)
        } catch {
            return .failure(Rejection(.invalidValue, "\(error)"))
        }
    }

    private struct Fields {
        let value: JSONValue
        init(_ value: JSONValue) { self.value = value }

        func text(_ name: String) throws -> String {
            guard case .string(let text)? = value[name], !text.isEmpty else {
                throw Rejection(.missingField, "\(name) is missing or not a non-empty string")
            }
            return try storable(name, text)
        }

        func optionalText(_ name: String) throws -> String? {
            switch value[name] {
            case nil, .null?: return nil
            case .string(let text)?: return try storable(name, text)
            default: throw Rejection(.wrongType, "\(name) is not a string")
            }
        }

        /// PostgreSQL text can't hold NUL (a `\u0000` escape decodes to one).
        private func storable(_ name: String, _ text: String) throws -> String {
            guard !text.utf8.contains(0) else { throw Rejection(.nulByte, "\(name) holds a NUL character") }
            return text
        }

        func uuid(_ name: String) throws -> String {
            guard let uuid = canonicalUUID(try text(name)) else {
                throw Rejection(.invalidUUID, "\(name) is not a UUID")
            }
            return uuid
        }

        func timestamp(_ name: String) throws -> Timestamp {
            guard let timestamp = Timestamp(rfc3339: try text(name)) else {
                throw Rejection(.invalidTimestamp, "\(name) is not an RFC 3339 timestamp")
            }
            guard Timestamp.acceptedRange.contains(timestamp) else {
                throw Rejection(.timestampOutOfRange, "\(name) is outside 1970-01-01..2100-01-01")
            }
            return timestamp
        }

        func integer(_ name: String) throws -> Int {
            guard case .number(let number)? = value[name], let integer = Int32(number), integer >= 0 else {
                throw Rejection(.invalidValue, "\(name) is missing or not an integer in 0...\(Int32.max)")
            }
            return Int(integer)
        }
    }
}

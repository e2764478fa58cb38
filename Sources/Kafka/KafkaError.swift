import CRdKafka

/// An error from the Kafka client, with a stable code, librdkafka's own error code when there
/// is one, and where it happened.
public struct KafkaError: Error, CustomStringConvertible, Sendable {
    /// What failed, as a stable machine-readable name.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String { name }
        public static let configuration = Code(name: "kafka_configuration")
        public static let clientCreation = Code(name: "kafka_client_creation")
        public static let produce = Code(name: "kafka_produce")
        public static let delivery = Code(name: "kafka_delivery")
        public static let consume = Code(name: "kafka_consume")
        public static let subscription = Code(name: "kafka_subscription")
        public static let assignment = Code(name: "kafka_assignment")
        public static let offsets = Code(name: "kafka_offsets")
        public static let admin = Code(name: "kafka_admin")
        public static let metadata = Code(name: "kafka_metadata")
        public static let timedOut = Code(name: "kafka_timed_out")
        public static let fatal = Code(name: "kafka_fatal")
    }

    public let code: Code
    /// librdkafka's `rd_kafka_resp_err_t`, when the failure came with one.
    public let rdKafkaError: Int32?
    public let message: String
    public let location: String

    public init(_ code: Code, _ message: String, rdKafkaError: Int32? = nil, file: String = #fileID, line: Int = #line)
    {
        self.code = code
        self.message = message
        self.rdKafkaError = rdKafkaError
        self.location = "\(file):\(line)"
    }

    init(_ code: Code, _ err: rd_kafka_resp_err_t, context: String, file: String = #fileID, line: Int = #line) {
        self.init(code, "\(context): \(KafkaError.describe(err))", rdKafkaError: err.rawValue, file: file, line: line)
    }

    /// True when retrying later may succeed (broker unreachable, timeouts, leader changes);
    /// false for mistakes that retrying can't fix (bad configuration, unknown topic config).
    public var isRetriable: Bool {
        switch code {
        case .configuration, .clientCreation, .fatal: return false
        case .timedOut, .delivery: return true
        default:
            guard let raw = rdKafkaError else { return true }
            let err = rd_kafka_resp_err_t(rawValue: raw)
            if err == RD_KAFKA_RESP_ERR__INVALID_ARG || err == RD_KAFKA_RESP_ERR_INVALID_CONFIG
                || err == RD_KAFKA_RESP_ERR__FATAL || err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE
                || err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED
            {
                return false
            }
            return true
        }
    }

    public var description: String { "\(code): \(message)" }

    static func describe(_ err: rd_kafka_resp_err_t) -> String {
        guard let text = rd_kafka_err2str(err) else { return "error \(err.rawValue)" }
        return String(cString: text)
    }
}

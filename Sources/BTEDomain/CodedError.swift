/// An error with a stable code (its raw value is what scripts match and users see) and a
/// message for people; shown as one line, `code: message`.
public protocol CodedError: Error, CustomStringConvertible, Sendable {
    associatedtype Code: RawRepresentable & Sendable where Code.RawValue == String
    var code: Code { get }
    var message: String { get }
}

extension CodedError {
    public var description: String { "\(code.rawValue): \(message)" }
}

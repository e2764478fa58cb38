import Foundation
import Yams

/// `openapi.yaml` (this module's resource, the API's contract) as the JSON served at
/// `/openapi.json`.
public enum OpenAPISpec {
    public static func yaml() throws -> String {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml") else {
            throw APIError(.internalServerError, "spec_missing", "openapi.yaml is not in the bundle")
        }
        return try String(contentsOf: url, encoding: .utf8)
    }

    public static func json() throws -> [UInt8] {
        let object = try Yams.load(yaml: try yaml()) ?? [:]
        return Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }
}

import BTEDomain
import Crypto

/// Name-based UUIDs (RFC 4122 version 5): the same name always gives the same id, so a replay
/// republishes records under the ids it used before.
public enum UUIDv5 {
    /// The namespace of every BTE output id.
    public static let bteNamespace: [UInt8] = parse("5b0b9d3e-6a4c-4f6e-9d1a-3c2e8f7a1b60")
    public static let dnsNamespace: [UInt8] = parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8")

    public static func make(namespace: [UInt8] = bteNamespace, name: String) -> String {
        // SHA-1 because RFC 4122 defines version 5 with it; ids, not security.
        var hasher = Insecure.SHA1()
        hasher.update(data: namespace)
        hasher.update(data: Array(name.utf8))
        var digest = Array(hasher.finalize())
        digest[6] = (digest[6] & 0x0F) | 0x50
        digest[8] = (digest[8] & 0x3F) | 0x80
        var out: [UInt8] = []
        out.reserveCapacity(36)
        for (index, byte) in digest.prefix(16).enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { out.append(UInt8(ascii: "-")) }
            appendHex(CollectionOfOne(byte), to: &out)
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func parse(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var high: UInt8?
        for char in text.utf8 where char != UInt8(ascii: "-") {
            let nibble: UInt8 = char <= 57 ? char - 48 : (char | 0x20) - 87
            if let h = high {
                bytes.append(h << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return bytes
    }
}

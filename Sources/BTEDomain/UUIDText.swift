/// Checks that `text` is a UUID in its 8-4-4-4-12 hex form and returns it lowercased.
public func canonicalUUID(_ text: String) -> String? {
    let bytes = Array(text.utf8)
    guard bytes.count == 36 else { return nil }
    var out = [UInt8]()
    out.reserveCapacity(36)
    for (index, byte) in bytes.enumerated() {
        if index == 8 || index == 13 || index == 18 || index == 23 {
            guard byte == UInt8(ascii: "-") else { return nil }
            out.append(byte)
            continue
        }
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"): out.append(byte)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): out.append(byte + 32)
        default: return nil
        }
    }
    return String(decoding: out, as: UTF8.self)
}

/// 64-bit FNV-1a: a cheap, stable fingerprint of a record's canonical bytes, used to tell a
/// re-delivered event from a different event that reuses the same id.
public func fingerprint(_ bytes: [UInt8]) -> Int64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01B3
    }
    return Int64(bitPattern: hash)
}

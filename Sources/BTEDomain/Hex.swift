private let hexDigits = Array("0123456789abcdef".utf8)

/// Appends each byte as two lowercase hex digits.
public func appendHex<Bytes: Sequence>(_ bytes: Bytes, to out: inout [UInt8]) where Bytes.Element == UInt8 {
    for byte in bytes {
        out.append(hexDigits[Int(byte >> 4)])
        out.append(hexDigits[Int(byte & 0x0F)])
    }
}

/// The bytes as lowercase hex digits.
public func hexString<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    var out: [UInt8] = []
    out.reserveCapacity(bytes.underestimatedCount * 2)
    appendHex(bytes, to: &out)
    return String(decoding: out, as: UTF8.self)
}

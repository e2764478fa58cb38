/// A nibble (0…15) as a lowercase hex digit.
@inlinable
func hexDigit(_ nibble: UInt8) -> UInt8 {
    nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
}

/// Appends each byte as two lowercase hex digits. Inlinable: ids are written on every output
/// record, and a generic call across modules would go through witness tables per byte.
@inlinable
public func appendHex<Bytes: Sequence>(_ bytes: Bytes, to out: inout [UInt8]) where Bytes.Element == UInt8 {
    for byte in bytes {
        out.append(hexDigit(byte >> 4))
        out.append(hexDigit(byte & 0x0F))
    }
}

/// The bytes as lowercase hex digits.
@inlinable
public func hexString<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    var out: [UInt8] = []
    out.reserveCapacity(bytes.underestimatedCount * 2)
    appendHex(bytes, to: &out)
    return String(decoding: out, as: UTF8.self)
}

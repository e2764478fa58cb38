/// Builds PostgreSQL `COPY … FROM STDIN` text-format data.
struct CopyEncoder {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    private var atLineStart = true

    mutating func field(_ value: String?) {
        if !atLineStart { bytes.append(0x09) }
        atLineStart = false
        guard let value else {
            bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "N")])
            return
        }
        var text = value
        text.withUTF8 { utf8 in
            // Most values need no escaping: copy them in one go.
            if !utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
                bytes.append(contentsOf: utf8)
                return
            }
            for byte in utf8 { escape(byte) }
        }
    }

    /// A bytea field in hex form (`\\x` and two digits a byte), written straight: nothing in it
    /// needs escaping but its leading backslash.
    mutating func hexField(_ value: [UInt8]?) {
        if !atLineStart { bytes.append(0x09) }
        atLineStart = false
        guard let value else {
            bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "N")])
            return
        }
        bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\"), UInt8(ascii: "x")])
        // Written in place: a sealed field is hundreds of bytes in every row of a batch.
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: value.count * 2))
        bytes.withUnsafeMutableBufferPointer { out in
            var index = start
            for byte in value {
                let high = byte >> 4
                let low = byte & 0x0F
                out[index] = high < 10 ? 0x30 + high : 0x57 + high
                out[index + 1] = low < 10 ? 0x30 + low : 0x57 + low
                index += 2
            }
        }
    }

    private mutating func escape(_ byte: UInt8) {
        switch byte {
        case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
        case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
        case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
        case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
        default: bytes.append(byte)
        }
    }

    mutating func endRow() {
        bytes.append(0x0A)
        atLineStart = true
    }
}

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

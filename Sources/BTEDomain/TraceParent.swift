/// A W3C Trace Context `traceparent` value: `version-traceid-parentid-flags` in lowercase hex
/// (`00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`). Read from a producer's Kafka
/// header or an API request, carried to the records an event causes as a child: the same trace,
/// a new parent id, the same flags.
public struct TraceParent: Sendable, Hashable {
    /// 16 bytes, not all zero.
    public let traceID: [UInt8]
    /// 8 bytes, not all zero: the span that caused this record.
    public let parentID: [UInt8]
    public let flags: UInt8

    public static let headerName = "traceparent"

    /// Nil unless the parts are a valid trace context.
    public init?(traceID: [UInt8], parentID: [UInt8], flags: UInt8) {
        guard traceID.count == 16, parentID.count == 8, traceID.contains(where: { $0 != 0 }),
            parentID.contains(where: { $0 != 0 })
        else { return nil }
        self.traceID = traceID
        self.parentID = parentID
        self.flags = flags
    }

    /// Reads a header as the specification says: version 00 is exactly 55 characters; a later
    /// version (not ff) may be longer, with a `-` after the first 55, and is read as version 00.
    /// Anything else, and all-zero ids, are no trace context (nil), never an error.
    public init?(_ bytes: [UInt8]) {
        guard bytes.count >= 55, bytes[2] == 0x2D, bytes[35] == 0x2D, bytes[52] == 0x2D,
            let version = Self.hex(bytes[0..<2]).first, version != 0xFF
        else { return nil }
        if version == 0 {
            guard bytes.count == 55 else { return nil }
        } else if bytes.count > 55 {
            guard bytes[55] == 0x2D else { return nil }
        }
        let trace = Self.hex(bytes[3..<35])
        let parent = Self.hex(bytes[36..<52])
        guard trace.count == 16, parent.count == 8, let flags = Self.hex(bytes[53..<55]).first else { return nil }
        self.init(traceID: trace, parentID: parent, flags: flags)
    }

    /// Bytes of lowercase hex pairs; fewer bytes than pairs when a character is not one.
    private static func hex(_ text: ArraySlice<UInt8>) -> [UInt8] {
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(text.count / 2)
        var index = text.startIndex
        while index + 1 < text.endIndex {
            guard let high = nibble(text[index]), let low = nibble(text[index + 1]) else { return out }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    /// The header's value, version 00.
    public var header: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = Array("00-".utf8)
        for byte in traceID { out += [digits[Int(byte >> 4)], digits[Int(byte & 15)]] }
        out.append(0x2D)
        for byte in parentID { out += [digits[Int(byte >> 4)], digits[Int(byte & 15)]] }
        out += [0x2D, digits[Int(flags >> 4)], digits[Int(flags & 15)]]
        return String(decoding: out, as: UTF8.self)
    }

    /// The context of a record this one causes: same trace and flags, `parentID` the new span's.
    /// Nil when `parentID` is not 8 bytes or all zero.
    public func child(parentID: [UInt8]) -> TraceParent? {
        TraceParent(traceID: traceID, parentID: parentID, flags: flags)
    }
}

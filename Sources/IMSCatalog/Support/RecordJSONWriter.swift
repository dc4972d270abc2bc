import Foundation

/// A small, allocation-light JSON writer for records.
///
/// It writes exactly what `JSONEncoder` writes with `[.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]`
/// (two-space indentation, `"key" : value`, empty containers as `{\n\n}`), or the compact form. Records emit
/// their keys already sorted. Listing 100k records through `JSONEncoder` costs about a second; this writer
/// keeps `ims images list --json` within its budget (see docs/performance.md).
public struct RecordJSONWriter: Sendable {
    /// The UTF-8 output so far.
    public private(set) var bytes: [UInt8] = []
    private let pretty: Bool
    private var depth = 0
    /// For each open container: whether anything was written in it yet.
    private var hasElements: [Bool] = []
    private var afterKey = false

    /// Creates a writer.
    ///
    /// - Parameter pretty: two-space indented output like `JSONEncoder`'s `.prettyPrinted`, else compact.
    public init(pretty: Bool = true) {
        self.pretty = pretty
    }

    /// Reserves space for about `count` bytes.
    public mutating func reserve(_ count: Int) {
        bytes.reserveCapacity(count)
    }

    /// A newline followed by 64 spaces; `newline()` appends a prefix of it.
    private static let indentation: [UInt8] = [0x0A] + [UInt8](repeating: 0x20, count: 64)

    private mutating func newline() {
        guard pretty else { return }
        let width = depth * 2
        if width < Self.indentation.count {
            Self.indentation.withUnsafeBufferPointer { bytes.append(contentsOf: $0[0...width]) }
        } else {
            bytes.append(0x0A)
            bytes.append(contentsOf: repeatElement(0x20, count: width))
        }
    }

    private mutating func beforeValue() {
        if afterKey {
            afterKey = false
            return
        }
        guard let last = hasElements.last else { return }
        if last { bytes.append(UInt8(ascii: ",")) }
        hasElements[hasElements.count - 1] = true
        newline()
    }

    /// Opens an object (`{`).
    public mutating func beginObject() {
        beforeValue()
        bytes.append(UInt8(ascii: "{"))
        depth += 1
        hasElements.append(false)
    }

    /// Closes the innermost object.
    public mutating func endObject() {
        close(UInt8(ascii: "}"))
    }

    /// Opens an array (`[`).
    public mutating func beginArray() {
        beforeValue()
        bytes.append(UInt8(ascii: "["))
        depth += 1
        hasElements.append(false)
    }

    /// Closes the innermost array.
    public mutating func endArray() {
        close(UInt8(ascii: "]"))
    }

    private mutating func close(_ byte: UInt8) {
        let hadElements = hasElements.removeLast()
        depth -= 1
        if pretty {
            if !hadElements { bytes.append(0x0A) }
            newline()
        }
        bytes.append(byte)
    }

    /// Writes an object key; the next call writes its value.
    public mutating func key(_ key: String) {
        beforeValue()
        appendString(key)
        if pretty {
            bytes.append(contentsOf: [0x20, UInt8(ascii: ":"), 0x20])
        } else {
            bytes.append(UInt8(ascii: ":"))
        }
        afterKey = true
    }

    /// Writes a string value.
    public mutating func string(_ value: String) {
        beforeValue()
        appendString(value)
    }

    /// Writes a string value, or `null`.
    public mutating func string(_ value: String?) {
        if let value { string(value) } else { null() }
    }

    /// Writes an integer value.
    public mutating func int<I: BinaryInteger>(_ value: I) {
        beforeValue()
        bytes.append(contentsOf: String(value).utf8)
    }

    /// Writes an integer value, or `null`.
    public mutating func int<I: BinaryInteger>(_ value: I?) {
        if let value { int(value) } else { null() }
    }

    /// Writes `true` or `false`.
    public mutating func bool(_ value: Bool) {
        beforeValue()
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    /// Writes `null`.
    public mutating func null() {
        beforeValue()
        bytes.append(contentsOf: "null".utf8)
    }

    /// Writes a timestamp as a string (see ``IMSTimestamp``).
    public mutating func timestamp(_ date: Date) {
        timestamp(microseconds: IMSTimestamp.microseconds(date))
    }

    /// Writes a timestamp given as microseconds since the epoch.
    public mutating func timestamp(microseconds: Int64) {
        beforeValue()
        bytes.append(UInt8(ascii: "\""))
        IMSTimestamp.append(microseconds: microseconds, to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    /// Writes UTF-8 bytes as a JSON string.
    public mutating func string(utf8: UnsafeBufferPointer<UInt8>) {
        beforeValue()
        appendString(utf8)
    }

    /// Writes a lowercase UUID string.
    public mutating func uuid(_ value: UUID) {
        beforeValue()
        bytes.append(UInt8(ascii: "\""))
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        withUnsafeBytes(of: value.uuid) { raw in
            for (index, byte) in raw.enumerated() {
                if index == 4 || index == 6 || index == 8 || index == 10 { bytes.append(UInt8(ascii: "-")) }
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0x0F)])
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// Writes a UUID, or `null`.
    public mutating func uuid(_ value: UUID?) {
        if let value { uuid(value) } else { null() }
    }

    /// Writes a `[String: String]` object with keys in byte order (as `.sortedKeys` does).
    public mutating func stringMap(_ map: [String: String]) {
        beginObject()
        for key in map.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            self.key(key)
            string(map[key] ?? "")
        }
        endObject()
    }

    /// Writes something that knows how to write itself.
    public mutating func value(_ value: some RecordJSONWritable) {
        value.writeJSON(to: &self)
    }

    private mutating func appendString(_ value: String) {
        var value = value
        value.withUTF8 { appendString($0) }
    }

    private mutating func appendString(_ utf8: UnsafeBufferPointer<UInt8>) {
        bytes.append(UInt8(ascii: "\""))
        var needsEscaping = false
        for byte in utf8 where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
            needsEscaping = true
            break
        }
        if !needsEscaping {
            bytes.append(contentsOf: utf8)
        } else {
            let hex: [UInt8] = Array("0123456789abcdef".utf8)
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5C, byte])
                case UInt8(ascii: "\\"): bytes.append(contentsOf: [0x5C, 0x5C])
                case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
                case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
                case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
                case 0x08: bytes.append(contentsOf: [0x5C, UInt8(ascii: "b")])
                case 0x0C: bytes.append(contentsOf: [0x5C, UInt8(ascii: "f")])
                case 0..<0x20:
                    bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]])
                default: bytes.append(byte)
                }
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

/// A value that writes itself with ``RecordJSONWriter`` (the records, links and their parts).
public protocol RecordJSONWritable {
    /// Writes the value, keys sorted, exactly as its `Encodable` conformance would.
    func writeJSON(to writer: inout RecordJSONWriter)
}

extension RecordJSONWriter {
    /// Encodes values as a JSON array followed by a newline.
    ///
    /// - Parameters:
    ///   - values: the records to write.
    ///   - pretty: indented output (the default) or compact.
    /// - Returns: UTF-8 JSON.
    public static func array<T: RecordJSONWritable>(_ values: [T], pretty: Bool = true) -> [UInt8] {
        var writer = RecordJSONWriter(pretty: pretty)
        writer.reserve(values.count * 400 + 16)
        writer.beginArray()
        for value in values { value.writeJSON(to: &writer) }
        writer.endArray()
        writer.bytes.append(0x0A)
        return writer.bytes
    }

    /// Encodes one value followed by a newline.
    public static func object<T: RecordJSONWritable>(_ value: T, pretty: Bool = true) -> [UInt8] {
        var writer = RecordJSONWriter(pretty: pretty)
        value.writeJSON(to: &writer)
        writer.bytes.append(0x0A)
        return writer.bytes
    }
}

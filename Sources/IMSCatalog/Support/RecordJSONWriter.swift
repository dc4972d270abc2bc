import Foundation

/// A small, fast JSON writer for records.
///
/// It writes exactly what `JSONEncoder` writes with `[.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]`
/// (two-space indentation, `"key" : value`, empty containers as `{\n\n}`), or the compact form. Records emit
/// their keys already sorted. Listing 100k records through `JSONEncoder` costs about a second; this writer
/// (bytes appended straight into one growing buffer) keeps `ims images list --json` within its budget (see
/// docs/performance.md).
///
/// The writer owns its buffer, so it cannot be copied; pass it `inout`.
public struct RecordJSONWriter: ~Copyable {
    private var storage: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private var count = 0
    private let pretty: Bool
    private var depth = 0
    /// Bit `d` set: the container open at depth `d + 1` has an element already. Records nest a few levels;
    /// the writer supports 63.
    private var hasElements: UInt64 = 0
    private var afterKey = false

    /// Creates a writer.
    ///
    /// - Parameters:
    ///   - pretty: two-space indented output like `JSONEncoder`'s `.prettyPrinted`, else compact.
    ///   - capacity: the initial buffer size in bytes.
    public init(pretty: Bool = true, capacity: Int = 4096) {
        self.pretty = pretty
        self.capacity = max(64, capacity)
        storage = UnsafeMutablePointer<UInt8>.allocate(capacity: self.capacity)
    }

    deinit { storage.deallocate() }

    /// A copy of the output so far.
    public var bytes: [UInt8] { Array(UnsafeBufferPointer(start: storage, count: count)) }

    /// The number of bytes written since the last flush.
    public var byteCount: Int { count }

    /// Makes room for at least `extra` more bytes.
    @inline(__always)
    public mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(toFit: extra) }
    }

    private mutating func grow(toFit extra: Int) {
        var newCapacity = capacity * 2
        while newCapacity < count + extra { newCapacity *= 2 }
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        grown.update(from: storage, count: count)
        storage.deallocate()
        storage = grown
        capacity = newCapacity
    }

    /// Hands the bytes written so far to `sink` and empties the buffer.
    public mutating func flush(to sink: (UnsafeBufferPointer<UInt8>) throws -> Void) rethrows {
        try sink(UnsafeBufferPointer(start: storage, count: count))
        count = 0
    }

    /// Ends the output with a newline (after the last value).
    public mutating func newlineAtEnd() {
        put(0x0A)
    }

    // MARK: - Raw output

    @inline(__always)
    private mutating func put(_ byte: UInt8) {
        if count == capacity { reserve(1) }
        storage[count] = byte
        count += 1
    }

    @inline(__always)
    private mutating func put(_ buffer: UnsafeBufferPointer<UInt8>) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        reserve(buffer.count)
        (storage + count).update(from: base, count: buffer.count)
        count += buffer.count
    }

    private mutating func put(_ literal: StaticString) {
        literal.withUTF8Buffer { put($0) }
    }

    private mutating func newline() {
        guard pretty else { return }
        let width = depth * 2
        reserve(width + 1)
        storage[count] = 0x0A
        (storage + count + 1).update(repeating: 0x20, count: width)
        count += width + 1
    }

    private mutating func beforeValue() {
        if afterKey {
            afterKey = false
            return
        }
        guard depth > 0 else { return }
        let bit: UInt64 = 1 << UInt64(depth - 1)
        if hasElements & bit != 0 { put(UInt8(ascii: ",")) }
        hasElements |= bit
        newline()
    }

    // MARK: - Structure

    /// Opens an object (`{`).
    public mutating func beginObject() {
        open(UInt8(ascii: "{"))
    }

    /// Closes the innermost object.
    public mutating func endObject() {
        close(UInt8(ascii: "}"))
    }

    /// Opens an array (`[`).
    public mutating func beginArray() {
        open(UInt8(ascii: "["))
    }

    /// Closes the innermost array.
    public mutating func endArray() {
        close(UInt8(ascii: "]"))
    }

    private mutating func open(_ byte: UInt8) {
        beforeValue()
        put(byte)
        precondition(depth < 63, "RecordJSONWriter nests at most 63 levels")
        depth += 1
        hasElements &= ~(1 << UInt64(depth - 1))
    }

    private mutating func close(_ byte: UInt8) {
        let hadElements = hasElements & (1 << UInt64(depth - 1)) != 0
        depth -= 1
        if pretty {
            if !hadElements { put(0x0A) }
            newline()
        }
        put(byte)
    }

    /// Writes an object key; the next call writes its value.
    public mutating func key(_ key: String) {
        beforeValue()
        appendString(key)
        if pretty { put(" : ") } else { put(UInt8(ascii: ":")) }
        afterKey = true
    }

    /// Writes a key known to need no escaping (the fixed field names of records), without scanning it.
    public mutating func fieldKey(_ key: StaticString) {
        beforeValue()
        key.withUTF8Buffer { name in
            reserve(name.count + 5)
            storage[count] = UInt8(ascii: "\"")
            if let base = name.baseAddress { (storage + count + 1).update(from: base, count: name.count) }
            count += name.count + 1
        }
        if pretty { put("\" : ") } else { put("\":") }
        afterKey = true
    }

    // MARK: - Values

    /// Writes a string value.
    public mutating func string(_ value: String) {
        beforeValue()
        appendString(value)
    }

    /// Writes a string value, or `null`.
    public mutating func string(_ value: String?) {
        if let value { string(value) } else { null() }
    }

    /// Writes UTF-8 bytes as a JSON string.
    public mutating func string(utf8: UnsafeBufferPointer<UInt8>) {
        beforeValue()
        appendString(utf8)
    }

    /// Writes an integer value.
    public mutating func int<I: BinaryInteger>(_ value: I) {
        beforeValue()
        var text = String(value)
        text.withUTF8 { put($0) }
    }

    /// Writes an integer value, or `null`.
    public mutating func int<I: BinaryInteger>(_ value: I?) {
        if let value { int(value) } else { null() }
    }

    /// Writes `true` or `false`.
    public mutating func bool(_ value: Bool) {
        beforeValue()
        if value { put("true") } else { put("false") }
    }

    /// Writes `null`.
    public mutating func null() {
        beforeValue()
        put("null")
    }

    /// Writes a timestamp as a string (see ``IMSTimestamp``).
    public mutating func timestamp(_ date: Date) {
        timestamp(microseconds: IMSTimestamp.microseconds(date))
    }

    /// Writes a timestamp given as microseconds since the epoch.
    public mutating func timestamp(microseconds: Int64) {
        beforeValue()
        reserve(IMSTimestamp.formattedLength + 2)
        storage[count] = UInt8(ascii: "\"")
        IMSTimestamp.format(microseconds: microseconds, into: storage + count + 1)
        storage[count + 1 + IMSTimestamp.formattedLength] = UInt8(ascii: "\"")
        count += IMSTimestamp.formattedLength + 2
    }

    /// Writes a lowercase UUID string.
    public mutating func uuid(_ value: UUID) {
        beforeValue()
        reserve(38)
        storage[count] = UInt8(ascii: "\"")
        count += 1
        withUnsafeBytes(of: value.uuid) { raw in
            for (index, byte) in raw.enumerated() {
                if index == 4 || index == 6 || index == 8 || index == 10 {
                    storage[count] = UInt8(ascii: "-")
                    count += 1
                }
                storage[count] = Self.hexDigit(byte >> 4)
                storage[count + 1] = Self.hexDigit(byte & 0x0F)
                count += 2
            }
        }
        storage[count] = UInt8(ascii: "\"")
        count += 1
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

    // MARK: - Raw output for specialised writers (the image listing)

    /// Starts a value in the current container (comma and indentation) without writing it.
    mutating func beginRawValue() {
        beforeValue()
    }

    /// Appends bytes as they are.
    mutating func appendRaw(_ literal: StaticString) {
        put(literal)
    }

    /// Appends a quoted, escaped string.
    mutating func appendRawString(_ utf8: UnsafeBufferPointer<UInt8>) {
        appendString(utf8)
    }

    /// Appends a quoted, escaped string.
    mutating func appendRawString(_ value: String) {
        appendString(value)
    }

    /// Appends a quoted timestamp.
    mutating func appendRawTimestamp(microseconds: Int64) {
        reserve(IMSTimestamp.formattedLength + 2)
        storage[count] = UInt8(ascii: "\"")
        IMSTimestamp.format(microseconds: microseconds, into: storage + count + 1)
        storage[count + 1 + IMSTimestamp.formattedLength] = UInt8(ascii: "\"")
        count += IMSTimestamp.formattedLength + 2
    }

    /// Whether the output is indented.
    var isPretty: Bool { pretty }

    // MARK: - Strings

    @inline(__always)
    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }

    private mutating func appendString(_ value: String) {
        var value = value
        value.withUTF8 { appendString($0) }
    }

    /// Writes `"…"`, escaping `"`, `\` and control characters as `JSONEncoder` does (`/` and non-ASCII stay).
    private mutating func appendString(_ utf8: UnsafeBufferPointer<UInt8>) {
        put(UInt8(ascii: "\""))
        var start = 0
        var index = 0
        let total = utf8.count
        while index < total {
            // Eight bytes at a time while none needs escaping (SWAR: a zero byte in `w - 0x01…` & ~w & 0x80…).
            if index + 8 <= total, let base = utf8.baseAddress {
                let word = UInt64(littleEndian: UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self))
                if !Self.needsEscaping(word) {
                    index += 8
                    continue
                }
            }
            let byte = utf8[index]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else {
                index += 1
                continue
            }
            put(UnsafeBufferPointer(rebasing: utf8[start..<index]))
            index += 1
            start = index
            switch byte {
            case UInt8(ascii: "\""): put("\\\"")
            case UInt8(ascii: "\\"): put("\\\\")
            case 0x0A: put("\\n")
            case 0x0D: put("\\r")
            case 0x09: put("\\t")
            case 0x08: put("\\b")
            case 0x0C: put("\\f")
            default:
                put("\\u00")
                put(Self.hexDigit(byte >> 4))
                put(Self.hexDigit(byte & 0x0F))
            }
        }
        put(UnsafeBufferPointer(rebasing: utf8[start..<total]))
        put(UInt8(ascii: "\""))
    }

    /// Whether any of the eight bytes is below 0x20, `"` or `\`.
    @inline(__always)
    private static func needsEscaping(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        func hasZero(_ x: UInt64) -> Bool { (x &- ones) & ~x & highs != 0 }
        // Bytes below 0x20: x - 0x20 borrows into the high bit for them (high-bit bytes are masked out by ~word).
        let control = (word &- ones &* 0x20) & ~word & highs
        return control != 0 || hasZero(word ^ (ones &* 0x22)) || hasZero(word ^ (ones &* 0x5C))
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
        var writer = RecordJSONWriter(pretty: pretty, capacity: values.count * 400 + 16)
        writer.beginArray()
        for value in values { value.writeJSON(to: &writer) }
        writer.endArray()
        writer.newlineAtEnd()
        return writer.bytes
    }

    /// Encodes one value followed by a newline.
    public static func object<T: RecordJSONWritable>(_ value: T, pretty: Bool = true) -> [UInt8] {
        var writer = RecordJSONWriter(pretty: pretty)
        value.writeJSON(to: &writer)
        writer.newlineAtEnd()
        return writer.bytes
    }
}

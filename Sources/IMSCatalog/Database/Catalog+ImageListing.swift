import Foundation
import GRDB
import GRDBSQLite

extension Catalog {
    /// The image list as JSON, straight from SQLite into the JSON writer: the bytes of
    /// `RecordJSONWriter.array(try images(deleted:))`, without building `ImageRecord` values.
    ///
    /// - Parameters:
    ///   - deleted: soft-deleted images instead of live ones.
    ///   - pretty: indented like `JSONEncoder`'s `.prettyPrinted`, else compact.
    /// - Returns: UTF-8 JSON (an array) followed by a newline.
    public func imagesJSON(deleted: Bool = false, pretty: Bool = true) throws(CatalogError) -> [UInt8] {
        var output: [UInt8] = []
        try writeImagesJSON(deleted: deleted, pretty: pretty) { chunk in output.append(contentsOf: chunk) }
        return output
    }

    /// Streams the image list as JSON to `sink` in chunks of about 1 MiB (see ``imagesJSON(deleted:pretty:)``).
    ///
    /// `ims images list --json` uses it so that listing 100k images stays within its budget (see
    /// docs/performance.md): no `String`, `UUID` or `Date` is made per row, column bytes are copied (escaped) into
    /// the output, timestamps are formatted from their stored microseconds, metadata comes from one scan of the
    /// metadata table, and memory stays bounded. The whole list is read in one snapshot.
    ///
    /// - Parameter sink: receives the output in order; an error it throws stops the listing.
    public func writeImagesJSON(deleted: Bool = false, pretty: Bool = true, to sink: (UnsafeBufferPointer<UInt8>) throws -> Void) throws(CatalogError) {
        let scope = Columns.scopeClause(deleted ? .deleted : .live)
        let chunkSize = 1 << 20
        try read("listing images") { db in
            // Metadata of every image (deleted ones too: a scan is cheaper than a join), by id.
            var metadata = MetadataIndex()
            let entries = try Row.fetchCursor(db, sql: "SELECT image_id, key, value FROM image_metadata")
            while let entry = try entries.next() {
                let id: String = entry[0]
                guard let key = UUIDKey(text: id) else { continue }
                metadata.append(key, (entry[1], entry[2]))
            }
            metadata.sortEntries()

            var writer = RecordJSONWriter(pretty: pretty, capacity: chunkSize + 64 * 1024)
            writer.beginArray()
            let statement = try db.makeStatement(
                sql: "SELECT id, created, name, link_path, link_etag, link_type, arch, deleted FROM images WHERE \(scope) ORDER BY created, id")
            let sqlite = statement.sqliteStatement
            defer { sqlite3_reset(sqlite) }
            while true {
                let code = sqlite3_step(sqlite)
                if code == SQLITE_DONE { break }
                guard code == SQLITE_ROW else {
                    throw CatalogError.database(operation: "listing images", message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
                }
                if writer.isPretty {
                    writer.writePrettyImageRow(sqlite, metadata: metadata)
                } else {
                    let entries = metadata.isEmpty ? nil : UUIDKey(column: sqlite, 0).flatMap { metadata.entries(for: $0) }
                    writer.writeCompactImageRow(sqlite, metadata: entries)
                }
                if writer.byteCount >= chunkSize {
                    try writer.flush(to: sink)
                }
            }
            writer.endArray()
            writer.newlineAtEnd()
            try writer.flush(to: sink)
        }
    }
}

/// Metadata by image id: an open-addressing table with a cheap multiplicative hash (hashing 100k ids with
/// `Hasher` showed up in the listing profile).
struct MetadataIndex {
    typealias Entry = (key: String, value: String)
    private var slots: [Int32] = Array(repeating: -1, count: 1024)
    private var keys: [UUIDKey] = []
    private var lists: [[Entry]] = []
    /// A 2^18-bit filter (32 KiB, stays in cache): most ids without metadata are rejected here without
    /// touching the (larger) table.
    private var filter = [UInt64](repeating: 0, count: 4096)

    private static func filterBit(_ key: UUIDKey) -> Int {
        Int(truncatingIfNeeded: (key.low ^ key.high) >> 7) & 0x3FFFF
    }

    var isEmpty: Bool { keys.isEmpty }

    private func slot(for key: UUIDKey) -> Int {
        let mask = slots.count - 1
        var index = Int(truncatingIfNeeded: ((key.high ^ (key.low &* 0x9E37_79B9_7F4A_7C15)) &* 0xBF58_476D_1CE4_E5B9) >> 17) & mask
        while true {
            let stored = slots[index]
            if stored < 0 || keys[Int(stored)] == key { return index }
            index = (index + 1) & mask
        }
    }

    mutating func append(_ key: UUIDKey, _ entry: Entry) {
        let index = slot(for: key)
        if slots[index] >= 0 {
            lists[Int(slots[index])].append(entry)
            return
        }
        slots[index] = Int32(keys.count)
        let bit = Self.filterBit(key)
        filter[bit >> 6] |= 1 << UInt64(bit & 63)
        keys.append(key)
        lists.append([entry])
        if keys.count * 2 > slots.count { rehash() }
    }

    private mutating func rehash() {
        slots = Array(repeating: -1, count: slots.count * 2)
        for (position, key) in keys.enumerated() { slots[slot(for: key)] = Int32(position) }
    }

    /// Sorts each image's entries by key bytes, as `.sortedKeys` orders them.
    mutating func sortEntries() {
        for index in lists.indices { lists[index].sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) } }
    }

    func entries(for key: UUIDKey) -> [Entry]? {
        let bit = Self.filterBit(key)
        guard filter[bit >> 6] & (1 << UInt64(bit & 63)) != 0 else { return nil }
        let stored = slots[slot(for: key)]
        return stored < 0 ? nil : lists[Int(stored)]
    }
}

/// A UUID as two integers, parsed from its 36-character text without allocating (a cheap dictionary key).
struct UUIDKey: Hashable {
    var high: UInt64
    var low: UInt64

    init?(text: String) {
        var text = text
        guard let key = text.withUTF8({ UUIDKey(bytes: $0) }) else { return nil }
        self = key
    }

    init?(column statement: OpaquePointer, _ index: Int32) {
        guard let pointer = sqlite3_column_text(statement, index) else { return nil }
        let count = Int(sqlite3_column_bytes(statement, index))
        guard let key = UUIDKey(bytes: UnsafeBufferPointer(start: pointer, count: count)) else { return nil }
        self = key
    }

    /// Hex digit values; 0xFF for anything else.
    private static let hexValues: [UInt8] = (0...255).map { byte -> UInt8 in
        switch UInt8(byte) {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt8(byte) - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt8(byte) - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt8(byte) - UInt8(ascii: "A") + 10
        default: 0xFF
        }
    }

    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (either case).
    init?(bytes: UnsafeBufferPointer<UInt8>) {
        guard bytes.count == 36, bytes[8] == 0x2D, bytes[13] == 0x2D, bytes[18] == 0x2D, bytes[23] == 0x2D else { return nil }
        let parsed: (UInt64, UInt64)? = Self.hexValues.withUnsafeBufferPointer { table in
            var high: UInt64 = 0
            var low: UInt64 = 0
            var invalid: UInt8 = 0
            func accumulate(_ range: Range<Int>, into value: inout UInt64) {
                for index in range {
                    let digit = table[Int(bytes[index])]
                    invalid |= digit
                    value = value << 4 | UInt64(digit & 0x0F)
                }
            }
            accumulate(0..<8, into: &high)
            accumulate(9..<13, into: &high)
            accumulate(14..<18, into: &high)
            accumulate(19..<23, into: &low)
            accumulate(24..<36, into: &low)
            return invalid & 0xF0 == 0 ? (high, low) : nil
        }
        guard let parsed else { return nil }
        high = parsed.0
        low = parsed.1
    }

    /// The Foundation UUID with these bytes.
    var uuid: UUID {
        let h = high.bigEndian
        let l = low.bigEndian
        return withUnsafeBytes(of: (h, l)) { raw in
            UUID(uuid: (raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7], raw[8], raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15]))
        }
    }
}

extension RecordJSONWriter {
    /// Writes one row of the image listing (columns: id, created, name, link_path, link_etag, link_type, arch,
    /// deleted) as an element of the top-level array, indented: fixed parts are copied as whole literals. The
    /// output equals `ImageRecord.writeJSON(to:)` (a test compares them).
    mutating func writePrettyImageRow(_ row: OpaquePointer, metadata: MetadataIndex) {
        beginRawValue()
        appendRaw("{\n    \"arch\" : ")
        appendRawColumn(row, 6)
        appendRaw(",\n    \"created\" : ")
        appendRawTimestamp(microseconds: sqlite3_column_int64(row, 1))
        if sqlite3_column_type(row, 7) != SQLITE_NULL {
            appendRaw(",\n    \"deleted\" : ")
            appendRawTimestamp(microseconds: sqlite3_column_int64(row, 7))
        }
        appendRaw(",\n    \"id\" : ")
        appendRawColumn(row, 0)
        if sqlite3_column_type(row, 3) == SQLITE_NULL {
            appendRaw(",\n    \"link\" : null,\n    \"metadata\" : {")
        } else {
            appendRaw(",\n    \"link\" : {\n      \"etag\" : ")
            appendRawColumn(row, 4)
            appendRaw(",\n      \"path\" : ")
            appendRawColumn(row, 3)
            appendRaw(",\n      \"type\" : ")
            appendRawColumn(row, 5)
            appendRaw("\n    },\n    \"metadata\" : {")
        }
        if !metadata.isEmpty, let key = UUIDKey(column: row, 0), let entries = metadata.entries(for: key) {
            var first = true
            for entry in entries {
                appendRaw(first ? "\n      " : ",\n      ")
                first = false
                appendRawString(entry.key)
                appendRaw(" : ")
                appendRawString(entry.value)
            }
            appendRaw("\n    },\n    \"name\" : ")
        } else {
            appendRaw("\n\n    },\n    \"name\" : ")
        }
        appendRawColumn(row, 2)
        appendRaw("\n  }")
    }

    /// ``writePrettyImageRow(_:metadata:)`` without indentation.
    ///
    /// The two writers are kept apart on purpose: one writer taking its literals from a struct of `StaticString`s
    /// doubled the CPU time of listing 100k images (336 ms against 155–175 ms; the literals' lengths are no longer
    /// compile-time constants at each `appendRaw`).
    /// `metadata` is the image's entries sorted by key bytes (nil or empty: none).
    mutating func writeCompactImageRow(_ row: OpaquePointer, metadata entries: [MetadataIndex.Entry]?) {
        beginRawValue()
        appendRaw("{\"arch\":")
        appendRawColumn(row, 6)
        appendRaw(",\"created\":")
        appendRawTimestamp(microseconds: sqlite3_column_int64(row, 1))
        if sqlite3_column_type(row, 7) != SQLITE_NULL {
            appendRaw(",\"deleted\":")
            appendRawTimestamp(microseconds: sqlite3_column_int64(row, 7))
        }
        appendRaw(",\"id\":")
        appendRawColumn(row, 0)
        if sqlite3_column_type(row, 3) == SQLITE_NULL {
            appendRaw(",\"link\":null,\"metadata\":{")
        } else {
            appendRaw(",\"link\":{\"etag\":")
            appendRawColumn(row, 4)
            appendRaw(",\"path\":")
            appendRawColumn(row, 3)
            appendRaw(",\"type\":")
            appendRawColumn(row, 5)
            appendRaw("},\"metadata\":{")
        }
        if let entries {
            var first = true
            for entry in entries {
                if !first { appendRaw(",") }
                first = false
                appendRawString(entry.key)
                appendRaw(":")
                appendRawString(entry.value)
            }
        }
        appendRaw("},\"name\":")
        appendRawColumn(row, 2)
        appendRaw("}")
    }

    /// Appends a TEXT column as a quoted, escaped string (`null` for NULL).
    private mutating func appendRawColumn(_ statement: OpaquePointer, _ index: Int32) {
        guard let pointer = sqlite3_column_text(statement, index) else {
            appendRaw("null")
            return
        }
        appendRawString(UnsafeBufferPointer(start: pointer, count: Int(sqlite3_column_bytes(statement, index))))
    }

    /// Writes a TEXT column as a JSON string (`null` for NULL), without making a `String`.
    mutating func string(column statement: OpaquePointer, _ index: Int32) {
        guard let pointer = sqlite3_column_text(statement, index) else {
            null()
            return
        }
        let count = Int(sqlite3_column_bytes(statement, index))
        string(utf8: UnsafeBufferPointer(start: pointer, count: count))
    }
}

extension Catalog {
    /// One image as compact JSON followed by a newline: the bytes of `RecordJSONWriter.object(try image(id), pretty:
    /// false)`, read on a connection of ``RecordReadConnections`` (the API's `GET /v3/images/{id}`).
    ///
    /// - Throws: ``CatalogError/notFound(kind:id:)``, or ``CatalogError/database(operation:message:)``.
    public func imageJSON(_ id: UUID, scope: RecordScope = .live) throws(CatalogError) -> [UInt8] {
        let idText = id.imsString
        return try recordReads.read("reading image \(idText)") { connection throws(CatalogError) in
            do {
                let image = try connection.statement(
                    "SELECT id, created, name, link_path, link_etag, link_type, arch, deleted FROM images WHERE id = ?1 AND \(Columns.scopeClause(scope))")
                connection.bind(image, 1, idText)
                guard try connection.step(image) else { throw CatalogError.notFound(kind: .image, id: idText) }
                // Keys in byte order (BINARY collation), as `.sortedKeys` orders them.
                let metadata = try connection.statement("SELECT key, value FROM image_metadata WHERE image_id = ?1 ORDER BY key")
                connection.bind(metadata, 1, idText)
                var entries: [MetadataIndex.Entry] = []
                while try connection.step(metadata) {
                    entries.append((Self.text(metadata, 0), Self.text(metadata, 1)))
                }
                var writer = RecordJSONWriter(pretty: false, capacity: 512)
                writer.writeCompactImageRow(image, metadata: entries)
                writer.newlineAtEnd()
                return writer.bytes
            } catch let error as RawReadConnection.Failure {
                throw CatalogError.database(operation: "reading image \(idText)", message: error.message)
            } catch let error as CatalogError {
                throw error
            } catch {
                throw CatalogError.database(operation: "reading image \(idText)", message: "\(error)")
            }
        }
    }

    private static func text(_ statement: OpaquePointer, _ index: Int32) -> String {
        guard let pointer = sqlite3_column_text(statement, index) else { return "" }
        return String(decoding: UnsafeBufferPointer(start: pointer, count: Int(sqlite3_column_bytes(statement, index))), as: UTF8.self)
    }
}

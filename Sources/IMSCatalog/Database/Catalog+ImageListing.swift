import Foundation
import GRDB
import GRDBSQLite

extension Catalog {
    /// The image list as JSON, straight from SQLite into the JSON writer: the output of
    /// `RecordJSONWriter.array(try images(deleted:))`, without building `ImageRecord` values.
    ///
    /// `ims images list --json` uses it so that listing 100k images stays within its budget (see
    /// docs/performance.md): no `String`, `UUID` or `Date` is made per row; column bytes are copied (escaped) into
    /// the output, timestamps are formatted from their stored microseconds, and metadata comes from one scan of
    /// the metadata table.
    ///
    /// - Parameters:
    ///   - deleted: soft-deleted images instead of live ones.
    ///   - pretty: indented like `JSONEncoder`'s `.prettyPrinted`, else compact.
    /// - Returns: UTF-8 JSON (an array) followed by a newline.
    public func imagesJSON(deleted: Bool = false, pretty: Bool = true) throws(CatalogError) -> [UInt8] {
        let scope = Columns.scopeClause(deleted ? .deleted : .live)
        return try read("listing images") { db in
            // Metadata of every image (deleted ones too: a scan is cheaper than a join), by id.
            var metadata: [UUIDKey: [(key: String, value: String)]] = [:]
            let entries = try Row.fetchCursor(db, sql: "SELECT image_id, key, value FROM image_metadata")
            while let entry = try entries.next() {
                let id: String = entry[0]
                guard let key = UUIDKey(text: id) else { continue }
                metadata[key, default: []].append((entry[1], entry[2]))
            }
            for key in metadata.keys {
                metadata[key]?.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            }

            let count = try Int.fetchOne(db, sql: "SELECT count(*) FROM images WHERE \(scope)") ?? 0
            var writer = RecordJSONWriter(pretty: pretty)
            writer.reserve(count * (pretty ? 360 : 280) + 16)
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
                writer.beginObject()
                writer.key("arch")
                writer.string(column: sqlite, 6)
                writer.key("created")
                writer.timestamp(microseconds: sqlite3_column_int64(sqlite, 1))
                if sqlite3_column_type(sqlite, 7) != SQLITE_NULL {
                    writer.key("deleted")
                    writer.timestamp(microseconds: sqlite3_column_int64(sqlite, 7))
                }
                writer.key("id")
                writer.string(column: sqlite, 0)
                writer.key("link")
                if sqlite3_column_type(sqlite, 3) == SQLITE_NULL {
                    writer.null()
                } else {
                    writer.beginObject()
                    writer.key("etag")
                    writer.string(column: sqlite, 4)
                    writer.key("path")
                    writer.string(column: sqlite, 3)
                    writer.key("type")
                    writer.string(column: sqlite, 5)
                    writer.endObject()
                }
                writer.key("metadata")
                writer.beginObject()
                if !metadata.isEmpty, let key = UUIDKey(column: sqlite, 0), let entries = metadata[key] {
                    for entry in entries {
                        writer.key(entry.key)
                        writer.string(entry.value)
                    }
                }
                writer.endObject()
                writer.key("name")
                writer.string(column: sqlite, 2)
                writer.endObject()
            }
            writer.endArray()
            var bytes = writer.bytes
            bytes.append(0x0A)
            return bytes
        }
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

    init?(bytes: UnsafeBufferPointer<UInt8>) {
        guard bytes.count == 36 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        var nibbles = 0
        for byte in bytes {
            let value: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = byte - UInt8(ascii: "A") + 10
            case UInt8(ascii: "-"): continue
            default: return nil
            }
            if nibbles < 16 {
                high = high << 4 | UInt64(value)
            } else {
                low = low << 4 | UInt64(value)
            }
            nibbles += 1
        }
        guard nibbles == 32 else { return nil }
        self.high = high
        self.low = low
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

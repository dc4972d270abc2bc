import Foundation
import GRDB

/// Backups and consistency checks of the catalog file itself.
extension Catalog {
    /// What a backup holds.
    public struct BackupReport: Sendable, Codable, Hashable {
        public var path: String
        public var bytes: Int64
        /// The schema migrations the backup carries (the catalog's schema version when it was taken).
        public var schema: [String]
        public var records: [String: Int]

        enum CodingKeys: String, CodingKey {
            case path, bytes, schema, records
        }
    }

    /// Copies the catalog to `path` with SQLite's online backup: a consistent snapshot while other processes and
    /// `ims serve` keep writing. The copy is written next to `path` and renamed into place when complete, so a
    /// failed or interrupted backup never leaves a partial file under that name.
    public func backup(to path: String) throws(CatalogError) -> BackupReport {
        let temporary = path + ".ims-partial-" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
        defer { for suffix in ["", "-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: temporary + suffix) } }
        do {
            let destination = try DatabaseQueue(path: temporary)
            try pool.backup(to: destination)
            try destination.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = DELETE") }
            try destination.close()
        } catch {
            throw CatalogError.database(operation: "backing up \(self.path) to \(path)", message: Catalog.message(error))
        }
        guard rename(temporary, path) == 0 else {
            throw CatalogError.database(operation: "backing up \(self.path) to \(path)", message: String(cString: strerror(errno)))
        }
        return try Catalog.describeBackup(path)
    }

    /// The schema and record counts of a backup file (opened read-only).
    public static func describeBackup(_ path: String) throws(CatalogError) -> BackupReport {
        do {
            let queue = try DatabaseQueue(path: path, configuration: readOnlyConfiguration())
            defer { try? queue.close() }
            return try queue.read { db in
                let schema = try CatalogSchema.migrator.appliedIdentifiers(db).sorted()
                let records = try recordCounts(db)
                let bytes = ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.int64Value ?? 0
                return BackupReport(path: path, bytes: bytes, schema: schema, records: records)
            }
        } catch {
            throw CatalogError.database(operation: "reading the backup \(path)", message: Catalog.message(error))
        }
    }

    /// The number of records in each table (live and soft-deleted together).
    public func recordCounts() throws(CatalogError) -> [String: Int] {
        try read("counting records") { db in try Catalog.recordCounts(db) }
    }

    static func recordCounts(_ db: Database) throws -> [String: Int] {
        var records: [String: Int] = [:]
        for table in ["recipes", "images", "public_keys", "jobs"] where try db.tableExists(table) {
            records[table] = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? 0
        }
        return records
    }

    /// One problem `ims catalog check` found.
    public struct Problem: Sendable, Codable, Hashable {
        /// The rule: `integrity`, `foreign_keys`, `unique_links`, `running_jobs`, `store`.
        public var rule: String
        public var message: String
        public var record: String?

        public init(rule: String, message: String, record: String? = nil) {
            self.rule = rule
            self.message = message
            self.record = record
        }
    }

    /// The database's own checks (`PRAGMA integrity_check`, `foreign_key_check`) and the catalog's rule that links
    /// are unique among live records.
    public func checkConsistency() throws(CatalogError) -> [Problem] {
        try read("checking \(path)") { db in
            var problems: [Problem] = []
            for row in try String.fetchAll(db, sql: "PRAGMA integrity_check") where row != "ok" {
                problems.append(Problem(rule: "integrity", message: row))
            }
            for row in try Row.fetchAll(db, sql: "PRAGMA foreign_key_check") {
                problems.append(Problem(rule: "foreign_keys", message: "table \(row[0] as String? ?? "?") row \(row[1] as Int64? ?? 0) refers to a missing \(row[2] as String? ?? "?") row"))
            }
            for table in ["recipes", "images"] {
                let sql = "SELECT link_path, group_concat(id) FROM \(table) WHERE deleted IS NULL AND link_path IS NOT NULL GROUP BY link_path HAVING COUNT(*) > 1"
                for row in try Row.fetchAll(db, sql: sql) {
                    problems.append(Problem(rule: "unique_links", message: "live \(table) share the link \(row[0] as String? ?? "")", record: row[1] as String?))
                }
            }
            return problems
        }
    }
}

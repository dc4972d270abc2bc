import Foundation
import GRDB

/// `ims catalog restore`: a backup back in place of the catalog.
extension Catalog {
    /// What a restore did.
    public struct RestoreReport: Sendable, Codable, Hashable {
        /// The backup restored.
        public var backup: String
        public var catalog: String
        /// The backup's schema migrations, and the catalog's after the restore (a backup from an older ims is
        /// migrated forward).
        public var backupSchema: [String]
        public var schema: [String]
        public var records: [String: Int]
        /// Where the catalog that was replaced was kept: a copy (when it could be opened) or the file itself, moved
        /// aside (when it could not).
        public var previousCatalog: String?

        enum CodingKeys: String, CodingKey {
            case backup, catalog, schema, records
            case backupSchema = "backup_schema"
            case previousCatalog = "previous_catalog"
        }
    }

    /// Replaces the catalog of `dataDirectory` with the backup at `backupPath`.
    ///
    /// Refused (``CatalogError/restoreRefused(backup:reason:)``, nothing changed) while `ims serve` holds the data
    /// directory (``DataDirectoryLock``), while a job's runner is or may be alive, when the backup is not an ims
    /// catalog, fails SQLite's integrity check, or carries a schema migration this ims does not know (a newer ims
    /// made it). The catalog being replaced is kept first: copied to `catalog.before-restore-<time>.sqlite` when it
    /// opens, or moved aside to `catalog.sqlite.unreadable-<time>` when it does not (the case a restore is for). The
    /// backup is copied in with SQLite's backup API, then migrated to this ims's schema.
    public static func restore(
        from backupPath: String, into dataDirectory: DataDirectory, now: Date = Date(),
        heartbeatTimeout: TimeInterval = 60, isAlive: (Int32) -> Bool = Catalog.processIsAlive
    ) throws(CatalogError) -> RestoreReport {
        // A new machine's data directory may not exist yet: a restore is how it gets its catalog.
        try dataDirectory.create()
        guard let lock = try DataDirectoryLock.acquire(dataDirectory, mode: .exclusive) else {
            throw CatalogError.restoreRefused(
                backup: backupPath, reason: "ims serve is running on \(dataDirectory.path) (stop it first; it holds \(dataDirectory.path)/catalog.lock)")
        }
        defer { withExtendedLifetime(lock) {} }
        let backupSchema = try checkBackup(backupPath)
        let stamp = IMSTimestamp.string(now).prefix(19).replacingOccurrences(of: ":", with: "")
        var previous: String?
        if FileManager.default.fileExists(atPath: dataDirectory.catalogPath), let current = try? Catalog(path: dataDirectory.catalogPath),
           (try? current.checkConsistency().filter { $0.rule == "integrity" }.isEmpty) == true
        {
            let running = RunnerLiveness.possiblyRunning(
                try current.jobs(), host: Catalog.currentHost, now: now, heartbeatTimeout: heartbeatTimeout, isAlive: isAlive)
            if !running.isEmpty {
                let list = running.prefix(5).map { "\($0.id.imsString) (\($0.status.rawValue))" }.joined(separator: ", ")
                throw CatalogError.restoreRefused(
                    backup: backupPath,
                    reason: "\(running.count) job(s) are running: \(list); wait for them to end or delete them (ims jobs delete ID)")
            }
            let keep = dataDirectory.path + "/catalog.before-restore-\(stamp).sqlite"
            _ = try current.backup(to: keep)
            previous = keep
            do {
                let source = try DatabaseQueue(path: backupPath, configuration: readOnlyConfiguration())
                defer { try? source.close() }
                try source.backup(to: current.pool)
            } catch {
                throw CatalogError.database(operation: "restoring \(backupPath) into \(current.path)", message: Catalog.message(error))
            }
        } else {
            // The catalog cannot be opened or fails its integrity check: move it (and its WAL) aside, copy the backup in.
            let aside = dataDirectory.catalogPath + ".unreadable-\(stamp)"
            if FileManager.default.fileExists(atPath: dataDirectory.catalogPath) {
                for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: dataDirectory.catalogPath + suffix) {
                    guard rename(dataDirectory.catalogPath + suffix, aside + suffix) == 0 else {
                        throw CatalogError.database(operation: "moving \(dataDirectory.catalogPath + suffix) aside", message: String(cString: strerror(errno)))
                    }
                }
                previous = aside
            }
            let temporary = dataDirectory.catalogPath + ".ims-restoring"
            do {
                try? FileManager.default.removeItem(atPath: temporary)
                try FileManager.default.copyItem(atPath: backupPath, toPath: temporary)
            } catch {
                throw CatalogError.database(operation: "copying \(backupPath) into \(dataDirectory.path)", message: (error as NSError).localizedDescription)
            }
            guard rename(temporary, dataDirectory.catalogPath) == 0 else {
                throw CatalogError.database(operation: "restoring \(dataDirectory.catalogPath)", message: String(cString: strerror(errno)))
            }
        }
        // Reopening migrates a backup from an older ims forward.
        let restored = try Catalog(path: dataDirectory.catalogPath)
        return RestoreReport(
            backup: backupPath, catalog: restored.path, backupSchema: backupSchema, schema: try restored.appliedMigrations(),
            records: try restored.recordCounts(), previousCatalog: previous)
    }

    /// The backup's schema migrations, after checking that it is an intact ims catalog this ims can read.
    static func checkBackup(_ path: String) throws(CatalogError) -> [String] {
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw CatalogError.restoreRefused(backup: path, reason: "it does not exist or cannot be read")
        }
        let known = Set(CatalogSchema.migrator.migrations)
        let outcome: Result<[String], CatalogError>
        do {
            let queue = try DatabaseQueue(path: path, configuration: readOnlyConfiguration())
            defer { try? queue.close() }
            outcome = try queue.read { db in
                let integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check")
                guard integrity == ["ok"] else {
                    return .failure(.restoreRefused(backup: path, reason: "it fails SQLite's integrity check: \(integrity.prefix(3).joined(separator: "; "))"))
                }
                guard try db.tableExists("grdb_migrations"), try db.tableExists("images") else {
                    return .failure(.restoreRefused(backup: path, reason: "it is not an ims catalog (no catalog tables)"))
                }
                let applied = try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations")
                let unknown = applied.filter { !known.contains($0) }
                guard unknown.isEmpty else {
                    return .failure(.restoreRefused(
                        backup: path,
                        reason: "it was made by a newer ims (schema \(unknown.sorted().joined(separator: ", ")) is unknown here; this ims knows \(CatalogSchema.migrator.migrations.joined(separator: ", "))); restore it with that version"))
                }
                return .success(applied.sorted())
            }
        } catch {
            throw CatalogError.restoreRefused(backup: path, reason: "it is not a readable SQLite database (\(Catalog.message(error)))")
        }
        return try outcome.get()
    }

    static func readOnlyConfiguration() -> Configuration {
        var configuration = Configuration()
        configuration.readonly = true
        return configuration
    }
}

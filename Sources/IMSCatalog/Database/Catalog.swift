import Foundation
import GRDB

/// The records of one ims installation (recipes, images, public keys, jobs and job events) in SQLite.
///
/// A `Catalog` wraps a GRDB `DatabasePool` on `<data-dir>/catalog.sqlite` in WAL mode with a busy timeout, so
/// several `ims` processes (and threads) can use one data directory at once: readers never wait, writers
/// queue for up to the busy timeout. Every change that touches more than one row runs in one IMMEDIATE
/// transaction, so a read-modify-write (appending to a status history, say) cannot lose another process's
/// update.
///
/// Methods are synchronous and thread-safe; each runs one short transaction. The catalog never touches
/// artifact stores: operations that move artifacts (soft delete, undelete) return the links the caller must
/// move.
public final class Catalog: Sendable {
    /// The database file.
    public let path: String
    let pool: DatabasePool
    /// Connections of their own for single-record reads on the API's hot path (``imageJSON(_:scope:)``).
    let recordReads: RecordReadConnections

    /// The default time a writer waits for another process's transaction before failing.
    public static let defaultBusyTimeout: TimeInterval = 30

    /// Opens (creating and migrating as needed) the catalog in a data directory.
    ///
    /// - Parameters:
    ///   - dataDirectory: the data directory; created (mode 0700) if missing.
    ///   - busyTimeout: how long a write waits for other processes' writes.
    /// - Throws: ``CatalogError/dataDirectory(path:reason:)`` or ``CatalogError/database(operation:message:)``.
    public convenience init(dataDirectory: DataDirectory, busyTimeout: TimeInterval = Catalog.defaultBusyTimeout) throws(CatalogError) {
        try dataDirectory.create()
        try self.init(path: dataDirectory.catalogPath, busyTimeout: busyTimeout)
    }

    /// Opens (creating and migrating as needed) the catalog database at `path`.
    ///
    /// - Parameters:
    ///   - path: the SQLite file; its directory must exist.
    ///   - busyTimeout: how long a write waits for other processes' writes.
    /// - Throws: ``CatalogError/database(operation:message:)``.
    public init(path: String, busyTimeout: TimeInterval = Catalog.defaultBusyTimeout) throws(CatalogError) {
        self.path = path
        recordReads = RecordReadConnections(
            path: path, busyTimeout: busyTimeout, maximumIdle: max(2, ProcessInfo.processInfo.activeProcessorCount * 2))
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        configuration.foreignKeysEnabled = true
        configuration.label = "ims.catalog"
        // One reader per core (at least 2, GRDB's default of 5 at most): more cannot run at once, and each reader's
        // memory map of the file counts again in the process's resident memory.
        configuration.maximumReaderCount = max(2, min(5, ProcessInfo.processInfo.activeProcessorCount))
        configuration.prepareDatabase { db in
            // WAL is durable across process crashes with NORMAL; each commit still reaches the WAL file.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // No memory map: each reader connection's map of the file counted again in a process's resident memory
            // (ims serve: 141 MiB of file pages with 100k images), and reading with read() copies measured no slower
            // for the 100k listing (docs/performance.md, API server).
            try db.execute(sql: "PRAGMA mmap_size = 0")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw Catalog.openFailure(path: path, operation: "opening \(path)", error)
        }
        try migrate()
    }

    /// Applies pending migrations. Several processes may open a new catalog at once: a migration that another
    /// process applied first is not an error.
    private func migrate() throws(CatalogError) {
        let migrator = CatalogSchema.migrator
        var lastError: (any Error)?
        for _ in 0..<5 {
            do {
                if try pool.read({ db in try migrator.hasCompletedMigrations(db) }) { return }
                try migrator.migrate(pool)
                return
            } catch {
                lastError = error
                if (try? pool.read({ db in try migrator.hasCompletedMigrations(db) })) == true { return }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        guard let lastError else { throw CatalogError.database(operation: "migrating \(path)", message: "unknown error") }
        throw Catalog.openFailure(path: path, operation: "migrating \(path)", lastError)
    }

    /// The error for a catalog that cannot be opened; a damaged file points at `ims catalog restore`.
    static func openFailure(path: String, operation: String, _ error: any Error) -> CatalogError {
        var text = message(error)
        if let databaseError = error as? DatabaseError, [.SQLITE_CORRUPT, .SQLITE_NOTADB].contains(databaseError.resultCode) {
            text += " (the file is damaged: restore a backup with 'ims catalog restore FILE', which keeps this file aside)"
        }
        return CatalogError.database(operation: operation, message: text)
    }

    /// The identifiers of the applied schema migrations, oldest first.
    public func appliedMigrations() throws(CatalogError) -> [String] {
        try read("reading the schema version") { db in try CatalogSchema.migrator.appliedMigrations(db) }
    }

    // MARK: - Transactions

    /// Runs `body` in a read-only snapshot.
    func read<T>(_ operation: String, _ body: (Database) throws -> T) throws(CatalogError) -> T {
        do {
            return try pool.read(body)
        } catch {
            throw Catalog.map(error, operation: operation)
        }
    }

    /// Runs `body` in one IMMEDIATE write transaction (committed when it returns, rolled back when it throws).
    func write<T>(_ operation: String, _ body: (Database) throws -> T) throws(CatalogError) -> T {
        do {
            return try pool.write(body)
        } catch {
            throw Catalog.map(error, operation: operation)
        }
    }

    /// ``write(_:_:)`` for async callers: the caller suspends while it waits for the writer, so other requests keep
    /// their threads (many runners reporting at once queue here, not on the cooperative pool).
    ///
    /// There is deliberately no such read: GRDB's async read holds a pooled reader across a suspension, and a
    /// caller blocked in a synchronous read on the other cooperative threads would then wait for it forever (seen
    /// as a hung server under 50 reporting runners).
    func writeSuspending<T: Sendable>(_ operation: String, _ body: @escaping @Sendable (Database) throws -> T) async throws(CatalogError) -> T {
        do {
            return try await pool.write(body)
        } catch {
            throw Catalog.map(error, operation: operation)
        }
    }

    static func map(_ error: any Error, operation: String) -> CatalogError {
        if let catalogError = error as? CatalogError { return catalogError }
        return CatalogError.database(operation: operation, message: message(error))
    }

    static func message(_ error: any Error) -> String {
        if let databaseError = error as? DatabaseError {
            return databaseError.message ?? databaseError.description
        }
        return String(describing: error)
    }

    // MARK: - Process helpers

    /// The host name used in job records (`gethostname`).
    public static var currentHost: String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }

    /// Whether a process with this id runs on this machine (`kill(pid, 0)`; EPERM means it exists). A zombie (a
    /// runner that ended and whose parent, an init that does not reap, never waited for it) is not running.
    public static func processIsAlive(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        guard kill(pid, 0) == 0 || errno == EPERM else { return false }
        return !isZombie(pid)
    }

    /// Whether `/proc/PID/stat` shows the process as a zombie (state `Z`); false when it cannot be read.
    static func isZombie(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")")
        else { return false }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }
}

/// Which records a lookup considers.
public enum RecordScope: Sendable {
    /// Live records only (the default everywhere).
    case live
    /// Soft-deleted records only.
    case deleted
    /// Both.
    case any
}

/// A record whose link changed as part of a soft delete or undelete, with the link it had before.
///
/// The caller moves the stored objects from `previousLink` to `record.link` (soft delete: under `deleted/`;
/// undelete: back). If that fails, it reverses the catalog change (``Catalog/undeleteRecipe(_:relink:)`` after
/// a soft delete, and so on) so the record and the store agree again.
public struct Relinked<Record: Sendable & Hashable>: Sendable, Hashable {
    /// The record after the change.
    public var record: Record
    /// The link before the change.
    public var previousLink: ArtifactLink?

    public init(record: Record, previousLink: ArtifactLink?) {
        self.record = record
        self.previousLink = previousLink
    }
}

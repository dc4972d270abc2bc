import Foundation
import GRDBSQLite
import Synchronization

/// SQLite connections of their own for the API's hottest read, one record by id, used without GRDB's pool.
///
/// A GRDB pool read costs far more than the query itself: a reader is checked out of the pool, the work hops onto
/// its serial queue, and `BEGIN`, a schema-version check and `COMMIT` are run around it. `ims serve` answered
/// `GET /v3/images/{id}` at under half its static route's rate with that (docs/performance.md, API server). These
/// connections keep every statement prepared (`BEGIN` and `COMMIT` too) and run on the calling thread; the read
/// still happens in one transaction, so a record and its metadata come from one snapshot.
///
/// A connection serves one caller at a time: it is taken from the idle list (or opened) and given back. The
/// connections are read-only (`PRAGMA query_only`), never memory-map the file, and wait for a busy database as the
/// pool's do.
final class RecordReadConnections: Sendable {
    private let path: String
    private let busyTimeoutMilliseconds: Int32
    private let idle = Mutex<[RawReadConnection]>([])
    /// Connections kept open beyond this many at once are closed when given back.
    private let maximumIdle: Int

    init(path: String, busyTimeout: TimeInterval, maximumIdle: Int) {
        self.path = path
        busyTimeoutMilliseconds = Int32(clamping: Int(busyTimeout * 1000))
        self.maximumIdle = maximumIdle
    }

    /// Runs `body` with a connection of its own, inside one read transaction.
    func read<T>(_ operation: @autoclosure () -> String, _ body: (RawReadConnection) throws(CatalogError) -> T) throws(CatalogError) -> T {
        let taken = idle.withLock { $0.popLast() }
        let connection: RawReadConnection
        if let taken {
            connection = taken
        } else {
            do {
                connection = try RawReadConnection(path: path, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
            } catch {
                throw CatalogError.database(operation: operation(), message: error.message)
            }
        }
        do {
            try connection.beginTransaction()
        } catch {
            throw CatalogError.database(operation: operation(), message: error.message)
        }
        let result: T
        do {
            defer { connection.endTransaction() }
            result = try body(connection)
        }
        let keep = idle.withLock { connections in
            guard connections.count < maximumIdle else { return false }
            connections.append(connection)
            return true
        }
        if !keep { connection.close() }
        return result
    }
}

/// One SQLite connection with its prepared statements. Not thread-safe: ``RecordReadConnections`` lends it to one
/// caller at a time.
final class RawReadConnection: @unchecked Sendable {
    /// An SQLite error, with SQLite's message.
    struct Failure: Error {
        var message: String
    }

    private var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    private var beginStatement: OpaquePointer?
    private var commitStatement: OpaquePointer?

    init(path: String, busyTimeoutMilliseconds: Int32) throws(Failure) {
        var handle: OpaquePointer?
        let code = sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil)
        self.handle = handle
        guard code == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open the database (code \(code))"
            close()
            throw Failure(message: message)
        }
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
        guard sqlite3_exec(handle, "PRAGMA query_only = 1; PRAGMA mmap_size = 0", nil, nil, nil) == SQLITE_OK else {
            let message = String(cString: sqlite3_errmsg(handle))
            close()
            throw Failure(message: message)
        }
        beginStatement = try statement("BEGIN DEFERRED")
        commitStatement = try statement("COMMIT")
    }

    deinit { close() }

    func close() {
        for statement in statements.values { sqlite3_finalize(statement) }
        statements.removeAll()
        beginStatement = nil
        commitStatement = nil
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    /// The prepared statement for `sql` (prepared once per connection).
    func statement(_ sql: String) throws(Failure) -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        guard let handle else { throw Failure(message: "the connection is closed") }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK, let statement else {
            throw Failure(message: String(cString: sqlite3_errmsg(handle)))
        }
        statements[sql] = statement
        return statement
    }

    /// Steps `statement` once: true on a row, false when done.
    func step(_ statement: OpaquePointer) throws(Failure) -> Bool {
        switch sqlite3_step(statement) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw Failure(message: handle.map { String(cString: sqlite3_errmsg($0)) } ?? "the connection is closed")
        }
    }

    /// Binds a text parameter (1-based).
    func bind(_ statement: OpaquePointer, _ index: Int32, _ text: String) {
        // SQLITE_TRANSIENT: SQLite copies the bytes.
        sqlite3_bind_text(statement, index, text, -1, unsafeBitCast(-1, to: sqlite3_destructor_type.self))
    }

    fileprivate func beginTransaction() throws(Failure) {
        guard let beginStatement else { throw Failure(message: "the connection is closed") }
        defer { sqlite3_reset(beginStatement) }
        _ = try step(beginStatement)
    }

    /// Ends the read transaction (a failed read leaves it open: it is rolled back).
    fileprivate func endTransaction() {
        for statement in statements.values { sqlite3_reset(statement) }
        guard let handle, sqlite3_get_autocommit(handle) == 0 else { return }
        if let commitStatement, sqlite3_step(commitStatement) == SQLITE_DONE {
            sqlite3_reset(commitStatement)
            return
        }
        if let commitStatement { sqlite3_reset(commitStatement) }
        sqlite3_exec(handle, "ROLLBACK", nil, nil, nil)
    }
}

extension Error {
    fileprivate var message: String {
        (self as? RawReadConnection.Failure)?.message ?? String(describing: self)
    }
}

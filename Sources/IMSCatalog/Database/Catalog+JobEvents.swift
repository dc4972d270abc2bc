import Foundation
import GRDB

extension Catalog {
    /// Appends events to a job's log in one transaction and assigns their sequence numbers.
    ///
    /// Sequence numbers grow across the whole catalog, so `jobEvents(jobID, after: last)` returns exactly the
    /// events appended since.
    ///
    /// - Returns: the events as stored, with `sequence` set.
    /// - Throws: ``CatalogError/notFound(kind:id:)`` for an unknown job.
    @discardableResult
    public func appendJobEvents(_ jobID: UUID, _ events: [JobEvent]) throws(CatalogError) -> [JobEvent] {
        guard !events.isEmpty else { return [] }
        return try write("appending \(events.count) events to job \(jobID.imsString)") { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM jobs WHERE id = ?", arguments: [jobID.imsString]) == true else {
                throw CatalogError.notFound(kind: .job, id: jobID.imsString)
            }
            return try Catalog.insertJobEvents(db, jobID, events)
        }
    }

    /// Inserts events of an existing job inside the caller's transaction.
    static func insertJobEvents(_ db: Database, _ jobID: UUID, _ events: [JobEvent]) throws -> [JobEvent] {
        let insert = try db.cachedStatement(
            sql: "INSERT INTO job_events (job_id, time, phase, plugin_id, kind, data) VALUES (?, ?, ?, ?, ?, ?)")
        var stored: [JobEvent] = []
        stored.reserveCapacity(events.count)
        for var event in events {
            try insert.execute(arguments: [jobID.imsString, Columns.micros(event.time), event.phase, event.pluginID, event.kind, event.data])
            event.sequence = db.lastInsertedRowID
            stored.append(event)
        }
        return stored
    }

    /// A job's events after a sequence number, oldest first (for `--follow`: pass the last sequence seen).
    ///
    /// - Parameters:
    ///   - after: return events with a larger sequence (0: from the start).
    ///   - limit: at most this many.
    public func jobEvents(_ jobID: UUID, after sequence: Int64 = 0, limit: Int? = nil) throws(CatalogError) -> [JobEvent] {
        try read("reading events of job \(jobID.imsString)") { db in
            var sql = "SELECT sequence, time, phase, plugin_id, kind, data FROM job_events WHERE job_id = ? AND sequence > ? ORDER BY sequence"
            if let limit { sql += " LIMIT \(max(0, limit))" }
            let cursor = try Row.fetchCursor(db, sql: sql, arguments: [jobID.imsString, sequence])
            var events: [JobEvent] = []
            while let row = try cursor.next() {
                events.append(JobEvent(sequence: row[0], time: Columns.date(row[1]), phase: row[2], pluginID: row[3], kind: row[4], data: row[5]))
            }
            return events
        }
    }
}

import Foundation
import GRDB

extension Catalog {
    static let publicKeyColumns = "id, created, name, public_key, deleted"

    static func decodePublicKey(_ row: Row) throws -> PublicKeyRecord {
        PublicKeyRecord(
            id: try Columns.uuid(row[0], kind: .publicKey), created: Columns.date(row[1]), name: row[2],
            publicKey: row[3], deleted: Columns.optionalDate(row[4]))
    }

    static func fetchPublicKey(_ db: Database, _ id: UUID, scope: RecordScope) throws -> PublicKeyRecord {
        guard let row = try Row.fetchOne(
            try db.cachedStatement(sql: "SELECT \(publicKeyColumns) FROM public_keys WHERE id = ? AND \(Columns.scopeClause(scope))"),
            arguments: [id.imsString])
        else { throw CatalogError.notFound(kind: .publicKey, id: id.imsString) }
        return try decodePublicKey(row)
    }

    /// Registers a public key. Validate the line first with ``PublicKeyRecord/validateAuthorizedKey(_:)``.
    ///
    /// - Throws: ``CatalogError`` for an empty name or key, or a duplicate id.
    @discardableResult
    public func createPublicKey(_ record: PublicKeyRecord) throws(CatalogError) -> PublicKeyRecord {
        try write("creating public key \(record.id.imsString)") { db in
            try Catalog.insertPublicKey(db, record)
            return record
        }
    }

    static func insertPublicKey(_ db: Database, _ record: PublicKeyRecord) throws {
        try Columns.checkName(record.name)
        guard !record.publicKey.isEmpty else {
            throw CatalogError.invalidField(field: "public_key", reason: "must not be empty")
        }
        if try Bool.fetchOne(db, sql: "SELECT 1 FROM public_keys WHERE id = ?", arguments: [record.id.imsString]) == true {
            throw CatalogError.duplicateID(kind: .publicKey, id: record.id.imsString)
        }
        try db.execute(
            sql: "INSERT INTO public_keys (\(Catalog.publicKeyColumns)) VALUES (?, ?, ?, ?, ?)",
            arguments: [record.id.imsString, Columns.micros(record.created), record.name, record.publicKey, record.deleted.map(Columns.micros)])
    }

    /// One public key.
    ///
    /// - Throws: ``CatalogError/notFound(kind:id:)``.
    public func publicKey(_ id: UUID, scope: RecordScope = .live) throws(CatalogError) -> PublicKeyRecord {
        try read("reading public key \(id.imsString)") { db in try Catalog.fetchPublicKey(db, id, scope: scope) }
    }

    /// Live public keys (or soft-deleted ones), oldest first.
    public func publicKeys(deleted: Bool = false) throws(CatalogError) -> [PublicKeyRecord] {
        try read("listing public keys") { db in
            let cursor = try Row.fetchCursor(
                db,
                sql: "SELECT \(Catalog.publicKeyColumns) FROM public_keys WHERE \(Columns.scopeClause(deleted ? .deleted : .live)) ORDER BY created, id")
            var records: [PublicKeyRecord] = []
            while let row = try cursor.next() { records.append(try Catalog.decodePublicKey(row)) }
            return records
        }
    }

    /// Soft-deletes a live public key (IMS v3), keeping every field.
    @discardableResult
    public func softDeletePublicKey(_ id: UUID) throws(CatalogError) -> PublicKeyRecord {
        try softDelete(PublicKeyRecord.self, id).record
    }

    /// Restores a soft-deleted public key.
    @discardableResult
    public func undeletePublicKey(_ id: UUID) throws(CatalogError) -> PublicKeyRecord {
        try undelete(PublicKeyRecord.self, id).record
    }

    /// Removes a public key record for good (live or soft-deleted).
    @discardableResult
    public func deletePublicKeyPermanently(_ id: UUID, scope: RecordScope = .any) throws(CatalogError) -> PublicKeyRecord {
        try deletePermanently(PublicKeyRecord.self, id, scope: scope)
    }
}

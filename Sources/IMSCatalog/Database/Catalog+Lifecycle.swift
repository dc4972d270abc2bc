import Foundation
import GRDB

/// A record kind that can be soft-deleted, undeleted and deleted for good (recipes, images, public keys): IMS v3
/// keeps every field of a deleted record, and so does the catalog.
protocol LifecycleRecord: Sendable {
    /// The table holding the records.
    static var table: String { get }
    /// The kind, for errors.
    static var kind: CatalogError.RecordKind { get }
    /// Reads one record in `scope`, or throws ``CatalogError/notFound(kind:id:)``.
    static func fetch(_ db: Database, _ id: UUID, scope: RecordScope) throws -> Self
    var deleted: Date? { get set }
    /// Whether the kind has a link (recipes and images; not public keys).
    static var hasLink: Bool { get }
    /// The record's link, for kinds that have one.
    var lifecycleLink: ArtifactLink? { get set }
}

/// Kinds without a link (public keys).
extension LifecycleRecord {
    static var hasLink: Bool { false }
    var lifecycleLink: ArtifactLink? {
        get { nil }
        set {}
    }
}

/// A lifecycle record kind with a link to its artifact (recipes and images).
protocol LinkedLifecycleRecord: LifecycleRecord {
    var link: ArtifactLink? { get set }
}

extension LinkedLifecycleRecord {
    static var hasLink: Bool { true }
    var lifecycleLink: ArtifactLink? {
        get { link }
        set { link = newValue }
    }
}

extension Catalog {
    /// Soft-deletes a live record: `deleted` is set, every other field is kept, and a link becomes `relink(link)`.
    func softDelete<Record: LifecycleRecord>(
        _ type: Record.Type, _ id: UUID, relink: (ArtifactLink) throws -> ArtifactLink = { $0 }
    ) throws(CatalogError) -> Relinked<Record> {
        try write("soft-deleting \(Record.kind.rawValue) \(id.imsString)") { db in
            var record = try Record.fetch(db, id, scope: .live)
            let previous = record.lifecycleLink
            record.lifecycleLink = try previous.map { try Catalog.relinked($0, relink) }
            record.deleted = IMSTimestamp.now()
            try Self.saveLifecycle(db, record, id: id)
            return Relinked(record: record, previousLink: previous)
        }
    }

    /// Restores a soft-deleted record with every field; a link becomes `relink(link)` and must not be taken by a
    /// live record meanwhile (``CatalogError/linkInUse(kind:link:otherID:)``).
    func undelete<Record: LifecycleRecord>(
        _ type: Record.Type, _ id: UUID, relink: (ArtifactLink) throws -> ArtifactLink = { $0 }
    ) throws(CatalogError) -> Relinked<Record> {
        try write("undeleting \(Record.kind.rawValue) \(id.imsString)") { db in
            var record = try Record.fetch(db, id, scope: .deleted)
            let previous = record.lifecycleLink
            record.lifecycleLink = try previous.map { try Catalog.relinked($0, relink) }
            record.deleted = nil
            if let link = record.lifecycleLink {
                try Columns.checkLinkUnique(db, table: Record.table, kind: Record.kind, link: link, excluding: id.imsString)
            }
            try Self.saveLifecycle(db, record, id: id)
            return Relinked(record: record, previousLink: previous)
        }
    }

    /// Removes a record for good (with its metadata rows, by cascade); returns it.
    func deletePermanently<Record: LifecycleRecord>(_ type: Record.Type, _ id: UUID, scope: RecordScope) throws(CatalogError) -> Record {
        try write("deleting \(Record.kind.rawValue) \(id.imsString)") { db in
            let record = try Record.fetch(db, id, scope: scope)
            try db.execute(sql: "DELETE FROM \(Record.table) WHERE id = ?", arguments: [id.imsString])
            return record
        }
    }

    /// IMS's link rule for an update: the link a record already has is accepted again (idempotent), a different one
    /// is ``CatalogError/linkConflict(kind:id:current:requested:)``, and a new link must not be used by another live
    /// record (``CatalogError/linkInUse(kind:link:otherID:)``).
    static func applyLink<Record: LifecycleRecord>(_ db: Database, _ record: inout Record, _ link: ArtifactLink, id: UUID) throws {
        try link.validate()
        if let current = record.lifecycleLink {
            if current.path != link.path || current.type != link.type {
                throw CatalogError.linkConflict(kind: Record.kind, id: id.imsString, current: current.path, requested: link.path)
            }
        } else {
            try Columns.checkLinkUnique(db, table: Record.table, kind: Record.kind, link: link, excluding: id.imsString)
            record.lifecycleLink = link
        }
    }

    private static func saveLifecycle<Record: LifecycleRecord>(_ db: Database, _ record: Record, id: UUID) throws {
        let deleted = record.deleted.map(Columns.micros)
        if !Record.hasLink {
            try db.execute(sql: "UPDATE \(Record.table) SET deleted = ? WHERE id = ?", arguments: [deleted, id.imsString])
        } else {
            let link = record.lifecycleLink
            try db.execute(
                sql: "UPDATE \(Record.table) SET deleted = ?, link_path = ?, link_etag = ?, link_type = ? WHERE id = ?",
                arguments: [deleted, link?.path, link?.etag, link?.type.rawValue, id.imsString])
        }
    }
}

extension RecipeRecord: LinkedLifecycleRecord {
    static let table = "recipes"
    static let kind = CatalogError.RecordKind.recipe
    static func fetch(_ db: Database, _ id: UUID, scope: RecordScope) throws -> RecipeRecord { try Catalog.fetchRecipe(db, id, scope: scope) }
}

extension ImageRecord: LinkedLifecycleRecord {
    static let table = "images"
    static let kind = CatalogError.RecordKind.image
    static func fetch(_ db: Database, _ id: UUID, scope: RecordScope) throws -> ImageRecord { try Catalog.fetchImage(db, id, scope: scope) }
}

extension PublicKeyRecord: LifecycleRecord {
    static let table = "public_keys"
    static let kind = CatalogError.RecordKind.publicKey
    static func fetch(_ db: Database, _ id: UUID, scope: RecordScope) throws -> PublicKeyRecord { try Catalog.fetchPublicKey(db, id, scope: scope) }
}

import Foundation
import GRDB

/// Changes to an image (IMS image PATCH, processed in order: link, arch, metadata); `nil` fields are left alone.
public struct ImageUpdate: Sendable, Hashable {
    /// Set the link (idempotent for the same link; a conflict when a different one is set). Validate the
    /// manifest through the store first (IMS §6.3).
    public var link: ArtifactLink?
    public var arch: Arch?
    public var name: String?
    /// Metadata changes, applied in order.
    public var metadata: [MetadataChange]

    public init(link: ArtifactLink? = nil, arch: Arch? = nil, name: String? = nil, metadata: [MetadataChange] = []) {
        self.link = link
        self.arch = arch
        self.name = name
        self.metadata = metadata
    }
}

/// One metadata change: `set` a key to a value, or `remove` a key.
public struct MetadataChange: Sendable, Hashable {
    public var operation: MetadataOperation
    public var key: String
    /// The new value (`set` only).
    public var value: String?

    public init(operation: MetadataOperation, key: String, value: String? = nil) {
        self.operation = operation
        self.key = key
        self.value = value
    }

    /// `set key=value`.
    public static func set(_ key: String, _ value: String) -> MetadataChange {
        MetadataChange(operation: .set, key: key, value: value)
    }

    /// `remove key`.
    public static func remove(_ key: String) -> MetadataChange {
        MetadataChange(operation: .remove, key: key)
    }
}

extension Catalog {
    static let imageColumns = "id, created, name, link_path, link_etag, link_type, arch, deleted"

    static func decodeImage(_ row: Row, metadata: [String: String]) throws -> ImageRecord {
        let idText: String = row[0]
        return ImageRecord(
            id: try Columns.uuid(idText, kind: .image),
            created: Columns.date(row[1]),
            name: row[2],
            link: try Columns.link(path: row[3], etag: row[4], type: row[5], kind: .image, id: idText),
            arch: try Columns.enumeration(row[6], Arch.self, kind: .image, id: idText),
            metadata: metadata,
            deleted: Columns.optionalDate(row[7]))
    }

    static func fetchImage(_ db: Database, _ id: UUID, scope: RecordScope) throws -> ImageRecord {
        // Cached statements: a record read is the API's hottest path, and preparing its SQL cost more than running it.
        guard let row = try Row.fetchOne(
            try db.cachedStatement(sql: "SELECT \(imageColumns) FROM images WHERE id = ? AND \(Columns.scopeClause(scope))"),
            arguments: [id.imsString])
        else { throw CatalogError.notFound(kind: .image, id: id.imsString) }
        var metadata: [String: String] = [:]
        let rows = try Row.fetchCursor(
            try db.cachedStatement(sql: "SELECT key, value FROM image_metadata WHERE image_id = ?"), arguments: [id.imsString])
        while let entry = try rows.next() { metadata[entry[0]] = entry[1] }
        return try decodeImage(row, metadata: metadata)
    }

    static func insertImages(_ db: Database, _ records: [ImageRecord]) throws {
        let insert = try db.cachedStatement(sql: "INSERT INTO images (\(imageColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        let insertMetadata = try db.cachedStatement(sql: "INSERT INTO image_metadata (image_id, key, value) VALUES (?, ?, ?)")
        let exists = try db.cachedStatement(sql: "SELECT 1 FROM images WHERE id = ?")
        for record in records {
            let id = record.id.imsString
            try Columns.checkName(record.name)
            if let link = record.link {
                try link.validate()
                if record.deleted == nil {
                    try Columns.checkLinkUnique(db, table: "images", kind: .image, link: link, excluding: id)
                }
            }
            if try Bool.fetchOne(exists, arguments: [id]) == true {
                throw CatalogError.duplicateID(kind: .image, id: id)
            }
            try insert.execute(arguments: [
                id, Columns.micros(record.created), record.name, record.link?.path, record.link?.etag,
                record.link?.type.rawValue, record.arch.rawValue, record.deleted.map(Columns.micros),
            ])
            for (key, value) in record.metadata {
                try insertMetadata.execute(arguments: [id, key, value])
            }
        }
    }

    /// Registers an image (IMS `POST /images`). A link must already have been validated through the store.
    ///
    /// - Returns: the stored record.
    /// - Throws: ``CatalogError`` for an empty name, a malformed link, a link used by another image, or a
    ///   duplicate id.
    @discardableResult
    public func createImage(_ record: ImageRecord) throws(CatalogError) -> ImageRecord {
        try write("creating image \(record.id.imsString)") { db in
            try Catalog.insertImages(db, [record])
            return try Catalog.fetchImage(db, record.id, scope: .any)
        }
    }

    /// Registers many images in one transaction (imports, benchmarks). All or nothing.
    public func createImages(_ records: [ImageRecord]) throws(CatalogError) {
        try write("creating \(records.count) images") { db in try Catalog.insertImages(db, records) }
    }

    /// One image.
    ///
    /// - Throws: ``CatalogError/notFound(kind:id:)``.
    public func image(_ id: UUID, scope: RecordScope = .live) throws(CatalogError) -> ImageRecord {
        try read("reading image \(id.imsString)") { db in try Catalog.fetchImage(db, id, scope: scope) }
    }

    /// Live images (or soft-deleted ones), oldest first.
    ///
    /// Two queries whatever the count (the images, then all their metadata), read in one snapshot.
    public func images(deleted: Bool = false) throws(CatalogError) -> [ImageRecord] {
        let scope = Columns.scopeClause(deleted ? .deleted : .live)
        return try read("listing images") { db in
            var metadata: [String: [String: String]] = [:]
            let entries = try Row.fetchCursor(
                db,
                sql: "SELECT m.image_id, m.key, m.value FROM image_metadata m JOIN images i ON i.id = m.image_id WHERE i.\(scope)")
            while let entry = try entries.next() {
                metadata[entry[0], default: [:]][entry[1]] = entry[2]
            }
            var records: [ImageRecord] = []
            records.reserveCapacity(try Int.fetchOne(db, sql: "SELECT count(*) FROM images WHERE \(scope)") ?? 0)
            let rows = try Row.fetchCursor(db, sql: "SELECT \(Catalog.imageColumns) FROM images WHERE \(scope) ORDER BY created, id")
            if metadata.isEmpty {
                while let row = try rows.next() { records.append(try Catalog.decodeImage(row, metadata: [:])) }
            } else {
                while let row = try rows.next() {
                    let id: String = row[0]
                    records.append(try Catalog.decodeImage(row, metadata: metadata[id] ?? [:]))
                }
            }
            return records
        }
    }

    /// Applies an IMS-style PATCH to a live image, all or nothing: link (see ``updateRecipe(_:_:)`` for the
    /// rules; the manifest must have been validated through the store), then arch, name and metadata changes.
    ///
    /// - Returns: the updated record.
    @discardableResult
    public func updateImage(_ id: UUID, _ update: ImageUpdate) throws(CatalogError) -> ImageRecord {
        try write("updating image \(id.imsString)") { db in
            var record = try Catalog.fetchImage(db, id, scope: .live)
            if let link = update.link { try Catalog.applyLink(db, &record, link, id: id) }
            if let arch = update.arch { record.arch = arch }
            if let name = update.name {
                try Columns.checkName(name)
                record.name = name
            }
            try db.execute(
                sql: "UPDATE images SET name = ?, link_path = ?, link_etag = ?, link_type = ?, arch = ? WHERE id = ?",
                arguments: [record.name, record.link?.path, record.link?.etag, record.link?.type.rawValue, record.arch.rawValue, id.imsString])
            for change in update.metadata {
                switch change.operation {
                case .set:
                    guard let value = change.value else {
                        throw CatalogError.invalidField(field: "metadata", reason: "'set' of '\(change.key)' needs a value")
                    }
                    try db.execute(
                        sql: "INSERT INTO image_metadata (image_id, key, value) VALUES (?, ?, ?) ON CONFLICT (image_id, key) DO UPDATE SET value = excluded.value",
                        arguments: [id.imsString, change.key, value])
                    record.metadata[change.key] = value
                case .remove:
                    try db.execute(sql: "DELETE FROM image_metadata WHERE image_id = ? AND key = ?", arguments: [id.imsString, change.key])
                    record.metadata[change.key] = nil
                }
            }
            return record
        }
    }

    /// Sets a live image's link (see ``updateImage(_:_:)``).
    @discardableResult
    public func setImageLink(_ id: UUID, _ link: ArtifactLink) throws(CatalogError) -> ImageRecord {
        try updateImage(id, ImageUpdate(link: link))
    }

    /// Sets or removes one metadata key of a live image (IMS PATCH `{"operation", "key", "value"}`).
    /// Removing a missing key does nothing.
    @discardableResult
    public func updateMetadata(_ id: UUID, operation: MetadataOperation, key: String, value: String? = nil) throws(CatalogError) -> ImageRecord {
        try updateImage(id, ImageUpdate(metadata: [MetadataChange(operation: operation, key: key, value: value)]))
    }

    /// Soft-deletes a live image, keeping every field and its metadata; the link becomes `relink(link)`
    /// (normally `…/deleted/<id>/deleted_manifest.json`).
    ///
    /// - Returns: the deleted record and the previous (manifest) link, which the caller soft-deletes in the store.
    @discardableResult
    public func softDeleteImage(_ id: UUID, relink: (ArtifactLink) throws -> ArtifactLink = { $0 }) throws(CatalogError) -> Relinked<ImageRecord> {
        try softDelete(ImageRecord.self, id, relink: relink)
    }

    /// Restores a soft-deleted image with every field; the link becomes `relink(link)` (the original
    /// manifest, read from the deleted manifest).
    ///
    /// - Throws: ``CatalogError/notFound(kind:id:)``; ``CatalogError/linkInUse(kind:link:otherID:)`` when a
    ///   live image took the link meanwhile.
    @discardableResult
    public func undeleteImage(_ id: UUID, relink: (ArtifactLink) throws -> ArtifactLink = { $0 }) throws(CatalogError) -> Relinked<ImageRecord> {
        try undelete(ImageRecord.self, id, relink: relink)
    }

    /// Removes an image record and its metadata for good (live or soft-deleted). Delete its artifacts first.
    ///
    /// - Returns: the removed record.
    @discardableResult
    public func deleteImagePermanently(_ id: UUID, scope: RecordScope = .any) throws(CatalogError) -> ImageRecord {
        try deletePermanently(ImageRecord.self, id, scope: scope)
    }
}

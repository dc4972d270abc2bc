import Foundation
import GRDB

/// Changes to a recipe (IMS recipe PATCH); `nil` fields are left alone.
public struct RecipeUpdate: Sendable, Hashable {
    /// Set the link (idempotent for the same link; a conflict when a different one is set).
    public var link: ArtifactLink?
    /// Replace the whole template dictionary.
    public var templateDictionary: [TemplateVariable]?
    public var arch: Arch?
    public var requireDKMS: Bool?
    public var name: String?
    public var linuxDistribution: LinuxDistribution?
    public var recipeType: RecipeType?

    public init(
        link: ArtifactLink? = nil, templateDictionary: [TemplateVariable]? = nil, arch: Arch? = nil,
        requireDKMS: Bool? = nil, name: String? = nil, linuxDistribution: LinuxDistribution? = nil,
        recipeType: RecipeType? = nil
    ) {
        self.link = link
        self.templateDictionary = templateDictionary
        self.arch = arch
        self.requireDKMS = requireDKMS
        self.name = name
        self.linuxDistribution = linuxDistribution
        self.recipeType = recipeType
    }
}

extension Catalog {
    static let recipeColumns =
        "id, created, name, link_path, link_etag, link_type, recipe_type, linux_distribution, template_dictionary, require_dkms, arch, deleted"

    static func decodeRecipe(_ row: Row) throws -> RecipeRecord {
        let idText: String = row[0]
        return RecipeRecord(
            id: try Columns.uuid(idText, kind: .recipe),
            created: Columns.date(row[1]),
            name: row[2],
            link: try Columns.link(path: row[3], etag: row[4], type: row[5], kind: .recipe, id: idText),
            recipeType: try Columns.enumeration(row[6], RecipeType.self, kind: .recipe, id: idText),
            linuxDistribution: try Columns.enumeration(row[7], LinuxDistribution.self, kind: .recipe, id: idText),
            templateDictionary: try Columns.json(row[8], [TemplateVariable].self, kind: .recipe, id: idText, field: "template_dictionary"),
            requireDKMS: row[9],
            arch: try Columns.enumeration(row[10], Arch.self, kind: .recipe, id: idText),
            deleted: Columns.optionalDate(row[11]))
    }

    static func insertRecipe(_ db: Database, _ record: RecipeRecord) throws {
        try Columns.checkName(record.name)
        if let link = record.link {
            try link.validate()
            if record.deleted == nil {
                try Columns.checkLinkUnique(db, table: "recipes", kind: .recipe, link: link, excluding: record.id.imsString)
            }
        }
        if try Bool.fetchOne(db, sql: "SELECT 1 FROM recipes WHERE id = ?", arguments: [record.id.imsString]) == true {
            throw CatalogError.duplicateID(kind: .recipe, id: record.id.imsString)
        }
        try db.execute(
            sql: "INSERT INTO recipes (\(recipeColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            arguments: [
                record.id.imsString, Columns.micros(record.created), record.name, record.link?.path, record.link?.etag,
                record.link?.type.rawValue, record.recipeType.rawValue, record.linuxDistribution.rawValue,
                try Columns.jsonText(record.templateDictionary), record.requireDKMS, record.arch.rawValue,
                record.deleted.map(Columns.micros),
            ])
    }

    static func fetchRecipe(_ db: Database, _ id: UUID, scope: RecordScope) throws -> RecipeRecord {
        guard let row = try Row.fetchOne(
            try db.cachedStatement(sql: "SELECT \(recipeColumns) FROM recipes WHERE id = ? AND \(Columns.scopeClause(scope))"),
            arguments: [id.imsString])
        else { throw CatalogError.notFound(kind: .recipe, id: id.imsString) }
        return try decodeRecipe(row)
    }

    /// Registers a recipe.
    ///
    /// - Parameter record: the record to store, id and timestamps included (see ``RecipeRecord/init(id:created:name:link:recipeType:linuxDistribution:templateDictionary:requireDKMS:arch:deleted:)``).
    /// - Returns: the stored record.
    /// - Throws: ``CatalogError`` for an empty name, a malformed link, a link used by another recipe, or a
    ///   duplicate id.
    @discardableResult
    public func createRecipe(_ record: RecipeRecord) throws(CatalogError) -> RecipeRecord {
        try write("creating recipe \(record.id.imsString)") { db in
            try Catalog.insertRecipe(db, record)
            return try Catalog.fetchRecipe(db, record.id, scope: .any)
        }
    }

    /// One recipe.
    ///
    /// - Throws: ``CatalogError/notFound(kind:id:)``.
    public func recipe(_ id: UUID, scope: RecordScope = .live) throws(CatalogError) -> RecipeRecord {
        try read("reading recipe \(id.imsString)") { db in try Catalog.fetchRecipe(db, id, scope: scope) }
    }

    /// Live recipes (or soft-deleted ones), oldest first.
    public func recipes(deleted: Bool = false) throws(CatalogError) -> [RecipeRecord] {
        try read("listing recipes") { db in
            let cursor = try Row.fetchCursor(
                db, sql: "SELECT \(Catalog.recipeColumns) FROM recipes WHERE \(Columns.scopeClause(deleted ? .deleted : .live)) ORDER BY created, id")
            var records: [RecipeRecord] = []
            while let row = try cursor.next() { records.append(try Catalog.decodeRecipe(row)) }
            return records
        }
    }

    /// Applies an IMS-style PATCH to a live recipe, all or nothing.
    ///
    /// The link follows IMS: setting the link a recipe already has does nothing; a different link when one is
    /// set is ``CatalogError/linkConflict(kind:id:current:requested:)``; a link used by another live recipe is
    /// ``CatalogError/linkInUse(kind:link:otherID:)``. Checking that the object exists is the caller's job
    /// (through the store).
    ///
    /// - Returns: the updated record.
    @discardableResult
    public func updateRecipe(_ id: UUID, _ update: RecipeUpdate) throws(CatalogError) -> RecipeRecord {
        try write("updating recipe \(id.imsString)") { db in
            var record = try Catalog.fetchRecipe(db, id, scope: .live)
            if let link = update.link { try Catalog.applyLink(db, &record, link, id: id) }
            if let name = update.name {
                try Columns.checkName(name)
                record.name = name
            }
            if let arch = update.arch { record.arch = arch }
            if let requireDKMS = update.requireDKMS { record.requireDKMS = requireDKMS }
            if let templateDictionary = update.templateDictionary { record.templateDictionary = templateDictionary }
            if let distribution = update.linuxDistribution { record.linuxDistribution = distribution }
            if let recipeType = update.recipeType { record.recipeType = recipeType }
            try db.execute(
                sql: """
                    UPDATE recipes SET name = ?, link_path = ?, link_etag = ?, link_type = ?, recipe_type = ?,
                        linux_distribution = ?, template_dictionary = ?, require_dkms = ?, arch = ? WHERE id = ?
                    """,
                arguments: [
                    record.name, record.link?.path, record.link?.etag, record.link?.type.rawValue,
                    record.recipeType.rawValue, record.linuxDistribution.rawValue,
                    try Columns.jsonText(record.templateDictionary), record.requireDKMS, record.arch.rawValue,
                    id.imsString,
                ])
            return record
        }
    }

    /// Sets a live recipe's link (see ``updateRecipe(_:_:)`` for the rules).
    @discardableResult
    public func setRecipeLink(_ id: UUID, _ link: ArtifactLink) throws(CatalogError) -> RecipeRecord {
        try updateRecipe(id, RecipeUpdate(link: link))
    }

    /// Soft-deletes a live recipe: every field is kept, `deleted` is set and the link is replaced by
    /// `relink(link)` (normally the same object under `deleted/`).
    ///
    /// - Parameter relink: maps the current link to the soft-deleted location; runs inside the transaction,
    ///   so it must not do I/O.
    /// - Returns: the deleted record and its previous link, which the caller moves in the store.
    @discardableResult
    public func softDeleteRecipe(_ id: UUID, relink: (ArtifactLink) throws -> ArtifactLink = { $0 }) throws(CatalogError) -> Relinked<RecipeRecord> {
        try softDelete(RecipeRecord.self, id, relink: relink)
    }

    /// Restores a soft-deleted recipe with every field; the link becomes `relink(link)` (normally the object
    /// back outside `deleted/`).
    ///
    /// - Throws: ``CatalogError/notFound(kind:id:)`` when no deleted recipe has this id;
    ///   ``CatalogError/linkInUse(kind:link:otherID:)`` when a live recipe took the link meanwhile.
    @discardableResult
    public func undeleteRecipe(_ id: UUID, relink: (ArtifactLink) throws -> ArtifactLink = { $0 }) throws(CatalogError) -> Relinked<RecipeRecord> {
        try undelete(RecipeRecord.self, id, relink: relink)
    }

    /// Removes a recipe record for good (live or soft-deleted). Delete its stored object first.
    ///
    /// - Returns: the removed record, so the caller knows which object to delete.
    @discardableResult
    public func deleteRecipePermanently(_ id: UUID, scope: RecordScope = .any) throws(CatalogError) -> RecipeRecord {
        try deletePermanently(RecipeRecord.self, id, scope: scope)
    }

    static func relinked(_ link: ArtifactLink, _ relink: (ArtifactLink) throws -> ArtifactLink) throws -> ArtifactLink {
        let result: ArtifactLink
        do {
            result = try relink(link)
        } catch let error as CatalogError {
            throw error
        } catch {
            throw CatalogError.invalidField(field: "link", reason: "cannot relocate \(link.path): \(error)")
        }
        try result.validate()
        return result
    }
}

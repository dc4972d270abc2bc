import Foundation
import IMSCatalog
import IMSStore

/// Soft delete, undelete and permanent delete of recipes and images, keeping the catalog and the artifact store in
/// step (IMS v3): records keep every field, their objects move under `deleted/` and back, and when one side cannot
/// change the other is put back, so nothing is left half-deleted.
public struct RecordLifecycle: Sendable {
    public var catalog: Catalog
    public var store: any ArtifactStore

    public init(catalog: Catalog, store: any ArtifactStore) {
        self.catalog = catalog
        self.store = store
    }

    /// What a permanent delete removed; `unstoredLink` is a link outside this store, whose object was left alone.
    public struct Removal<Record: Sendable>: Sendable {
        public var record: Record
        public var unstoredLink: String?
    }

    // MARK: Recipes

    /// Soft-deletes a recipe: the record first (a move keeps the etag, so the new link is known in advance), then
    /// its archive; if the move fails, the record is restored.
    public func softDeleteRecipe(_ id: UUID) async throws -> RecipeRecord {
        let store = self.store
        let deleted = try catalog.softDeleteRecipe(id) { link in
            guard store.key(for: link.path) != nil else { return link }
            return ArtifactLink(path: try store.deletedURL(for: link.path), etag: link.etag, type: link.type)
        }
        if let previous = deleted.previousLink, store.key(for: previous.path) != nil {
            do {
                _ = try await RecipeArtifacts(store: store).softDelete(url: previous.path)
            } catch {
                _ = try? catalog.undeleteRecipe(id) { _ in previous }
                throw error
            }
        }
        return deleted.record
    }

    /// Restores a soft-deleted recipe and its archive; if the archive cannot move back, the record is deleted again.
    public func undeleteRecipe(_ id: UUID) async throws -> RecipeRecord {
        let store = self.store
        let restored = try catalog.undeleteRecipe(id) { link in
            guard let key = store.key(for: link.path), key.isDeleted else { return link }
            return ArtifactLink(path: try store.restoredURL(for: link.path), etag: link.etag, type: link.type)
        }
        if let previous = restored.previousLink, let key = store.key(for: previous.path), key.isDeleted {
            do {
                _ = try await RecipeArtifacts(store: store).undelete(url: previous.path)
            } catch {
                _ = try? catalog.softDeleteRecipe(id) { _ in previous }
                throw error
            }
        }
        return restored.record
    }

    /// Deletes a recipe's archive (when it is in this store) and then its record, for good.
    public func deleteRecipePermanently(_ id: UUID) async throws -> Removal<RecipeRecord> {
        let record = try catalog.recipe(id, scope: .any)
        let unstored = try await deleteLinked(record.link) { try await RecipeArtifacts(store: store).hardDelete(url: $0) }
        return Removal(record: try catalog.deleteRecipePermanently(id), unstoredLink: unstored)
    }

    // MARK: Images

    /// Soft-deletes an image: its objects first (the deleted manifest's etag is known only once written), then the
    /// record; if the record cannot change, the objects move back.
    public func softDeleteImage(_ id: UUID) async throws -> ImageRecord {
        let artifacts = ImageArtifacts(store: store)
        let record = try catalog.image(id)
        var relocated: ImageArtifacts.Relocation?
        if let link = record.link, store.key(for: link.path) != nil {
            relocated = try await artifacts.softDelete(imageID: id, manifestURL: link.path)
        }
        do {
            return try catalog.softDeleteImage(id) { link in try relocated.map { try Self.artifactLink($0.link) } ?? link }.record
        } catch {
            if let relocated { _ = try? await artifacts.undelete(deletedManifestURL: relocated.link.path) }
            throw error
        }
    }

    /// Restores a soft-deleted image and its objects; if the record cannot change, the objects go back under
    /// `deleted/`.
    public func undeleteImage(_ id: UUID) async throws -> ImageRecord {
        let artifacts = ImageArtifacts(store: store)
        let record = try catalog.image(id, scope: .deleted)
        var relocated: ImageArtifacts.Relocation?
        if let link = record.link, let key = store.key(for: link.path), key.isDeleted {
            relocated = try await artifacts.undelete(deletedManifestURL: link.path)
        }
        do {
            return try catalog.undeleteImage(id) { link in try relocated.map { try Self.artifactLink($0.link) } ?? link }.record
        } catch {
            if let relocated { _ = try? await artifacts.softDelete(imageID: id, manifestURL: relocated.link.path) }
            throw error
        }
    }

    /// Deletes an image's artifacts and manifest (when in this store) and then its record, for good.
    public func deleteImagePermanently(_ id: UUID) async throws -> Removal<ImageRecord> {
        let record = try catalog.image(id, scope: .any)
        let unstored = try await deleteLinked(record.link) { try await ImageArtifacts(store: store).hardDelete(manifestURL: $0) }
        return Removal(record: try catalog.deleteImagePermanently(id), unstoredLink: unstored)
    }

    // MARK: Support

    /// Deletes what `link` names when it is in this store; returns the link's path when it is not.
    private func deleteLinked(_ link: ArtifactLink?, _ delete: (String) async throws -> Void) async throws -> String? {
        guard let link else { return nil }
        guard store.key(for: link.path) != nil else { return link.path }
        try await delete(link.path)
        return nil
    }

    /// A store link as a catalog link.
    static func artifactLink(_ link: ManifestLink) throws -> ArtifactLink {
        try ArtifactLink(url: link.path, etag: link.etag)
    }
}

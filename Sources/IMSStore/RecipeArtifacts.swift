import Foundation

/// Recipe archives in any ``ArtifactStore``: `ims/recipes/<recipe-id>/recipe.tar.gz` (IMS §7.1, §7.3), and
/// their soft delete, undelete and hard delete (IMS §7.4).
public struct RecipeArtifacts: Sendable {
    /// The store holding the archives.
    public let store: any ArtifactStore

    public init(store: any ArtifactStore) {
        self.store = store
    }

    /// Stores a recipe archive at `recipes/<recipe-id>/recipe.tar.gz` in the `ims` bucket, with the metadata
    /// `md5sum` and `content-type: application/x-compressed-tar`.
    ///
    /// - Returns: the stored object (its link is `store.link(for:)`).
    public func store(recipeID: UUID, archive path: String) async throws(StoreError) -> StoredObject {
        try await store.put(file: path, key: .recipeArchive(recipeID), metadata: ["content-type": "application/x-compressed-tar"])
    }

    /// The object a recipe link names, which must exist (IMS HEADs the link when it is set).
    ///
    /// - Throws: ``StoreError/notInStore(url:store:)`` or ``StoreError/notFound(url:)``.
    public func check(url: String) async throws(StoreError) -> StoredObject {
        let key = try store.requireKey(for: url)
        guard let object = try await store.head(key) else { throw StoreError.notFound(url: url) }
        return object
    }

    /// Moves a recipe archive under `deleted/`. A missing archive is skipped, as IMS does.
    ///
    /// - Returns: the new link.
    public func softDelete(url: String) async throws(StoreError) -> ManifestLink {
        try await relocate(url: url, to: try store.requireKey(for: url).deleted)
    }

    /// Moves a soft-deleted recipe archive back.
    ///
    /// - Throws: ``StoreError/notDeleted(url:)`` when the key does not start with `deleted/`.
    public func undelete(url: String) async throws(StoreError) -> ManifestLink {
        let key = try store.requireKey(for: url)
        guard key.isDeleted else { throw StoreError.notDeleted(url: url) }
        return try await relocate(url: url, to: try key.restored())
    }

    /// Deletes a recipe archive for good (missing is fine).
    public func hardDelete(url: String) async throws(StoreError) {
        try await store.delete(try store.requireKey(for: url))
    }

    private func relocate(url: String, to target: ObjectKey) async throws(StoreError) -> ManifestLink {
        let key = try store.requireKey(for: url)
        if try await store.head(key) != nil {
            return store.link(for: try await store.move(key, to: target))
        }
        if let existing = try await store.head(target) { return store.link(for: existing) }
        return ManifestLink(etag: "", path: store.url(for: target), type: store.linkType)
    }
}

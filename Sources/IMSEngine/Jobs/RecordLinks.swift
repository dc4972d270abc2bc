import Foundation
import IMSCatalog
import IMSStore

/// The rules for a link a user gives a recipe or an image (IMS §5.2, §6.3), shared by the command line and the
/// server: a recipe link must name an object in the store; an image link must name a valid manifest (version 1.0,
/// exactly one rootfs, every artifact present, at most 1 MiB).
public enum RecordLinks {
    /// A recipe link: the object must exist in `store`; the link carries its etag.
    ///
    /// - Throws: ``StoreError`` (the object is missing, or not in this store), ``CatalogError`` (not a URL ims knows).
    public static func recipeLink(_ url: String, store: any ArtifactStore) async throws -> ArtifactLink {
        let object = try await RecipeArtifacts(store: store).check(url: url)
        return try ArtifactLink(url: url, etag: object.etag)
    }

    /// An image link: the manifest is validated through `store`.
    ///
    /// - Returns: the link with the manifest's etag, and warnings (an etag that differs from the store's).
    public static func imageLink(_ url: String, etag: String? = nil, store: any ArtifactStore) async throws -> (link: ArtifactLink, warnings: [String]) {
        let validation = try await ImageArtifacts(store: store).validate(manifestURL: url, etag: etag)
        return (try ArtifactLink(url: url, etag: validation.manifestObject.etag), validation.warnings)
    }

    /// The link to hand a PATCH of a record whose link is `current`, following IMS: the same link again is accepted
    /// without a store round trip; a different one is passed on unchecked, so the catalog reports the conflict (409);
    /// a first link is checked by `check`.
    public static func forUpdate(
        _ url: String, current: ArtifactLink?, check: (String) async throws -> ArtifactLink
    ) async throws -> ArtifactLink {
        if let current {
            return current.path == url ? current : ArtifactLink(path: url, etag: "", type: url.hasPrefix("s3://") ? .s3 : .file)
        }
        return try await check(url)
    }
}

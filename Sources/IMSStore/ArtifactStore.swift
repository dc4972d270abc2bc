import Foundation

/// A place to keep artifacts (recipe archives, image artifacts, manifests), addressed by ``ObjectKey``.
///
/// Implementations: ``LocalArtifactStore`` (`file://`), and S3 through store plugins. Every operation is
/// atomic per object: a put either stores the whole object under its key or nothing.
public protocol ArtifactStore: Sendable {
    /// The store's URL (`file:///var/lib/ims/store`, `s3://endpoint`…).
    var url: String { get }

    /// The link type written for this store's objects: `file` or `s3`.
    var linkType: String { get }

    /// Stores an object, replacing any object with the same key.
    ///
    /// - Parameters:
    ///   - source: the bytes.
    ///   - key: where to store them.
    ///   - metadata: user metadata kept with the object (`md5sum` is added when missing). `md5sum` and
    ///     `sha256sum`, when given, are the caller's digests of the bytes: the store verifies the bytes against
    ///     them (``StoreError/checksumMismatch(url:expected:actual:)``) and need not hash them again first.
    /// - Returns: the stored object with its size and digests.
    /// - Throws: ``StoreError``; when it throws, nothing is visible under `key` (an existing object stays).
    func put(_ source: ArtifactSource, key: ObjectKey, metadata: [String: String]) async throws(StoreError) -> StoredObject

    /// Copies an object into a file (written atomically), verifying its md5.
    ///
    /// - Throws: ``StoreError/notFound(url:)``, ``StoreError/checksumMismatch(url:expected:actual:)``.
    @discardableResult
    func get(_ key: ObjectKey, to path: String) async throws(StoreError) -> StoredObject

    /// Reads a small object into memory, verifying its md5.
    ///
    /// - Throws: ``StoreError/tooLarge(url:size:limit:)`` when it is larger than `limit` bytes.
    func read(_ key: ObjectKey, limit: Int64) async throws(StoreError) -> Data

    /// An object's size, digests and metadata, or `nil` when there is no such object.
    func head(_ key: ObjectKey) async throws(StoreError) -> StoredObject?

    /// Removes an object. Removing a missing object is not an error (as in S3).
    func delete(_ key: ObjectKey) async throws(StoreError)

    /// Copies an object to another key (replacing what is there).
    @discardableResult
    func copy(_ source: ObjectKey, to destination: ObjectKey) async throws(StoreError) -> StoredObject

    /// Moves an object to another key (replacing what is there).
    @discardableResult
    func move(_ source: ObjectKey, to destination: ObjectKey) async throws(StoreError) -> StoredObject

    /// The objects of a bucket whose keys start with `prefix`, sorted by key.
    func list(bucket: String, prefix: String) async throws(StoreError) -> [StoredObject]

    /// The URL of a key in this store.
    func url(for key: ObjectKey) -> String

    /// The key a URL names in this store, or `nil` when the URL is not in this store.
    func key(for url: String) -> ObjectKey?
}

extension ArtifactStore {
    /// Stores a file (see ``put(_:key:metadata:)``).
    @discardableResult
    public func put(file path: String, key: ObjectKey, metadata: [String: String] = [:]) async throws(StoreError) -> StoredObject {
        try await put(.file(path), key: key, metadata: metadata)
    }

    /// Stores bytes (see ``put(_:key:metadata:)``).
    @discardableResult
    public func put(data: Data, key: ObjectKey, metadata: [String: String] = [:]) async throws(StoreError) -> StoredObject {
        try await put(.bytes(data), key: key, metadata: metadata)
    }

    /// The key of a URL, or ``StoreError/notInStore(url:store:)``.
    public func requireKey(for url: String) throws(StoreError) -> ObjectKey {
        guard let key = key(for: url) else { throw StoreError.notInStore(url: url, store: self.url) }
        return key
    }

    /// The URL an object gets when soft-deleted (`…/bucket/deleted/<key>`).
    public func deletedURL(for url: String) throws(StoreError) -> String {
        self.url(for: try requireKey(for: url).deleted)
    }

    /// The URL a soft-deleted object gets back on undelete.
    ///
    /// - Throws: ``StoreError/notDeleted(url:)`` when the key does not start with `deleted/`.
    public func restoredURL(for url: String) throws(StoreError) -> String {
        let key = try requireKey(for: url)
        guard key.isDeleted else { throw StoreError.notDeleted(url: url) }
        return self.url(for: try key.restored())
    }

    /// The link to write for an object of this store.
    public func link(for object: StoredObject) -> ManifestLink {
        ManifestLink(etag: object.etag, path: object.url, type: linkType)
    }
}

/// Opens stores by URL.
public enum ArtifactStores {
    /// Opens the store a URL names.
    ///
    /// - Parameter url: `file:///absolute/path` (a local store, created if missing). `s3://` stores come
    ///   through store plugins and are not available here yet.
    /// - Throws: ``StoreError/unsupportedStore(url:reason:)``.
    public static func open(url: String) throws(StoreError) -> any ArtifactStore {
        if url.hasPrefix("file://") { return try LocalArtifactStore(url: url) }
        if url.hasPrefix("s3://") {
            throw StoreError.unsupportedStore(url: url, reason: "S3 stores are provided by store plugins, which this build does not have yet")
        }
        throw StoreError.unsupportedStore(url: url, reason: "only file:// URLs are supported (file:///absolute/path)")
    }
}

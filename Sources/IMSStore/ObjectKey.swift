import Foundation

/// A bucket and a key inside it, as in S3: `boot-images` + `<image-id>/rootfs`.
///
/// Keys follow IMS (§7.1): image artifacts in the `boot-images` bucket under `<image-id>/`, recipe archives in
/// the `ims` bucket at `recipes/<recipe-id>/recipe.tar.gz`, soft-deleted objects under `deleted/<original key>`
/// in the same bucket.
public struct ObjectKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The bucket (one path component).
    public let bucket: String
    /// The key inside the bucket (`/`-separated, no empty, `.` or `..` components).
    public let key: String

    /// The bucket of image artifacts and manifests.
    public static let imagesBucket = "boot-images"
    /// The bucket of recipe archives.
    public static let recipesBucket = "ims"
    /// The prefix of soft-deleted copies.
    public static let deletedPrefix = "deleted/"
    /// Names reserved by the local store (temporary files and digest sidecars).
    static let temporaryPrefix = ".ims-tmp-"
    static let sidecarSuffix = ".ims-meta.json"

    /// Creates a key after checking it.
    ///
    /// - Throws: ``StoreError/invalidKey(key:reason:)``.
    public init(bucket: String, key: String) throws(StoreError) {
        let full = bucket + "/" + key
        guard !bucket.isEmpty, !bucket.contains("/"), bucket != ".", bucket != ".." else {
            throw StoreError.invalidKey(key: full, reason: "the bucket must be one non-empty path component")
        }
        guard !key.isEmpty else { throw StoreError.invalidKey(key: full, reason: "the key is empty") }
        guard !key.utf8.contains(0) else { throw StoreError.invalidKey(key: full, reason: "it contains a NUL byte") }
        for component in key.split(separator: "/", omittingEmptySubsequences: false) {
            guard !component.isEmpty, component != ".", component != ".." else {
                throw StoreError.invalidKey(key: full, reason: "empty, '.' and '..' path components are not allowed")
            }
            guard !component.hasPrefix(Self.temporaryPrefix), !component.hasSuffix(Self.sidecarSuffix) else {
                throw StoreError.invalidKey(key: full, reason: "names starting with .ims-tmp- or ending with .ims-meta.json are reserved")
            }
        }
        self.bucket = bucket
        self.key = key
    }

    /// For keys built from known-good parts.
    init(trustedBucket bucket: String, key: String) {
        self.bucket = bucket
        self.key = key
    }

    public var description: String { bucket + "/" + key }

    public static func < (lhs: ObjectKey, rhs: ObjectKey) -> Bool {
        (lhs.bucket, lhs.key) < (rhs.bucket, rhs.key)
    }

    /// Whether the key is a soft-deleted copy (`deleted/…`).
    public var isDeleted: Bool { key.hasPrefix(Self.deletedPrefix) }

    /// The soft-deleted location of this key: `deleted/<key>` in the same bucket.
    public var deleted: ObjectKey { ObjectKey(trustedBucket: bucket, key: Self.deletedPrefix + key) }

    /// The original location of a soft-deleted key.
    ///
    /// - Throws: ``StoreError/notDeleted(url:)`` when the key does not start with `deleted/`.
    public func restored() throws(StoreError) -> ObjectKey {
        guard isDeleted else { throw StoreError.notDeleted(url: description) }
        return ObjectKey(trustedBucket: bucket, key: String(key.dropFirst(Self.deletedPrefix.count)))
    }

    /// The last path component.
    public var name: String { key.split(separator: "/").last.map(String.init) ?? key }

    // MARK: - IMS keys

    /// `boot-images/<image-id>/<artifact>` (`rootfs`, `kernel`, `initrd`, `boot_parameters`, `debug_kernel`).
    public static func imageArtifact(_ imageID: UUID, _ type: ImageArtifactType) -> ObjectKey {
        ObjectKey(trustedBucket: imagesBucket, key: imageID.uuidString.lowercased() + "/" + type.keyName)
    }

    /// `boot-images/<image-id>/manifest.json`.
    public static func imageManifest(_ imageID: UUID) -> ObjectKey {
        ObjectKey(trustedBucket: imagesBucket, key: imageID.uuidString.lowercased() + "/manifest.json")
    }

    /// `boot-images/deleted/<image-id>/deleted_manifest.json`.
    public static func deletedImageManifest(_ imageID: UUID) -> ObjectKey {
        ObjectKey(trustedBucket: imagesBucket, key: deletedPrefix + imageID.uuidString.lowercased() + "/deleted_manifest.json")
    }

    /// `ims/recipes/<recipe-id>/recipe.tar.gz`.
    public static func recipeArchive(_ recipeID: UUID) -> ObjectKey {
        ObjectKey(trustedBucket: recipesBucket, key: "recipes/" + recipeID.uuidString.lowercased() + "/recipe.tar.gz")
    }

    /// Parses `s3://bucket/key`.
    public static func parseS3(_ url: String) -> ObjectKey? {
        guard url.hasPrefix("s3://") else { return nil }
        let rest = url.dropFirst(5)
        guard let slash = rest.firstIndex(of: "/") else { return nil }
        return try? ObjectKey(bucket: String(rest[..<slash]), key: String(rest[rest.index(after: slash)...]))
    }
}

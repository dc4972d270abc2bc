import Foundation

/// Everything that can go wrong storing, reading or validating artifacts, with the object or file involved.
public enum StoreError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A key is not acceptable (empty, `..`, reserved names).
    case invalidKey(key: String, reason: String)
    /// No object at this URL.
    case notFound(url: String)
    /// A file-system call failed.
    case io(operation: String, path: String, message: String)
    /// Bytes read back do not have the recorded md5.
    case checksumMismatch(url: String, expected: String, actual: String)
    /// An object is larger than allowed for this use.
    case tooLarge(url: String, size: Int64, limit: Int64)
    /// A store URL this build cannot open.
    case unsupportedStore(url: String, reason: String)
    /// A link points outside the store in use.
    case notInStore(url: String, store: String)
    /// The source of a put failed while being read; nothing was stored.
    case sourceFailed(key: String, message: String)
    /// An image manifest failed validation (IMS §6.3).
    case invalidManifest(url: String, problem: ManifestProblem)
    /// Undelete of an object that is not under `deleted/`.
    case notDeleted(url: String)

    /// A stable, dotted, lowercase identifier for the kind of failure.
    public var code: String {
        switch self {
        case .invalidKey: "store.invalid_key"
        case .notFound: "store.not_found"
        case .io: "store.io"
        case .checksumMismatch: "store.checksum_mismatch"
        case .tooLarge: "store.too_large"
        case .unsupportedStore: "store.unsupported"
        case .notInStore: "store.not_in_store"
        case .sourceFailed: "store.source_failed"
        case .invalidManifest: "store.invalid_manifest"
        case .notDeleted: "store.not_deleted"
        }
    }

    public var description: String {
        switch self {
        case .invalidKey(let key, let reason): "invalid object key '\(key)': \(reason)"
        case .notFound(let url): "no object at \(url)"
        case .io(let operation, let path, let message): "cannot \(operation) \(path): \(message)"
        case .checksumMismatch(let url, let expected, let actual):
            "\(url) is corrupt: its md5 is \(actual), expected \(expected)"
        case .tooLarge(let url, let size, let limit): "\(url) is \(size) bytes, more than the limit of \(limit)"
        case .unsupportedStore(let url, let reason): "cannot open the store \(url): \(reason)"
        case .notInStore(let url, let store): "\(url) is not in the store \(store)"
        case .sourceFailed(let key, let message): "reading the data for \(key) failed, nothing was stored: \(message)"
        case .invalidManifest(let url, let problem): "invalid image manifest \(url): \(problem)"
        case .notDeleted(let url): "\(url) is not a soft-deleted object (its key does not start with deleted/)"
        }
    }

    static func posix(_ operation: String, _ path: String, _ code: Int32 = errno) -> StoreError {
        .io(operation: operation, path: path, message: String(cString: strerror(code)))
    }
}

/// What is wrong with an image manifest (IMS §6.3, plus the structure rules of §6.1).
public enum ManifestProblem: Error, CustomStringConvertible, Sendable, Equatable {
    case tooLarge(size: Int64, limit: Int64)
    case notUTF8
    case notJSON(detail: String)
    case notAnObject
    case missingVersion
    case unsupportedVersion(String)
    case artifactsNotAList
    case artifactNotAnObject(index: Int)
    case artifactTypeMissing(index: Int)
    case linkMissing(index: Int)
    case linkTypeNotAllowed(index: Int, type: String, allowed: [String])
    case linkPathMissing(index: Int)
    case artifactNotInStore(index: Int, path: String)
    case artifactMissing(index: Int, path: String)
    case noRootfs
    case multipleRootfs(count: Int)

    public var description: String {
        switch self {
        case .tooLarge(let size, let limit): "it is \(size) bytes; a manifest must be smaller than \(limit) bytes"
        case .notUTF8: "it is not UTF-8 text"
        case .notJSON(let detail): "it is not JSON (\(detail))"
        case .notAnObject: "it is not a JSON object"
        case .missingVersion: "it has no 'version'"
        case .unsupportedVersion(let version): "version '\(version)' is not supported (only \"1.0\")"
        case .artifactsNotAList: "'artifacts' is missing or not a list"
        case .artifactNotAnObject(let index): "artifacts[\(index)] is not an object"
        case .artifactTypeMissing(let index): "artifacts[\(index)] has no 'type'"
        case .linkMissing(let index): "artifacts[\(index)] has no 'link' object"
        case .linkTypeNotAllowed(let index, let type, let allowed):
            "artifacts[\(index)].link.type '\(type)' is not one of \(allowed.joined(separator: ", "))"
        case .linkPathMissing(let index): "artifacts[\(index)].link has no 'path'"
        case .artifactNotInStore(let index, let path): "artifacts[\(index)] (\(path)) is not in this store"
        case .artifactMissing(let index, let path): "artifacts[\(index)] (\(path)) does not exist"
        case .noRootfs: "no artifact of type \(ImageArtifactType.rootfs.mediaType) (exactly one is required)"
        case .multipleRootfs(let count): "\(count) artifacts of type \(ImageArtifactType.rootfs.mediaType) (exactly one is required)"
        }
    }
}

import Foundation

/// What a store knows about one object.
public struct StoredObject: Hashable, Sendable {
    /// Where it is.
    public var key: ObjectKey
    /// Its URL (`file:///…/bucket/key` or `s3://bucket/key`), as written into links and manifests.
    public var url: String
    /// Size in bytes.
    public var size: Int64
    /// Lowercase hex md5 of the content.
    public var md5: String
    /// Lowercase hex sha256 of the content (empty when the store cannot tell, e.g. S3 without metadata).
    public var sha256: String
    /// The ETag without quotes (md5 hex for the local store).
    public var etag: String
    /// User metadata stored with the object (`md5sum`, `x-shasta-ims-image-id`, …).
    public var metadata: [String: String]

    public init(key: ObjectKey, url: String, size: Int64, md5: String, sha256: String, etag: String, metadata: [String: String] = [:]) {
        self.key = key
        self.url = url
        self.size = size
        self.md5 = md5
        self.sha256 = sha256
        self.etag = etag
        self.metadata = metadata
    }
}

/// Where the bytes of a put come from.
public enum ArtifactSource: Sendable {
    /// A file on disk, read in 1 MiB chunks.
    case file(String)
    /// Bytes in memory (manifests and other small objects).
    case bytes(Data)
    /// Chunks produced by someone else; if the stream throws, nothing is stored.
    case stream(AsyncThrowingStream<Data, any Error>)
}

/// A link as IMS writes it into manifests and records: `{etag, path, type}`.
public struct ManifestLink: Hashable, Sendable, Codable {
    /// The ETag without quotes; may be empty.
    public var etag: String
    /// `s3://bucket/key` or `file:///…/bucket/key`.
    public var path: String
    /// `s3` or `file`.
    public var type: String

    public init(etag: String = "", path: String, type: String) {
        self.etag = etag
        self.path = path
        self.type = type
    }
}

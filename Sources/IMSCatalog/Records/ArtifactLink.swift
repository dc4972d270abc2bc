import Foundation

/// Where a record's artifact lives (IMS `ArtifactLink`): a recipe archive, or an image's manifest.json.
public struct ArtifactLink: Codable, Hashable, Sendable, RecordJSONWritable {
    /// The object's URL: `s3://bucket/key` or `file:///…/bucket/key`. Never empty.
    public var path: String
    /// The object's ETag with quotes stripped (the md5 hex for the local store); IMS's default is `""`.
    public var etag: String
    /// `s3` (IMS's only type) or `file` (ims's local store).
    public var type: ArtifactLinkType

    /// Creates a link.
    public init(path: String, etag: String = "", type: ArtifactLinkType) {
        self.path = path
        self.etag = etag
        self.type = type
    }

    /// Creates a link whose type follows the URL scheme (`s3://` or `file://`).
    ///
    /// - Throws: ``CatalogError/invalidField(field:reason:)`` for an empty path or another scheme.
    public init(url: String, etag: String = "") throws(CatalogError) {
        if url.hasPrefix("s3://") {
            self.init(path: url, etag: etag, type: .s3)
        } else if url.hasPrefix("file://") {
            self.init(path: url, etag: etag, type: .file)
        } else {
            throw CatalogError.invalidField(field: "link.path", reason: "'\(url)' is not an s3:// or file:// URL")
        }
    }

    /// Checks IMS's rules: a non-empty path whose scheme matches the type.
    public func validate() throws(CatalogError) {
        guard !path.isEmpty else { throw CatalogError.invalidField(field: "link.path", reason: "must not be empty") }
        guard path.hasPrefix(type.rawValue + "://") else {
            throw CatalogError.invalidField(field: "link.path", reason: "'\(path)' does not match link type '\(type.rawValue)'")
        }
    }

    enum CodingKeys: String, CodingKey { case path, etag, type }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        path = try c.decode(String.self, forKey: .path)
        etag = try c.decodeIfPresent(String.self, forKey: .etag) ?? ""
        type = try c.decode(ArtifactLinkType.self, forKey: .type)
    }

    public func writeJSON(to writer: inout RecordJSONWriter) {
        writer.beginObject()
        writer.fieldKey("etag")
        writer.string(etag)
        writer.fieldKey("path")
        writer.string(path)
        writer.fieldKey("type")
        writer.string(type.rawValue)
        writer.endObject()
    }
}

/// The kind of store a link points into.
public enum ArtifactLinkType: String, RecordEnumeration {
    /// An S3 object, `s3://bucket/key` (the only type IMS knows).
    case s3
    /// An object in ims's local store, `file:///…/bucket/key`.
    case file

    public static let fieldName = "link.type"
}

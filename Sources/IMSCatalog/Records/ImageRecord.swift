import Foundation

/// An image record (IMS `ImageRecord`): a name, an architecture, free-form metadata and a link to the
/// image's manifest.json.
public struct ImageRecord: Codable, Hashable, Sendable, Identifiable, RecordJSONWritable {
    /// Generated at creation.
    public var id: UUID
    /// When the record was created (microsecond precision, UTC).
    public var created: Date
    /// A name for people (a job's `image_root_archive_name`). Never empty.
    public var name: String
    /// The image's manifest.json, or `nil` while the image is being uploaded.
    public var link: ArtifactLink?
    /// The image's architecture (default `x86_64`).
    public var arch: Arch
    /// Tags (IMS `metadata`, default `{}`).
    public var metadata: [String: String]
    /// When the record was soft-deleted; `nil` for live records.
    public var deleted: Date?

    /// Creates a record with IMS's defaults.
    public init(
        id: UUID = UUID(), created: Date = IMSTimestamp.now(), name: String, link: ArtifactLink? = nil,
        arch: Arch = .x86_64, metadata: [String: String] = [:], deleted: Date? = nil
    ) {
        self.id = id
        self.created = created
        self.name = name
        self.link = link
        self.arch = arch
        self.metadata = metadata
        self.deleted = deleted
    }

    enum CodingKeys: String, CodingKey {
        case id, created, name, link, arch, metadata, deleted
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decodeUUID(forKey: .id)
        created = try c.decodeTimestamp(forKey: .created)
        name = try c.decode(String.self, forKey: .name)
        link = try c.decodeIfPresent(ArtifactLink.self, forKey: .link)
        arch = try c.decodeIfPresent(Arch.self, forKey: .arch) ?? .x86_64
        metadata = try c.decodeIfPresent([String: String].self, forKey: .metadata) ?? [:]
        deleted = try c.decodeTimestampIfPresent(forKey: .deleted)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeUUID(id, forKey: .id)
        try c.encodeTimestamp(created, forKey: .created)
        try c.encode(name, forKey: .name)
        try c.encodeNullable(link, forKey: .link)
        try c.encode(arch, forKey: .arch)
        try c.encode(metadata, forKey: .metadata)
        if let deleted { try c.encodeTimestamp(deleted, forKey: .deleted) }
    }

    public func writeJSON(to writer: inout RecordJSONWriter) {
        writer.beginObject()
        writer.fieldKey("arch")
        writer.string(arch.rawValue)
        writer.fieldKey("created")
        writer.timestamp(created)
        if let deleted {
            writer.fieldKey("deleted")
            writer.timestamp(deleted)
        }
        writer.fieldKey("id")
        writer.uuid(id)
        writer.fieldKey("link")
        if let link { writer.value(link) } else { writer.null() }
        writer.fieldKey("metadata")
        writer.stringMap(metadata)
        writer.fieldKey("name")
        writer.string(name)
        writer.endObject()
    }
}

/// A change to an image's metadata (IMS PATCH `{"operation": "set"|"remove", "key", "value"}`).
public enum MetadataOperation: String, Sendable, Codable, CaseIterable {
    /// Insert or replace the key.
    case set
    /// Remove the key; removing a missing key does nothing.
    case remove
}

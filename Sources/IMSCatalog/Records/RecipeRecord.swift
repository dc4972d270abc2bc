import Foundation

/// A recipe record (IMS `RecipeRecord`): a registered recipe archive and how to build it.
///
/// JSON uses IMS's field names. A soft-deleted record keeps every field and gains `deleted`.
public struct RecipeRecord: Codable, Hashable, Sendable, Identifiable, RecordJSONWritable {
    /// Generated at creation.
    public var id: UUID
    /// When the record was created (microsecond precision, UTC).
    public var created: Date
    /// A name for people; not unique. Never empty.
    public var name: String
    /// The recipe archive (`recipes/<id>/recipe.tar.gz` in the `ims` bucket), or `nil`.
    public var link: ArtifactLink?
    /// `kiwi-ng` or `packer`.
    public var recipeType: RecipeType
    /// The distribution the recipe builds.
    public var linuxDistribution: LinuxDistribution
    /// Template variables, in order. IMS stores `[]` when absent.
    public var templateDictionary: [TemplateVariable]
    /// Whether builds need DKMS (IMS default `true`).
    public var requireDKMS: Bool
    /// The architecture the recipe builds (default `x86_64`).
    public var arch: Arch
    /// When the record was soft-deleted; `nil` for live records.
    public var deleted: Date?

    /// Creates a record with IMS's defaults.
    public init(
        id: UUID = UUID(), created: Date = IMSTimestamp.now(), name: String, link: ArtifactLink? = nil,
        recipeType: RecipeType = .kiwiNG, linuxDistribution: LinuxDistribution,
        templateDictionary: [TemplateVariable] = [], requireDKMS: Bool = true, arch: Arch = .x86_64,
        deleted: Date? = nil
    ) {
        self.id = id
        self.created = created
        self.name = name
        self.link = link
        self.recipeType = recipeType
        self.linuxDistribution = linuxDistribution
        self.templateDictionary = templateDictionary
        self.requireDKMS = requireDKMS
        self.arch = arch
        self.deleted = deleted
    }

    enum CodingKeys: String, CodingKey {
        case id, created, name, link, arch, deleted
        case recipeType = "recipe_type"
        case linuxDistribution = "linux_distribution"
        case templateDictionary = "template_dictionary"
        case requireDKMS = "require_dkms"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decodeUUID(forKey: .id)
        created = try c.decodeTimestamp(forKey: .created)
        name = try c.decode(String.self, forKey: .name)
        link = try c.decodeIfPresent(ArtifactLink.self, forKey: .link)
        recipeType = try c.decode(RecipeType.self, forKey: .recipeType)
        linuxDistribution = try c.decode(LinuxDistribution.self, forKey: .linuxDistribution)
        templateDictionary = try c.decodeIfPresent([TemplateVariable].self, forKey: .templateDictionary) ?? []
        requireDKMS = try c.decodeIfPresent(Bool.self, forKey: .requireDKMS) ?? true
        arch = try c.decodeIfPresent(Arch.self, forKey: .arch) ?? .x86_64
        deleted = try c.decodeTimestampIfPresent(forKey: .deleted)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeUUID(id, forKey: .id)
        try c.encodeTimestamp(created, forKey: .created)
        try c.encode(name, forKey: .name)
        try c.encodeNullable(link, forKey: .link)
        try c.encode(recipeType, forKey: .recipeType)
        try c.encode(linuxDistribution, forKey: .linuxDistribution)
        try c.encode(templateDictionary, forKey: .templateDictionary)
        try c.encode(requireDKMS, forKey: .requireDKMS)
        try c.encode(arch, forKey: .arch)
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
        writer.fieldKey("linux_distribution")
        writer.string(linuxDistribution.rawValue)
        writer.fieldKey("name")
        writer.string(name)
        writer.fieldKey("recipe_type")
        writer.string(recipeType.rawValue)
        writer.fieldKey("require_dkms")
        writer.bool(requireDKMS)
        writer.fieldKey("template_dictionary")
        writer.beginArray()
        for variable in templateDictionary { writer.value(variable) }
        writer.endArray()
        writer.endObject()
    }
}

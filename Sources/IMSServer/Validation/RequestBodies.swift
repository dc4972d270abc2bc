import Foundation
import IMSCatalog
import IMSProtocol

/// The request bodies of IMS's API: each one's schema (IMS's input schemas) and its typed form.
public enum RequestBodies {
    // MARK: Schemas

    public static let recipeCreate = BodySchema([
        FieldRule("name", .string(minLength: 1), required: true),
        FieldRule("link", .link, nullable: true),
        FieldRule("recipe_type", .choice(RecipeType.allowedValues), required: true),
        FieldRule("linux_distribution", .choice(LinuxDistribution.allowedValues), required: true),
        FieldRule("template_dictionary", .keyValueList, nullable: true),
        FieldRule("require_dkms", .bool),
        FieldRule("arch", .choice(Arch.allowedValues)),
    ])

    public static let recipePatch = BodySchema([
        FieldRule("link", .link, nullable: true),
        FieldRule("arch", .choice(Arch.allowedValues)),
        FieldRule("require_dkms", .bool),
        FieldRule("template_dictionary", .keyValueList),
    ])

    public static let imageCreate = BodySchema([
        FieldRule("name", .string(minLength: 1), required: true),
        FieldRule("link", .link, nullable: true),
        FieldRule("arch", .choice(Arch.allowedValues)),
        FieldRule("metadata", .metadataMap, nullable: true),
    ])

    public static let imagePatch = BodySchema([
        FieldRule("link", .link, nullable: true),
        FieldRule("arch", .choice(Arch.allowedValues)),
        FieldRule("metadata", .metadataChange),
    ])

    public static let publicKeyCreate = BodySchema([
        FieldRule("name", .string(minLength: 1), required: true),
        FieldRule("public_key", .string(minLength: 1), required: true),
    ])

    /// The largest `build_env_size` and `job_mem_size` (GiB) a job may ask for: 1 PiB, far beyond any build host,
    /// and small enough to be stored exactly (IMS sets no bound; docs/openapi.yaml correction 9).
    public static let maximumJobSize = 1_048_576

    public static let jobCreate = BodySchema([
        FieldRule("job_type", .choice(JobType.allowedValues), required: true),
        FieldRule("artifact_id", .uuid, required: true),
        FieldRule("public_key_id", .uuid, required: true),
        FieldRule("image_root_archive_name", .string(minLength: 1), required: true),
        FieldRule("enable_debug", .bool),
        FieldRule("build_env_size", .integer(minimum: 1, maximum: maximumJobSize)),
        FieldRule("job_mem_size", .integer(minimum: 1, maximum: maximumJobSize)),
        FieldRule("kernel_file_name", .string(minLength: 1)),
        FieldRule("initrd_file_name", .string(minLength: 1)),
        FieldRule("kernel_parameters_file_name", .string(minLength: 1)),
        FieldRule("ssh_containers", .sshContainers, nullable: true),
        FieldRule("require_dkms", .bool),
    ])

    /// IMS's internal job PATCH (`x-private`): what job pods report.
    public static let jobPatch = BodySchema([
        FieldRule("status", .choice(JobStatus.allowedValues)),
        FieldRule("resultant_image_id", .uuid),
    ])

    /// PATCH of `deleted/*`: exactly `{"operation": "undelete"}`.
    public static let undelete = BodySchema([FieldRule("operation", .choice(["undelete"]), required: true)])

    public static let remoteBuildNodeCreate = BodySchema([FieldRule("xname", .string(minLength: 1), required: true)])

    // MARK: Typed values (call after validating against the schema)

    /// A link field: `nil` when absent or null.
    public static func link(_ value: JSONValue?) -> (path: String, type: ArtifactLinkType)? {
        guard let object = value?.objectValue, let path = object["path"]?.stringValue,
              let type = object["type"]?.stringValue.flatMap(ArtifactLinkType.init(rawValue:))
        else { return nil }
        return (path, type)
    }

    /// A `[{key, value}]` field.
    public static func templateDictionary(_ value: JSONValue?) -> [TemplateVariable]? {
        guard let items = value?.arrayValue else { return nil }
        return items.compactMap { item in
            guard let key = item["key"]?.stringValue, let value = item["value"]?.stringValue else { return nil }
            return TemplateVariable(key: key, value: value)
        }
    }

    /// Image metadata on POST: `{"key": K, "value": V}` (what `cray ims images create --metadata-key K
    /// --metadata-value V` sends) becomes `{K: V}`; any other map of strings is stored as given.
    public static func metadata(_ value: JSONValue?) -> [String: String] {
        guard let object = value?.objectValue else { return [:] }
        if object.count == 2, let key = object["key"]?.stringValue, let entry = object["value"]?.stringValue {
            return [key: entry]
        }
        return object.compactMapValues(\.stringValue)
    }

    /// Image metadata on PATCH.
    public static func metadataChange(_ value: JSONValue?) -> MetadataChange? {
        guard let object = value?.objectValue, let operation = object["operation"]?.stringValue.flatMap(MetadataOperation.init(rawValue:)),
              let key = object["key"]?.stringValue
        else { return nil }
        return MetadataChange(operation: operation, key: key, value: object["value"]?.stringValue)
    }

    /// An enumeration field.
    public static func enumeration<E: RecordEnumeration>(_ value: JSONValue?, _ type: E.Type) -> E? {
        value?.stringValue.flatMap(E.init(rawValue:))
    }

    /// A UUID field.
    public static func uuid(_ value: JSONValue?) -> UUID? {
        value?.stringValue.flatMap(UUID.init(uuidString:))
    }

    /// A whole-number field.
    public static func integer(_ value: JSONValue?) -> Int? {
        value.flatMap(BodySchema.integer)
    }

    /// The job a `POST /jobs` body asks for, with IMS's defaults for what it leaves out (the catalog fills in the
    /// kernel file name by arch, the arch itself and the DKMS rule).
    public static func jobRequest(_ body: [String: JSONValue]) throws(Problem) -> JobRequest {
        guard let jobType = enumeration(body["job_type"], JobType.self), let artifact = uuid(body["artifact_id"]),
              let imageName = body["image_root_archive_name"]?.stringValue
        else { throw Problem.invalid(field: "_schema", "job_type, artifact_id and image_root_archive_name are required") }
        let containers = body["ssh_containers"]?.arrayValue?.compactMap { item -> SSHContainer? in
            guard let name = item["name"]?.stringValue else { return nil }
            return SSHContainer(name: name, jail: item["jail"]?.boolValue ?? false)
        }
        return JobRequest(
            jobType: jobType, artifactID: artifact, publicKeyID: uuid(body["public_key_id"]), imageRootArchiveName: imageName,
            enableDebug: body["enable_debug"]?.boolValue ?? false, buildEnvSize: integer(body["build_env_size"]) ?? 60,
            jobMemSize: integer(body["job_mem_size"]) ?? 8, kernelFileName: body["kernel_file_name"]?.stringValue,
            initrdFileName: body["initrd_file_name"]?.stringValue ?? "initrd",
            kernelParametersFileName: body["kernel_parameters_file_name"]?.stringValue ?? "kernel-parameters",
            sshContainers: containers, requireDKMS: body["require_dkms"]?.boolValue)
    }
}

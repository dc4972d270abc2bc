import Foundation
import IMSProtocol

/// One of IMS's tables, kept as a JSON file in its data directory (`/var/ims/data`; ims-behaviour.md §2).
///
/// A file is named `v<version>_<stem>.json` and holds a JSON array of records. The version follows the record
/// schema; older systems hold older versions, which IMS's upgrade hook copies forward, so a table is found by its
/// stem and the newest version present is the one read.
public enum IMSTable: String, CaseIterable, Sendable, Codable, Hashable {
    case publicKeys = "public_keys"
    case deletedPublicKeys = "deleted_public_keys"
    case recipes
    case deletedRecipes = "deleted_recipes"
    case images
    case deletedImages = "deleted_images"
    case jobs
    case remoteBuildNodes = "remote_build_nodes"

    /// The version current IMS writes; `export-ims` writes this one.
    public var currentVersion: String {
        switch self {
        case .publicKeys: "2"
        case .deletedPublicKeys: "3"
        case .recipes: "2.2"
        case .deletedRecipes: "3.2"
        case .images: "2.1"
        case .deletedImages: "3.1"
        case .jobs: "2.4"
        case .remoteBuildNodes: "2.0"
        }
    }

    /// The file name IMS writes today, such as `v2.2_recipes.json`.
    public var currentFileName: String { "v\(currentVersion)_\(rawValue).json" }

    /// Whether the table holds soft-deleted records (each with a `deleted` time).
    public var holdsDeletedRecords: Bool {
        self == .deletedPublicKeys || self == .deletedRecipes || self == .deletedImages
    }

    /// Parses an IMS data file name into its table and version; nil for any other name.
    public static func parse(fileName: String) -> (table: IMSTable, version: String)? {
        guard fileName.hasPrefix("v"), fileName.hasSuffix(".json"), let separator = fileName.firstIndex(of: "_") else { return nil }
        let version = String(fileName[fileName.index(after: fileName.startIndex)..<separator])
        let stem = String(fileName[fileName.index(after: separator)...].dropLast(".json".count))
        guard let table = IMSTable(rawValue: stem), !version.isEmpty,
              version.split(separator: ".", omittingEmptySubsequences: false).allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) })
        else { return nil }
        return (table, version)
    }

    /// Orders versions numerically, component by component (`2` < `2.1` < `2.10` < `3`).
    public static func versionPrecedes(_ lhs: String, _ rhs: String) -> Bool {
        let left = lhs.split(separator: ".").map { Int($0) ?? 0 }
        let right = rhs.split(separator: ".").map { Int($0) ?? 0 }
        for index in 0..<max(left.count, right.count) {
            let l = index < left.count ? left[index] : 0
            let r = index < right.count ? right[index] : 0
            if l != r { return l < r }
        }
        return left.count < right.count
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

/// What an import or export did with one file of an IMS data directory.
public struct IMSDataFile: Sendable, Codable, Hashable {
    /// What happened to the file.
    public enum Disposition: String, Sendable, Codable, Hashable {
        /// Read (import) or written (export).
        case used
        /// An older version of a table whose newer file was read instead.
        case superseded
    }

    public var file: String
    public var table: IMSTable
    public var version: String
    public var disposition: Disposition
    /// The records read or written (`used` files only).
    public var records: Int?
    /// The newer file read instead (`superseded` files only).
    public var supersededBy: String?

    public init(file: String, table: IMSTable, version: String, disposition: Disposition, records: Int? = nil, supersededBy: String? = nil) {
        self.file = file
        self.table = table
        self.version = version
        self.disposition = disposition
        self.records = records
        self.supersededBy = supersededBy
    }

    enum CodingKeys: String, CodingKey {
        case file, table, version, disposition, records
        case supersededBy = "superseded_by"
    }
}

/// Where a record came from: an IMS data file and its index in the file's array.
public struct IMSRecordSource: Sendable, Codable, Hashable, CustomStringConvertible {
    public var file: String
    public var index: Int

    public init(file: String, index: Int) {
        self.file = file
        self.index = index
    }

    public var description: String { "\(file) record \(index)" }
}

/// Timestamps as IMS writes them: Python's `datetime.isoformat()` of a naive UTC time
/// (`2024-05-01T12:00:00.123456`, without the fraction when it is zero).
public enum IMSNaiveTimestamp {
    /// Formats a date the way IMS's data files hold it.
    public static func string(_ date: Date) -> String {
        var text = IMSTimestamp.string(date)
        if text.hasSuffix("+00:00") { text.removeLast(6) }
        if text.hasSuffix(".000000") { text.removeLast(7) }
        return text
    }
}

/// Records in the form of IMS's data files: exactly the fields IMS's schemas hold, timestamps without a zone.
///
/// One function per record kind is the single description of that mapping: export writes these objects, and the
/// import compares an incoming record with the one already in the catalog through them (so ims's own extra fields,
/// such as a job's `status_history`, never count as a difference). Optional fields IMS fills on its own
/// (`kubernetes_*`, `remote_build_node`, `public_key_id`) are left out when ims has no value, where IMS would
/// otherwise read a `null` it does not accept; `link` and `resultant_image_id` are `null` when unset, as in IMS.
public enum IMSRecordFields {
    public static func object(_ record: RecipeRecord) -> [String: JSONValue] {
        let object: [String: JSONValue] = [
            "id": .string(record.id.imsString),
            "created": .string(IMSNaiveTimestamp.string(record.created)),
            "name": .string(record.name),
            "link": link(record.link),
            "recipe_type": .string(record.recipeType.rawValue),
            "linux_distribution": .string(record.linuxDistribution.rawValue),
            "template_dictionary": .array(record.templateDictionary.map { .object(["key": .string($0.key), "value": .string($0.value)]) }),
            "require_dkms": .bool(record.requireDKMS),
            "arch": .string(record.arch.rawValue),
        ]
        return adding(deleted: record.deleted, to: object)
    }

    public static func object(_ record: ImageRecord) -> [String: JSONValue] {
        let object: [String: JSONValue] = [
            "id": .string(record.id.imsString),
            "created": .string(IMSNaiveTimestamp.string(record.created)),
            "name": .string(record.name),
            "link": link(record.link),
            "arch": .string(record.arch.rawValue),
            "metadata": .object(record.metadata.mapValues { .string($0) }),
        ]
        return adding(deleted: record.deleted, to: object)
    }

    public static func object(_ record: PublicKeyRecord) -> [String: JSONValue] {
        let object: [String: JSONValue] = [
            "id": .string(record.id.imsString),
            "created": .string(IMSNaiveTimestamp.string(record.created)),
            "name": .string(record.name),
            "public_key": .string(record.publicKey),
        ]
        return adding(deleted: record.deleted, to: object)
    }

    public static func object(_ job: JobRecord) -> [String: JSONValue] {
        var object: [String: JSONValue] = [
            "id": .string(job.id.imsString),
            "created": .string(IMSNaiveTimestamp.string(job.created)),
            "job_type": .string(job.jobType.rawValue),
            "artifact_id": .string(job.artifactID.imsString),
            "image_root_archive_name": .string(job.imageRootArchiveName),
            "enable_debug": .bool(job.enableDebug),
            "build_env_size": .number(Double(job.buildEnvSize)),
            "job_mem_size": .number(Double(job.jobMemSize)),
            "kernel_file_name": .string(job.kernelFileName),
            "initrd_file_name": .string(job.initrdFileName),
            "kernel_parameters_file_name": .string(job.kernelParametersFileName),
            "ssh_containers": .array(job.sshContainers.map(sshContainer)),
            "require_dkms": .bool(job.requireDKMS),
            "status": .string(job.status.rawValue),
            "resultant_image_id": job.resultantImageID.map { .string($0.imsString) } ?? .null,
            "arch": .string(job.arch.rawValue),
        ]
        let optional: [(String, String?)] = [
            ("public_key_id", job.publicKeyID?.imsString),
            ("kubernetes_job", job.kubernetesJob), ("kubernetes_service", job.kubernetesService),
            ("kubernetes_configmap", job.kubernetesConfigmap), ("kubernetes_pvc", job.kubernetesPVC),
            ("kubernetes_secret", job.kubernetesSecret), ("kubernetes_namespace", job.kubernetesNamespace),
            ("remote_build_node", job.remoteBuildNode),
        ]
        for (key, value) in optional { if let value { object[key] = .string(value) } }
        return object
    }

    /// A remote build node (`{xname}`).
    public static func object(remoteBuildNode xname: String) -> [String: JSONValue] {
        ["xname": .string(xname)]
    }

    /// A soft-deleted record's fields carry its `deleted` time; a live record's have no such field.
    static func adding(deleted: Date?, to object: [String: JSONValue]) -> [String: JSONValue] {
        guard let deleted else { return object }
        var object = object
        object["deleted"] = .string(IMSNaiveTimestamp.string(deleted))
        return object
    }

    static func link(_ link: ArtifactLink?) -> JSONValue {
        guard let link else { return .null }
        return .object(["path": .string(link.path), "etag": .string(link.etag), "type": .string(link.type.rawValue)])
    }

    static func sshContainer(_ container: SSHContainer) -> JSONValue {
        .object([
            "name": .string(container.name),
            "jail": .bool(container.jail),
            "status": .string(container.status),
            "connection_info": .object(container.connectionInfo.mapValues { .object(["host": .string($0.host), "port": .number(Double($0.port))]) }),
        ])
    }

    /// The fields whose values differ between two records in this form (a `null` and a missing field are the same),
    /// sorted.
    public static func differences(_ lhs: [String: JSONValue], _ rhs: [String: JSONValue]) -> [String] {
        Set(lhs.keys).union(rhs.keys).filter { (lhs[$0] ?? .null) != (rhs[$0] ?? .null) }.sorted()
    }
}

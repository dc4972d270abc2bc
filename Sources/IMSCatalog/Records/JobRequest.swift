import Foundation

/// What a user asks for when creating a job (IMS `POST /jobs` body), plus ims's runner fields.
///
/// ``Catalog/createJob(_:)`` fills in the rest the way IMS does: the arch from the recipe or image, the
/// kernel file name from the arch, `require_dkms` (IMS §10), the SSH containers (IMS §5.3 step 2).
public struct JobRequest: Sendable, Hashable {
    public var id: UUID
    public var jobType: JobType
    /// A recipe id (create) or image id (customize); must be a live record with a link.
    public var artifactID: UUID
    /// Must name a live public key when given.
    public var publicKeyID: UUID?
    public var imageRootArchiveName: String
    public var enableDebug: Bool
    public var buildEnvSize: Int
    public var jobMemSize: Int
    /// `nil`: `vmlinuz` on x86_64, `Image` on aarch64.
    public var kernelFileName: String?
    public var initrdFileName: String
    public var kernelParametersFileName: String
    /// Only for customize jobs (at most one); `nil` gives IMS's `customize` container.
    public var sshContainers: [SSHContainer]?
    /// `nil`: decided as IMS does (the recipe's value for create, `customizeRequiresDKMS` for customize);
    /// aarch64 always requires DKMS.
    public var requireDKMS: Bool?
    public var timeoutSeconds: Int?
    public var workspace: String?
    /// The ims process that will run the job, so a crash can be detected (``Catalog/markInterrupted(host:isAlive:)``).
    public var pid: Int32?
    public var host: String?

    public init(
        id: UUID = UUID(), jobType: JobType, artifactID: UUID, publicKeyID: UUID? = nil, imageRootArchiveName: String,
        enableDebug: Bool = false, buildEnvSize: Int = 60, jobMemSize: Int = 8, kernelFileName: String? = nil,
        initrdFileName: String = "initrd", kernelParametersFileName: String = "kernel-parameters",
        sshContainers: [SSHContainer]? = nil, requireDKMS: Bool? = nil, timeoutSeconds: Int? = nil,
        workspace: String? = nil, pid: Int32? = nil, host: String? = nil
    ) {
        self.id = id
        self.jobType = jobType
        self.artifactID = artifactID
        self.publicKeyID = publicKeyID
        self.imageRootArchiveName = imageRootArchiveName
        self.enableDebug = enableDebug
        self.buildEnvSize = buildEnvSize
        self.jobMemSize = jobMemSize
        self.kernelFileName = kernelFileName
        self.initrdFileName = initrdFileName
        self.kernelParametersFileName = kernelParametersFileName
        self.sshContainers = sshContainers
        self.requireDKMS = requireDKMS
        self.timeoutSeconds = timeoutSeconds
        self.workspace = workspace
        self.pid = pid
        self.host = host
    }
}

/// Which jobs to list or delete (IMS `DELETE /jobs` filters: `status`, `job_type`, `age`).
public struct JobFilter: Sendable, Hashable {
    /// Only jobs in one of these statuses; empty means any.
    public var statuses: Set<JobStatus>
    /// Only jobs of this type.
    public var jobType: JobType?
    /// Only jobs created more than this many seconds ago (IMS `age`).
    public var olderThan: TimeInterval?
    /// Only jobs created less than this many seconds ago.
    public var newerThan: TimeInterval?

    public init(statuses: Set<JobStatus> = [], jobType: JobType? = nil, olderThan: TimeInterval? = nil, newerThan: TimeInterval? = nil) {
        self.statuses = statuses
        self.jobType = jobType
        self.olderThan = olderThan
        self.newerThan = newerThan
    }

    /// Every job.
    public static let all = JobFilter()

    /// Parses an IMS age such as `1w`, `2d`, `6h`, `30m`, or several such parts added up: `1d6h` is 30 hours.
    ///
    /// IMS's regex `(\d+)\w*{w|d|h|m}` takes digits, optional letters and a unit letter, so `2days` and `10min`
    /// work, and so do they here; but IMS mis-reads compound ages (`1d6h`) and ignores an age it cannot parse,
    /// deleting every job. Here each part is a number and a unit (`w`, `d`, `h`, `m`, `s`, or their words:
    /// `days`, `min`, …), the parts are summed, and anything else is an error. `s` is an ims addition.
    ///
    /// - Returns: the age in seconds.
    /// - Throws: ``CatalogError/invalidField(field:reason:)``.
    public static func parseAge(_ text: String) throws(CatalogError) -> TimeInterval {
        let units: [String: TimeInterval] = [
            "w": 604_800, "weeks": 604_800, "week": 604_800, "d": 86_400, "days": 86_400, "day": 86_400,
            "h": 3600, "hours": 3600, "hour": 3600, "m": 60, "min": 60, "mins": 60, "minutes": 60,
            "minute": 60, "s": 1, "sec": 1, "seconds": 1, "second": 1,
        ]
        guard text.count <= Self.longestAgeText else {
            throw CatalogError.invalidField(field: "age", reason: "'\(text.prefix(20))…' is longer than an age can be written (\(Self.longestAgeText) characters)")
        }
        var rest = Substring(text.trimmingCharacters(in: .whitespaces).lowercased())
        guard !rest.isEmpty else { throw CatalogError.invalidField(field: "age", reason: "'\(text)' is not an age like 1w, 2d, 6h, 30m or 1d6h") }
        var total: TimeInterval = 0
        while !rest.isEmpty {
            let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
            guard let count = Double(digits), !digits.isEmpty else {
                throw CatalogError.invalidField(field: "age", reason: "'\(text)' is not an age like 1w, 2d, 6h, 30m or 1d6h")
            }
            rest = rest.dropFirst(digits.count)
            let unitText = rest.prefix(while: { $0.isASCII && $0.isLetter })
            guard let unit = units[String(unitText)] else {
                throw CatalogError.invalidField(field: "age", reason: "'\(text)' has no unit w, d, h or m after \(digits)")
            }
            rest = rest.dropFirst(unitText.count)
            total = min(total + count * unit, Self.longestAge)
        }
        return total
    }

    /// Ages are capped at 100 years: a longer one selects the same jobs (none older than that exist), and an
    /// uncapped one cannot be subtracted from now as a timestamp (`99999999999w` crashed ims serve).
    public static let longestAge: TimeInterval = 100 * 365.25 * 86_400

    /// The longest text an age may be (docs/openapi.yaml's `maxLength`).
    public static let longestAgeText = 64
}

import Foundation

/// A job record (IMS `V2JobRecord`) plus what ims needs to run jobs without Kubernetes: the status history,
/// a structured error, the workspace, and the runner process (for crash detection).
public struct JobRecord: Codable, Hashable, Sendable, Identifiable {
    // MARK: User input (IMS `V2JobRecordInputSchema`)

    /// `create` (build from a recipe) or `customize` (change an image).
    public var jobType: JobType
    /// The recipe id (create) or image id (customize).
    public var artifactID: UUID
    /// The public key installed for SSH access; IMS requires it, ims only when SSH is used.
    public var publicKeyID: UUID?
    /// The name of the resulting image and of its squashfs file. Never empty.
    public var imageRootArchiveName: String
    /// Keep a failed create job open for debugging (IMS default `false`).
    public var enableDebug: Bool
    /// Build environment size in GiB (IMS default 60).
    public var buildEnvSize: Int
    /// Job memory in GiB (IMS default 8).
    public var jobMemSize: Int
    /// The kernel file in the image's `/boot` (`vmlinuz` on x86_64, `Image` on aarch64).
    public var kernelFileName: String
    /// The initrd file in `/boot` (default `initrd`).
    public var initrdFileName: String
    /// The kernel parameters file in `/boot` (default `kernel-parameters`).
    public var kernelParametersFileName: String
    /// SSH environments of the job (customize: one, `customize`; create with debug: `debug`).
    public var sshContainers: [SSHContainer]
    /// Whether the job needs DKMS (decided at creation, IMS §10).
    public var requireDKMS: Bool

    // MARK: Server fields

    /// Generated at creation.
    public var id: UUID
    /// When the job was created.
    public var created: Date
    /// The current status (starts as `creating`).
    public var status: JobStatus
    /// The image the job produced, once it has one.
    public var resultantImageID: UUID?
    /// Copied from the recipe or image at creation.
    public var arch: Arch
    /// IMS's Kubernetes object names; kept (normally `null`) so records stay compatible.
    public var kubernetesJob: String?
    public var kubernetesService: String?
    public var kubernetesConfigmap: String?
    public var kubernetesPVC: String?
    public var kubernetesSecret: String?
    public var kubernetesNamespace: String?
    /// IMS's remote build node (an xname), kept for compatibility.
    public var remoteBuildNode: String?

    // MARK: ims additions

    /// Every status the job has had, oldest first, starting with `creating`.
    public var statusHistory: [JobStatusChange]
    /// Why the job failed, when `status` is `error`.
    public var error: JobError?
    /// The job's workspace directory.
    public var workspace: String?
    /// The process id of the ims process running the job.
    public var pid: Int32?
    /// The host name of the machine running the job.
    public var host: String?
    /// An overall time limit for the job, in seconds (IMS has none).
    public var timeoutSeconds: Int?
    /// The executor running the job (`local`, `slurm`, `remote-build-nodes`; nil: local, from before executors).
    public var executor: String?
    /// The Slurm job id of a job run through the `slurm` executor (ims's counterpart of `kubernetes_job`).
    public var slurmJobID: String?
    /// When the job's remote runner last reported (its heartbeat).
    public var lastReport: Date?

    /// Creates a record. Prefer ``Catalog/createJob(_:)``, which applies IMS's defaults and checks.
    public init(
        id: UUID = UUID(), created: Date = IMSTimestamp.now(), jobType: JobType, artifactID: UUID,
        publicKeyID: UUID? = nil, imageRootArchiveName: String, enableDebug: Bool = false, buildEnvSize: Int = 60,
        jobMemSize: Int = 8, kernelFileName: String? = nil, initrdFileName: String = "initrd",
        kernelParametersFileName: String = "kernel-parameters", sshContainers: [SSHContainer] = [],
        requireDKMS: Bool = true, status: JobStatus = .creating, resultantImageID: UUID? = nil, arch: Arch = .x86_64,
        statusHistory: [JobStatusChange]? = nil, error: JobError? = nil, workspace: String? = nil, pid: Int32? = nil,
        host: String? = nil, timeoutSeconds: Int? = nil
    ) {
        self.id = id
        self.created = created
        self.jobType = jobType
        self.artifactID = artifactID
        self.publicKeyID = publicKeyID
        self.imageRootArchiveName = imageRootArchiveName
        self.enableDebug = enableDebug
        self.buildEnvSize = buildEnvSize
        self.jobMemSize = jobMemSize
        self.kernelFileName = kernelFileName ?? arch.defaultKernelFileName
        self.initrdFileName = initrdFileName
        self.kernelParametersFileName = kernelParametersFileName
        self.sshContainers = sshContainers
        self.requireDKMS = requireDKMS
        self.status = status
        self.resultantImageID = resultantImageID
        self.arch = arch
        self.statusHistory = statusHistory ?? [JobStatusChange(status: status, time: created)]
        self.error = error
        self.workspace = workspace
        self.pid = pid
        self.host = host
        self.timeoutSeconds = timeoutSeconds
    }

    enum CodingKeys: String, CodingKey {
        case id, created, status, arch, error, workspace, pid, host
        case jobType = "job_type"
        case artifactID = "artifact_id"
        case publicKeyID = "public_key_id"
        case imageRootArchiveName = "image_root_archive_name"
        case enableDebug = "enable_debug"
        case buildEnvSize = "build_env_size"
        case jobMemSize = "job_mem_size"
        case kernelFileName = "kernel_file_name"
        case initrdFileName = "initrd_file_name"
        case kernelParametersFileName = "kernel_parameters_file_name"
        case sshContainers = "ssh_containers"
        case requireDKMS = "require_dkms"
        case resultantImageID = "resultant_image_id"
        case kubernetesJob = "kubernetes_job"
        case kubernetesService = "kubernetes_service"
        case kubernetesConfigmap = "kubernetes_configmap"
        case kubernetesPVC = "kubernetes_pvc"
        case kubernetesSecret = "kubernetes_secret"
        case kubernetesNamespace = "kubernetes_namespace"
        case remoteBuildNode = "remote_build_node"
        case statusHistory = "status_history"
        case timeoutSeconds = "timeout_seconds"
        case executor
        case slurmJobID = "slurm_job_id"
        case lastReport = "last_report"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decodeUUID(forKey: .id)
        created = try c.decodeTimestamp(forKey: .created)
        jobType = try c.decode(JobType.self, forKey: .jobType)
        artifactID = try c.decodeUUID(forKey: .artifactID)
        publicKeyID = try c.decodeUUIDIfPresent(forKey: .publicKeyID)
        imageRootArchiveName = try c.decode(String.self, forKey: .imageRootArchiveName)
        enableDebug = try c.decodeIfPresent(Bool.self, forKey: .enableDebug) ?? false
        buildEnvSize = try c.decodeIfPresent(Int.self, forKey: .buildEnvSize) ?? 60
        jobMemSize = try c.decodeIfPresent(Int.self, forKey: .jobMemSize) ?? 8
        arch = try c.decodeIfPresent(Arch.self, forKey: .arch) ?? .x86_64
        kernelFileName = try c.decodeIfPresent(String.self, forKey: .kernelFileName) ?? arch.defaultKernelFileName
        initrdFileName = try c.decodeIfPresent(String.self, forKey: .initrdFileName) ?? "initrd"
        kernelParametersFileName =
            try c.decodeIfPresent(String.self, forKey: .kernelParametersFileName) ?? "kernel-parameters"
        sshContainers = try c.decodeIfPresent([SSHContainer].self, forKey: .sshContainers) ?? []
        requireDKMS = try c.decodeIfPresent(Bool.self, forKey: .requireDKMS) ?? true
        status = try c.decodeIfPresent(JobStatus.self, forKey: .status) ?? .creating
        resultantImageID = try c.decodeUUIDIfPresent(forKey: .resultantImageID)
        kubernetesJob = try c.decodeIfPresent(String.self, forKey: .kubernetesJob)
        kubernetesService = try c.decodeIfPresent(String.self, forKey: .kubernetesService)
        kubernetesConfigmap = try c.decodeIfPresent(String.self, forKey: .kubernetesConfigmap)
        kubernetesPVC = try c.decodeIfPresent(String.self, forKey: .kubernetesPVC)
        kubernetesSecret = try c.decodeIfPresent(String.self, forKey: .kubernetesSecret)
        kubernetesNamespace = try c.decodeIfPresent(String.self, forKey: .kubernetesNamespace)
        remoteBuildNode = try c.decodeIfPresent(String.self, forKey: .remoteBuildNode)
        statusHistory = try c.decodeIfPresent([JobStatusChange].self, forKey: .statusHistory) ?? []
        error = try c.decodeIfPresent(JobError.self, forKey: .error)
        workspace = try c.decodeIfPresent(String.self, forKey: .workspace)
        pid = try c.decodeIfPresent(Int32.self, forKey: .pid)
        host = try c.decodeIfPresent(String.self, forKey: .host)
        timeoutSeconds = try c.decodeIfPresent(Int.self, forKey: .timeoutSeconds)
        executor = try c.decodeIfPresent(String.self, forKey: .executor)
        slurmJobID = try c.decodeIfPresent(String.self, forKey: .slurmJobID)
        lastReport = try c.decodeTimestampIfPresent(forKey: .lastReport)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeUUID(id, forKey: .id)
        try c.encodeTimestamp(created, forKey: .created)
        try c.encode(jobType, forKey: .jobType)
        try c.encodeUUID(artifactID, forKey: .artifactID)
        try c.encodeNullable(publicKeyID?.imsString, forKey: .publicKeyID)
        try c.encode(imageRootArchiveName, forKey: .imageRootArchiveName)
        try c.encode(enableDebug, forKey: .enableDebug)
        try c.encode(buildEnvSize, forKey: .buildEnvSize)
        try c.encode(jobMemSize, forKey: .jobMemSize)
        try c.encode(kernelFileName, forKey: .kernelFileName)
        try c.encode(initrdFileName, forKey: .initrdFileName)
        try c.encode(kernelParametersFileName, forKey: .kernelParametersFileName)
        try c.encode(sshContainers, forKey: .sshContainers)
        try c.encode(requireDKMS, forKey: .requireDKMS)
        try c.encode(status, forKey: .status)
        try c.encodeNullable(resultantImageID?.imsString, forKey: .resultantImageID)
        try c.encode(arch, forKey: .arch)
        try c.encodeNullable(kubernetesJob, forKey: .kubernetesJob)
        try c.encodeNullable(kubernetesService, forKey: .kubernetesService)
        try c.encodeNullable(kubernetesConfigmap, forKey: .kubernetesConfigmap)
        try c.encodeNullable(kubernetesPVC, forKey: .kubernetesPVC)
        try c.encodeNullable(kubernetesSecret, forKey: .kubernetesSecret)
        try c.encodeNullable(kubernetesNamespace, forKey: .kubernetesNamespace)
        try c.encodeNullable(remoteBuildNode, forKey: .remoteBuildNode)
        try c.encode(statusHistory, forKey: .statusHistory)
        try c.encodeNullable(error, forKey: .error)
        try c.encodeNullable(workspace, forKey: .workspace)
        try c.encodeNullable(pid, forKey: .pid)
        try c.encodeNullable(host, forKey: .host)
        try c.encodeNullable(timeoutSeconds, forKey: .timeoutSeconds)
        try c.encodeNullable(executor, forKey: .executor)
        try c.encodeNullable(slurmJobID, forKey: .slurmJobID)
        if let lastReport { try c.encodeTimestamp(lastReport, forKey: .lastReport) } else { try c.encodeNil(forKey: .lastReport) }
    }
}

/// One SSH environment of a job (IMS `ssh_containers[i]`).
public struct SSHContainer: Codable, Hashable, Sendable {
    /// `customize`, `debug`, or a user-chosen name.
    public var name: String
    /// Whether the user is jailed (chroot) into the image root.
    public var jail: Bool
    /// IMS sets `pending` at creation; ims updates it as the environment comes up.
    public var status: String
    /// How to reach the environment, by network name (IMS: `customer_access`, `cluster.local`).
    public var connectionInfo: [String: SSHConnection]

    /// Creates an entry.
    public init(name: String, jail: Bool = false, status: String = "pending", connectionInfo: [String: SSHConnection] = [:]) {
        self.name = name
        self.jail = jail
        self.status = status
        self.connectionInfo = connectionInfo
    }

    enum CodingKeys: String, CodingKey {
        case name, jail, status
        case connectionInfo = "connection_info"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        // IMS writes `"jail": "False"` in places; accept both forms.
        if let flag = try? c.decodeIfPresent(Bool.self, forKey: .jail) {
            jail = flag
        } else if let text = try? c.decodeIfPresent(String.self, forKey: .jail) {
            jail = text.lowercased() == "true"
        } else {
            jail = false
        }
        status = try c.decodeIfPresent(String.self, forKey: .status) ?? "pending"
        connectionInfo = try c.decodeIfPresent([String: SSHConnection].self, forKey: .connectionInfo) ?? [:]
    }
}

/// A host and port of an SSH environment.
public struct SSHConnection: Codable, Hashable, Sendable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

/// One entry of a job's `status_history`.
public struct JobStatusChange: Codable, Hashable, Sendable {
    /// The status entered.
    public var status: JobStatus
    /// When it was entered.
    public var time: Date
    /// Why, when there is something to say (errors, interruptions).
    public var reason: String?

    public init(status: JobStatus, time: Date, reason: String? = nil) {
        self.status = status
        self.time = time
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey { case status, time, reason }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        status = try c.decode(JobStatus.self, forKey: .status)
        time = try c.decodeTimestamp(forKey: .time)
        reason = try c.decodeIfPresent(String.self, forKey: .reason)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(status, forKey: .status)
        try c.encodeTimestamp(time, forKey: .time)
        try c.encodeIfPresent(reason, forKey: .reason)
    }
}

/// Why a job ended in `error`: the structured error of the failing step.
public struct JobError: Codable, Hashable, Sendable, Error {
    /// A stable dotted code (`ims.job.interrupted`, `<phase>.…`, or a plugin's code).
    public var code: String
    /// The error category of the plugin protocol (`user`, `config`, `environment`, `transient`, `internal`,
    /// `protocol`, `cancelled`, `timeout`).
    public var category: String
    /// One sentence for people.
    public var message: String
    /// The phase that failed, when known.
    public var phase: String?

    public init(code: String, category: String, message: String, phase: String? = nil) {
        self.code = code
        self.category = category
        self.message = message
        self.phase = phase
    }
}

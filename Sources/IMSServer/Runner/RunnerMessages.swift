import Foundation
import IMSCatalog

// The runner API's bodies (`/v3/jobs/{id}/runner…`, an ims extension documented in docs/api.md and
// docs/openapi.yaml): one Codable source for the server's routes and the remote runner's client.

/// `GET /v3/jobs/{id}/runner`: what a runner needs to run its job.
public struct RunnerBundle: Codable, Sendable, Hashable {
    public var job: JobRecord
    /// The job's recipe (create jobs).
    public var recipe: RecipeRecord?
    /// The job's image (customize jobs).
    public var image: ImageRecord?
    public var publicKey: PublicKeyRecord?
    /// The runner reports at least this often.
    public var heartbeatSeconds: Double

    enum CodingKeys: String, CodingKey {
        case job, recipe, image
        case publicKey = "public_key"
        case heartbeatSeconds = "heartbeat_seconds"
    }

    public init(job: JobRecord, recipe: RecipeRecord? = nil, image: ImageRecord? = nil, publicKey: PublicKeyRecord? = nil, heartbeatSeconds: Double) {
        self.job = job
        self.recipe = recipe
        self.image = image
        self.publicKey = publicKey
        self.heartbeatSeconds = heartbeatSeconds
    }
}

/// `POST /v3/jobs/{id}/runner/report`: the runner's progress since its last report (also its heartbeat).
public struct RunnerReport: Codable, Sendable, Hashable {
    /// The job's status changes on the runner since the last report, with their times (never a terminal one: those
    /// come with the result).
    public var statusChanges: [JobStatusChange]
    /// The build host's name.
    public var host: String?
    /// New events, oldest first.
    public var events: [JobEvent]
    /// The job's SSH containers as the runner sees them (sessions), when they changed.
    public var sshContainers: [SSHContainer]?

    enum CodingKeys: String, CodingKey {
        case host, events
        case statusChanges = "status_changes"
        case sshContainers = "ssh_containers"
    }

    public init(from decoder: any Decoder) throws {
        try RunnerBody.refuseUnknownKeys(decoder, known: ["status_changes", "host", "events", "ssh_containers"])
        let c = try decoder.container(keyedBy: CodingKeys.self)
        statusChanges = try c.decode([JobStatusChange].self, forKey: .statusChanges)
        host = try c.decodeIfPresent(String.self, forKey: .host)
        events = try c.decode([JobEvent].self, forKey: .events)
        sshContainers = try c.decodeIfPresent([SSHContainer].self, forKey: .sshContainers)
    }

    public init(statusChanges: [JobStatusChange] = [], host: String? = nil, events: [JobEvent] = [], sshContainers: [SSHContainer]? = nil) {
        self.statusChanges = statusChanges
        self.host = host
        self.events = events
        self.sshContainers = sshContainers
    }
}

/// `POST /v3/jobs/{id}/runner/result`: how the job ended on the runner.
public struct RunnerResult: Codable, Sendable, Hashable {
    /// `success` or `error`.
    public var status: JobStatus
    /// The image the job made (success): registered by the server after it checked the manifest in the store.
    public var image: ImageRecord?
    /// Why the job failed (error).
    public var error: JobError?

    enum CodingKeys: String, CodingKey { case status, image, error }

    public init(from decoder: any Decoder) throws {
        try RunnerBody.refuseUnknownKeys(decoder, known: ["status", "image", "error"])
        let c = try decoder.container(keyedBy: CodingKeys.self)
        status = try c.decode(JobStatus.self, forKey: .status)
        image = try c.decodeIfPresent(ImageRecord.self, forKey: .image)
        error = try c.decodeIfPresent(JobError.self, forKey: .error)
    }

    public init(status: JobStatus, image: ImageRecord? = nil, error: JobError? = nil) {
        self.status = status
        self.image = image
        self.error = error
    }
}

/// The server's answer to a report or a result.
public struct RunnerAcknowledgement: Codable, Sendable, Hashable {
    /// The job as the server holds it.
    public var status: JobStatus
    /// The image registered for a successful result.
    public var resultantImageID: UUID?

    enum CodingKeys: String, CodingKey {
        case status
        case resultantImageID = "resultant_image_id"
    }

    public init(status: JobStatus, resultantImageID: UUID? = nil) {
        self.status = status
        self.resultantImageID = resultantImageID
    }
}

/// What a remote runner reads from stdin (or a file only it can read): never on a command line or in an environment.
public struct RunnerSecrets: Codable, Sendable, Hashable {
    /// The job's own token (scoped to the job, expiring with it).
    public var token: String
    /// The store URL (`s3://bucket` or `file:///shared/path`).
    public var store: String
    /// The S3 endpoint, region and keys, for an `s3://` store.
    public var s3: S3Access?

    public struct S3Access: Codable, Sendable, Hashable {
        public var endpointURL: String?
        public var region: String?
        public var addressingStyle: String?
        public var accessKey: String?
        public var secretKey: String?
        /// A CA bundle (PEM text) for the endpoint, when the site set one.
        public var caBundlePEM: String?

        enum CodingKeys: String, CodingKey {
            case region
            case endpointURL = "endpoint_url"
            case addressingStyle = "addressing_style"
            case accessKey = "access_key"
            case secretKey = "secret_key"
            case caBundlePEM = "ca_bundle_pem"
        }

        public init(endpointURL: String? = nil, region: String? = nil, addressingStyle: String? = nil, accessKey: String? = nil, secretKey: String? = nil, caBundlePEM: String? = nil) {
            self.endpointURL = endpointURL
            self.region = region
            self.addressingStyle = addressingStyle
            self.accessKey = accessKey
            self.secretKey = secretKey
            self.caBundlePEM = caBundlePEM
        }
    }

    public init(token: String, store: String, s3: S3Access? = nil) {
        self.token = token
        self.store = store
        self.s3 = s3
    }
}

/// The API's rule for bodies, kept by the runner bodies' decoders: an unknown field is refused (422).
enum RunnerBody {
    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Thrown for fields the body must not have.
    struct UnknownFields: Error, CustomStringConvertible {
        var names: [String]
        var description: String { "unknown fields: \(names.joined(separator: ", "))" }
    }

    static func refuseUnknownKeys(_ decoder: any Decoder, known: Set<String>) throws {
        let unknown = try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue).filter { !known.contains($0) }
        if !unknown.isEmpty { throw UnknownFields(names: unknown.sorted()) }
    }
}

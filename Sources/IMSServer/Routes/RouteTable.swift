import Hummingbird

/// The API version a path was requested under. The unversioned paths are IMS's v2 aliases.
public enum APIVersion: String, Sendable, Hashable {
    case v2, v3
}

/// The record collections served under `/v2`, `/v3` and the unversioned prefix.
public enum RecordCollection: String, Sendable, Hashable, CaseIterable {
    case recipes
    case images
    case publicKeys = "public-keys"
    case jobs
}

/// The record kinds with a v3 soft delete (`/v3/deleted/…`).
public enum DeletedCollection: String, Sendable, Hashable, CaseIterable {
    case recipes
    case images
    case publicKeys = "public-keys"
}

/// Every resource of IMS's API, as identified by its path.
public enum Endpoint: Sendable, Hashable {
    case version
    case healthReady
    case healthLive
    case collection(RecordCollection, APIVersion)
    case record(RecordCollection, APIVersion, id: String)
    case deletedCollection(DeletedCollection)
    case deletedRecord(DeletedCollection, id: String)
    case remoteBuildNodes
    case remoteBuildNode(xname: String)
    case remoteBuildNodeStatuses
    case remoteBuildNodeStatus(xname: String)
    /// ims's own OpenAPI document (`/openapi.yaml`).
    case openAPIDocument
    /// A remote runner's view of its job (`/v3/jobs/{id}/runner`, an ims extension).
    case jobRunner(id: String)
    /// A remote runner's progress and heartbeat (`/v3/jobs/{id}/runner/report`).
    case jobRunnerReport(id: String)
    /// A remote runner's result (`/v3/jobs/{id}/runner/result`).
    case jobRunnerResult(id: String)

    /// Whether the endpoint answers without a bearer token: the health probes and the API's description.
    public var isPublic: Bool {
        switch self {
        case .healthReady, .healthLive, .openAPIDocument: true
        default: false
        }
    }

    /// Whether the endpoint is a remote runner's: authorized by the job's own runner token, not by the site's tokens.
    public var isRunnerEndpoint: Bool {
        switch self {
        case .jobRunner, .jobRunnerReport, .jobRunnerResult: true
        default: false
        }
    }
}

/// Maps paths to endpoints, and endpoints to the methods IMS documents for them: the API's routing as data, with
/// no server needed to test it.
public enum RouteTable {
    /// The API gateway's prefix, under which every path is also served (what `cray` uses).
    public static let gatewayPrefix = "/apis/ims"

    /// The endpoint at `path` (with or without the gateway prefix), or nil for an unknown path.
    ///
    /// `/v3/remote-build-nodes/status` is the status list, never a node called `status` (IMS gets this wrong).
    public static func endpoint(path: String) -> Endpoint? {
        var path = Substring(path)
        if path.hasPrefix(gatewayPrefix) {
            path = path.dropFirst(gatewayPrefix.count)
            guard path.isEmpty || path.hasPrefix("/") else { return nil }
        }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        guard !segments.isEmpty, !segments.contains(where: \.isEmpty) else { return nil }
        switch segments.count {
        case 1 where segments[0] == "version": return .version
        case 1 where segments[0] == "openapi.yaml": return .openAPIDocument
        case 2 where segments[0] == "healthz" && segments[1] == "ready": return .healthReady
        case 2 where segments[0] == "healthz" && segments[1] == "live": return .healthLive
        default: break
        }
        var rest = segments[...]
        var version = APIVersion.v2
        var unversioned = true
        if let first = rest.first, let explicit = APIVersion(rawValue: first) {
            version = explicit
            unversioned = false
            rest = rest.dropFirst()
        }
        let parts = Array(rest)
        if version == .v3, parts.first == "deleted" {
            guard parts.count >= 2, let kind = DeletedCollection(rawValue: parts[1]) else { return nil }
            switch parts.count {
            case 2: return .deletedCollection(kind)
            case 3: return .deletedRecord(kind, id: parts[2])
            default: return nil
            }
        }
        // Remote build nodes are v3's, and also unversioned as IMS's spec lists them (IMS's server registers them only
        // under /v3; serving both costs nothing and keeps a client written from the spec working).
        if version == .v3 || unversioned, parts.first == "remote-build-nodes" {
            switch parts.count {
            case 1: return .remoteBuildNodes
            case 2 where parts[1] == "status": return .remoteBuildNodeStatuses
            case 2: return .remoteBuildNode(xname: parts[1])
            case 3 where parts[1] == "status": return .remoteBuildNodeStatus(xname: parts[2])
            default: return nil
            }
        }
        guard let first = parts.first, let collection = RecordCollection(rawValue: first) else { return nil }
        switch parts.count {
        case 1: return .collection(collection, version)
        case 2: return .record(collection, version, id: parts[1])
        case 3 where version == .v3 && !unversioned && collection == .jobs && parts[2] == "runner": return .jobRunner(id: parts[1])
        case 4 where version == .v3 && !unversioned && collection == .jobs && parts[2] == "runner":
            switch parts[3] {
            case "report": return .jobRunnerReport(id: parts[1])
            case "result": return .jobRunnerResult(id: parts[1])
            default: return nil
            }
        default: return nil
        }
    }

    /// The methods IMS documents for `endpoint`, in the order the `Allow` header lists them.
    public static func allowedMethods(_ endpoint: Endpoint) -> [HTTPRequest.Method] {
        switch endpoint {
        case .version, .healthReady, .healthLive, .remoteBuildNodeStatuses, .remoteBuildNodeStatus, .openAPIDocument:
            [.get]
        case .collection:
            [.get, .post, .delete]
        case .record(.publicKeys, _, _):
            [.get, .delete]
        case .record:
            [.get, .patch, .delete]
        case .deletedCollection, .deletedRecord:
            [.get, .patch, .delete]
        case .remoteBuildNodes:
            [.get, .post, .delete]
        case .remoteBuildNode:
            [.get, .delete]
        case .jobRunner:
            [.get]
        case .jobRunnerReport, .jobRunnerResult:
            [.post]
        }
    }
}

import Foundation
import Hummingbird
import IMSCatalog
import IMSEngine
import IMSProtocol
import IMSStore
import Logging

/// What the API's handlers work on: the same catalog, store and engine settings as the command line, the job
/// executor and the remote build node registry.
public struct APIServices: Sendable {
    public var catalog: Catalog
    public var store: any ArtifactStore
    public var jobs: JobExecutor
    public var remoteBuildNodes: RemoteBuildNodes
    /// Probes remote build nodes over SSH (the `remote-build-nodes` executor); nil otherwise.
    public var nodeProbe: RemoteBuildNodeExecutor?
    /// Where job workspaces live (removed with their job).
    public var jobsDirectory: String
    /// The version `/version` reports.
    public var version: String
    /// Where jobs run, and the runners' heartbeat.
    public var executorSettings: ExecutorSettings
    public var logger: Logger

    public init(
        catalog: Catalog, store: any ArtifactStore, jobs: JobExecutor, remoteBuildNodes: RemoteBuildNodes,
        nodeProbe: RemoteBuildNodeExecutor? = nil, jobsDirectory: String, version: String,
        executorSettings: ExecutorSettings = ExecutorSettings(), logger: Logger
    ) {
        self.nodeProbe = nodeProbe
        self.executorSettings = executorSettings
        self.catalog = catalog
        self.store = store
        self.jobs = jobs
        self.remoteBuildNodes = remoteBuildNodes
        self.jobsDirectory = jobsDirectory
        self.version = version
        self.logger = logger
    }

    var lifecycle: RecordLifecycle { RecordLifecycle(catalog: catalog, store: store) }
}

/// Answers API requests: each endpoint's handler, chosen by ``RouteTable``. Every failure becomes a ``Problem``.
public struct APIHandler: Sendable {
    public var services: APIServices

    public init(services: APIServices) {
        self.services = services
    }

    /// The response to `request`, whose method the route table allows.
    public func respond(_ request: APIRequest) async throws -> Response {
        switch request.endpoint {
        case .version:
            return try Reply.encoded(["version": services.version])
        case .healthReady:
            _ = try services.catalog.appliedMigrations()
            return Reply.json(Array("{}".utf8))
        case .healthLive:
            return Reply.json(Array("{}".utf8))
        case .openAPIDocument:
            return Response(
                status: .ok, headers: [.contentType: "application/yaml"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: PackageResources.openapi_yaml)))
        case .collection(let collection, let version):
            switch collection {
            case .recipes: return try await recipes(request, version: version)
            case .images: return try await images(request, version: version)
            case .publicKeys: return try await publicKeys(request, version: version)
            case .jobs: return try await jobs(request)
            }
        case .record(let collection, let version, let id):
            switch collection {
            case .recipes: return try await recipe(request, version: version, id: Self.uuid(id, kind: "recipe"))
            case .images: return try await image(request, version: version, id: Self.uuid(id, kind: "image"))
            case .publicKeys: return try await publicKey(request, version: version, id: Self.uuid(id, kind: "public key"))
            case .jobs: return try await job(request, id: Self.uuid(id, kind: "job"))
            }
        case .deletedCollection(let kind):
            return try await deletedCollection(request, kind: kind)
        case .deletedRecord(let kind, let id):
            return try await deletedRecord(request, kind: kind, id: Self.uuid(id, kind: "deleted record"))
        case .remoteBuildNodes, .remoteBuildNode, .remoteBuildNodeStatuses, .remoteBuildNodeStatus:
            return try await remoteBuildNodes(request)
        case .jobRunner, .jobRunnerReport, .jobRunnerResult:
            return try await runner(request)
        }
    }

    /// A record id from a path: a malformed id is a 404, as an unknown one is.
    static func uuid(_ text: String, kind: String) throws(Problem) -> UUID {
        guard let id = UUID(uuidString: text) else { throw Problem.notFound(kind, text) }
        return id
    }

    static func unreachable(_ request: APIRequest) -> Problem {
        Problem.methodNotAllowed(request.method, allow: RouteTable.allowedMethods(request.endpoint))
    }
}

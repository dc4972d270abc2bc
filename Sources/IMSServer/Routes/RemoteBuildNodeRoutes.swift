import Foundation
import Hummingbird
import IMSCatalog
import IMSEngine
import IMSProtocol
import Logging

extension APIHandler {
    /// `/v3/remote-build-nodes[/{xname}]` and `/v3/remote-build-nodes/status[/{xname}]`.
    func remoteBuildNodes(_ request: APIRequest) async throws -> Response {
        let registry = services.remoteBuildNodes
        switch (request.endpoint, request.method) {
        case (.remoteBuildNodes, .get):
            return try Reply.encoded(await registry.all)
        case (.remoteBuildNodes, .post):
            let body = try request.json(RequestBodies.remoteBuildNodeCreate)
            return try Reply.encoded(try await registry.add(body["xname"]?.stringValue ?? ""), status: .created)
        case (.remoteBuildNodes, .delete):
            try await registry.removeAll()
            return Reply.noContent
        case (.remoteBuildNode(let xname), .get):
            guard let node = await registry.node(xname) else { throw Self.unknownNode(xname) }
            return try Reply.encoded(node)
        case (.remoteBuildNode(let xname), .delete):
            guard try await registry.remove(xname) else { throw Self.unknownNode(xname) }
            return Reply.noContent
        case (.remoteBuildNodeStatuses, .get):
            // Probed live over SSH (in parallel, each within the connect timeout) when remote build nodes run jobs.
            if let probe = services.nodeProbe { return try Reply.encoded(await probe.statuses()) }
            return try Reply.encoded(await registry.all.map { RemoteBuildNodes.Status(xname: $0.xname) })
        case (.remoteBuildNodeStatus(let xname), .get):
            guard await registry.node(xname) != nil else { throw Self.unknownNode(xname) }
            if let probe = services.nodeProbe { return try Reply.encoded(await probe.status(xname)) }
            return try Reply.encoded(RemoteBuildNodes.Status(xname: xname))
        default:
            throw Self.unreachable(request)
        }
    }

    static func unknownNode(_ xname: String) -> Problem {
        Problem(status: 404, detail: "The remote build node '\(xname)' could not be found.")
    }
}

import Foundation
import Hummingbird
import Logging

/// The server's one responder: checks the bearer token when auth is configured (401, before anything else, so a
/// refused request has no effect), resolves the endpoint (404), checks the method (405 with `Allow`), reads the body
/// within the size limit (413), runs the handler, turns failures into problem+json, and writes the access log.
public struct APIResponder: HTTPResponder {
    public typealias Context = BasicRequestContext

    public var handler: APIHandler
    public var maxBodySize: Int
    /// Verifies bearer tokens; nil when the server runs without auth.
    public var tokens: TokenVerifier?
    public var logger: Logger

    public init(handler: APIHandler, maxBodySize: Int, tokens: TokenVerifier? = nil, logger: Logger) {
        self.handler = handler
        self.maxBodySize = maxBodySize
        self.tokens = tokens
        self.logger = logger
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        let started = ContinuousClock.now
        let response: Response
        var user = "-"
        do {
            let endpoint = RouteTable.endpoint(path: request.uri.path)
            if endpoint?.isRunnerEndpoint == true {
                user = "runner"  // the handler checks the job's own token
            } else if let tokens, endpoint?.isPublic != true {
                do {
                    user = try await tokens.verify(authorization: request.headers[.authorization]).name
                } catch {
                    throw Problem.unauthorized(error)
                }
            }
            response = try await answer(request, endpoint: endpoint)
        } catch {
            let problem = Problem(error)
            if problem.status >= 500 { logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(problem.detail)"]) }
            response = problem.response
        }
        let elapsed = started.duration(to: .now)
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        logger.info("\(request.method.rawValue) \(request.uri.path) \(response.status.code)", metadata: [
            "method": "\(request.method.rawValue)", "path": "\(request.uri.path)", "status": "\(response.status.code)",
            "duration_ms": "\(String(format: "%.2f", milliseconds))", "user": "\(user)",
        ])
        return response
    }

    private func answer(_ request: Request, endpoint: Endpoint?) async throws -> Response {
        guard let endpoint else { throw Problem.unknownPath(request.uri.path) }
        let allowed = RouteTable.allowedMethods(endpoint)
        guard allowed.contains(request.method) else { throw Problem.methodNotAllowed(request.method, allow: allowed) }
        var body: [UInt8] = []
        if request.method == .post || request.method == .patch {
            body = try await Self.collect(request, limit: maxBodySize)
        }
        let query = request.uri.queryParameters.map { (String($0.key), String($0.value)) }
        return try await handler.respond(APIRequest(
            method: request.method, endpoint: endpoint, query: query, body: body, contentType: request.headers[.contentType],
            authorization: endpoint.isRunnerEndpoint ? request.headers[.authorization] : nil))
    }

    /// The request body, refused with 413 once it passes `limit` bytes (a larger `Content-Length` is refused before
    /// anything is read).
    static func collect(_ request: Request, limit: Int) async throws -> [UInt8] {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit { throw Problem.tooLarge(limit: limit) }
        var bytes: [UInt8] = []
        for try await chunk in request.body {
            guard bytes.count + chunk.readableBytes <= limit else { throw Problem.tooLarge(limit: limit) }
            bytes.append(contentsOf: chunk.readableBytesView)
        }
        return bytes
    }
}

import AsyncHTTPClient
import Foundation
import IMSCatalog
import NIOCore
import NIOHTTP1
import NIOSSL

/// A remote runner's side of the runner API: fetch the job, report, deliver the result. Every request carries the
/// job's token; the token is never logged.
public struct RunnerClient: Sendable {
    /// Why a request did not succeed.
    public enum Failure: Error, Sendable, CustomStringConvertible {
        /// The server refused the runner (401: token refused; 404: job gone; 409: job ended): the runner must stop.
        case refused(status: Int, detail: String)
        /// The server answered something else, or could not be reached (worth retrying).
        case unavailable(String)

        public var description: String {
            switch self {
            case .refused(let status, let detail): "the server refused this runner (\(status)): \(detail)"
            case .unavailable(let reason): "the server cannot be reached: \(reason)"
            }
        }
    }

    public let serverURL: String
    public let jobID: UUID
    private let token: String
    private let caCertificate: String?

    /// - Parameter caCertificate: a PEM file trusted besides the system's roots (the site CA, for an https server).
    public init(serverURL: String, jobID: UUID, token: String, caCertificate: String? = nil) {
        self.serverURL = serverURL.hasSuffix("/") ? String(serverURL.dropLast()) : serverURL
        self.jobID = jobID
        self.token = token
        self.caCertificate = caCertificate
    }

    var base: String { serverURL + "/v3/jobs/" + jobID.imsString + "/runner" }

    public func fetch() async throws(Failure) -> RunnerBundle {
        try await request(.GET, base, body: nil as RunnerReport?)
    }

    public func report(_ report: RunnerReport) async throws(Failure) -> RunnerAcknowledgement {
        try await request(.POST, base + "/report", body: report)
    }

    public func deliver(_ result: RunnerResult) async throws(Failure) -> RunnerAcknowledgement {
        try await request(.POST, base + "/result", body: result)
    }

    private func request<Body: Encodable, Answer: Decodable>(_ method: HTTPMethod, _ url: String, body: Body?) async throws(Failure) -> Answer {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caCertificate { tls.additionalTrustRoots = [.file(caCertificate)] }
        let client = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: .init(tlsConfiguration: tls, timeout: .init(connect: .seconds(10), read: .seconds(60))))
        let answer: Result<Answer, Failure>
        do {
            answer = .success(try await exchange(client, method, url, body: body))
        } catch {
            answer = .failure(error)
        }
        try? await client.shutdown()
        return try answer.get()
    }

    private func exchange<Body: Encodable, Answer: Decodable>(_ client: HTTPClient, _ method: HTTPMethod, _ url: String, body: Body?) async throws(Failure) -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer " + token)
        if let body {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            guard let data = try? encoder.encode(body) else { throw .unavailable("cannot encode the request") }
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: data))
        }
        let status: Int
        let bytes: ByteBuffer
        do {
            let response = try await client.execute(request, timeout: .seconds(120))
            status = Int(response.status.code)
            bytes = try await response.body.collect(upTo: 64 << 20)
        } catch {
            throw .unavailable("\(method.rawValue) \(url): \(error)")
        }
        let data = Data(bytes.readableBytesView)
        guard (200..<300).contains(status) else {
            let detail = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["detail"] as? String
                ?? String(decoding: data.prefix(300), as: UTF8.self)
            if [401, 403, 404, 409, 422].contains(status) { throw .refused(status: status, detail: detail) }
            throw .unavailable("\(method.rawValue) \(url) answered \(status): \(detail)")
        }
        do {
            return try JSONDecoder().decode(Answer.self, from: data)
        } catch {
            throw .unavailable("\(method.rawValue) \(url): unexpected answer (\(error))")
        }
    }
}

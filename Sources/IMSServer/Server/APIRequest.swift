import Foundation
import Hummingbird
import IMSCatalog
import IMSProtocol

/// One request as the API's handlers see it: the resolved endpoint, the method, the query and the raw body.
public struct APIRequest: Sendable {
    public var method: HTTPRequest.Method
    public var endpoint: Endpoint
    /// Query parameters in order; a name may repeat.
    public var query: [(String, String)]
    public var body: [UInt8]
    public var contentType: String?
    /// The `Authorization` header, kept for the runner endpoints only (they check the job's own token).
    public var authorization: String?

    public init(
        method: HTTPRequest.Method, endpoint: Endpoint, query: [(String, String)] = [], body: [UInt8] = [], contentType: String? = nil,
        authorization: String? = nil
    ) {
        self.method = method
        self.endpoint = endpoint
        self.query = query
        self.body = body
        self.contentType = contentType
        self.authorization = authorization
    }

    /// The body as a JSON object checked against `schema` (415, 400 or 422 otherwise).
    public func json(_ schema: BodySchema) throws(Problem) -> [String: JSONValue] {
        let object = try JSONBody.object(body, contentType: contentType)
        try schema.validate(object)
        return object
    }
}

/// Builds the API's successful responses.
public enum Reply {
    /// A JSON body (`application/json`).
    public static func json(_ bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// The image list (live or deleted) as the catalog writes it, one buffer per chunk: a 100,000-image list is
    /// never gathered into one array and copied again into the response.
    public static func images(_ catalog: Catalog, deleted: Bool = false) throws(CatalogError) -> Response {
        var chunks: [ByteBuffer] = []
        try catalog.writeImagesJSON(deleted: deleted, pretty: false) { chunk in chunks.append(ByteBuffer(bytes: chunk)) }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(contentsOf: chunks))
    }

    /// An `Encodable` value as JSON, keys sorted.
    public static func encoded(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return json(Array(try encoder.encode(value)), status: status)
    }

    /// 204 with an empty body.
    public static var noContent: Response { Response(status: .noContent) }
}

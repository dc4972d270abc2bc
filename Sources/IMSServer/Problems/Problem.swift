import Foundation
import Hummingbird
import IMSCatalog
import IMSStore

/// An RFC 7807 error answer, as IMS gives them: `{"status", "title", "detail"}` (plus `errors` on 422) with
/// `Content-Type: application/problem+json`, `title` being the status's reason phrase.
///
/// Every failure of a request ends as a `Problem`: handlers throw them, and ``Problem/init(_:)`` turns the lower
/// layers' errors (``CatalogError``, ``StoreError``) into the status IMS would answer.
public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
    /// The HTTP status code.
    public var status: Int
    /// One sentence saying what is wrong.
    public var detail: String
    /// Field errors of a 422, as marshmallow reports them: field name to messages.
    public var errors: [String: [String]]?
    /// The methods a path allows (a 405's `Allow` header).
    public var allow: [HTTPRequest.Method]?
    /// A 401's `WWW-Authenticate` challenge.
    public var challenge: String?

    public init(
        status: Int, detail: String, errors: [String: [String]]? = nil, allow: [HTTPRequest.Method]? = nil, challenge: String? = nil
    ) {
        self.status = status
        self.detail = detail
        self.errors = errors
        self.allow = allow
        self.challenge = challenge
    }

    /// The reason phrase IMS (werkzeug) gives `status`, which is the problem's `title`.
    public var title: String { Self.reasonPhrase(status) }

    public var description: String { "\(status) \(title): \(detail)" }

    /// IMS's (werkzeug's) reason phrases for the statuses this API answers with.
    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 409: "Conflict"
        case 413: "Request Entity Too Large"
        case 415: "Unsupported Media Type"
        case 422: "Unprocessable Entity"
        case 500: "Internal Server Error"
        case 503: "Service Unavailable"
        default: HTTPResponse.Status(code: status).reasonPhrase
        }
    }

    // MARK: The problems IMS answers with

    /// 400 for a request without a body, or with a falsy one (`{}`, `[]`, `null`, `false`, `0`, `""`).
    public static let noInput = Problem(status: 400, detail: "No input provided. Check the body of the request.")

    /// 404 for an unknown path.
    public static func unknownPath(_ path: String) -> Problem {
        Problem(status: 404, detail: "The requested URL \(path) was not found on the server.")
    }

    /// 404 for an unknown (or malformed) record id.
    public static func notFound(_ kind: String, _ id: String) -> Problem {
        Problem(status: 404, detail: "The \(kind) with id '\(id)' could not be found.")
    }

    /// 405 with the methods the path allows.
    public static func methodNotAllowed(_ method: HTTPRequest.Method, allow: [HTTPRequest.Method]) -> Problem {
        Problem(status: 405, detail: "The method \(method.rawValue) is not allowed for the requested URL.", allow: allow)
    }

    /// 401 for a request whose bearer token is missing or refused, with RFC 6750's challenge.
    public static func unauthorized(_ rejection: TokenRejection) -> Problem {
        var challenge = #"Bearer realm="ims""#
        if let error = rejection.challengeError {
            let reason = rejection.description.replacingOccurrences(of: "\"", with: "'")
            challenge += #", error="\#(error)", error_description="\#(reason)""#
        }
        return Problem(status: 401, detail: rejection.description, challenge: challenge)
    }

    /// 413 for a body over the server's limit.
    public static func tooLarge(limit: Int) -> Problem {
        Problem(status: 413, detail: "The request body is larger than the limit of \(limit) bytes.")
    }

    /// 415 for a body that is not declared as JSON.
    public static func unsupportedMediaType(_ contentType: String?) -> Problem {
        Problem(
            status: 415,
            detail: "Invalid Content-type (\(contentType ?? "none")), expected JSON data (application/json).")
    }

    /// 422 with field errors.
    public static func invalid(_ errors: [String: [String]]) -> Problem {
        Problem(status: 422, detail: "The request was well-formed but was unable to be followed due to semantic errors.", errors: errors)
    }

    /// 422 for one field.
    public static func invalid(field: String, _ message: String) -> Problem {
        invalid([field: [message]])
    }

    // MARK: Lower layers' errors

    /// The problem IMS would answer for `error`: catalog and store errors by kind, anything else 500.
    public init(_ error: any Error) {
        switch error {
        case let problem as Problem: self = problem
        case let catalog as CatalogError: self = Self.catalog(catalog)
        case let store as StoreError: self = Self.store(store)
        default: self = Problem(status: 500, detail: "\(error)")
        }
    }

    static func catalog(_ error: CatalogError) -> Problem {
        switch error {
        case .notFound: Problem(status: 404, detail: error.description)
        case .invalidValue(let field, _, _), .invalidField(let field, _): .invalid(field: field, error.description)
        case .linkConflict, .linkInUse, .duplicateID: Problem(status: 409, detail: error.description)
        case .invalidJob: Problem(status: 400, detail: error.description)
        case .dataDirectory, .database, .corruptRow, .importData, .restoreRefused, .exportFailed: Problem(status: 500, detail: error.description)
        }
    }

    static func store(_ error: StoreError) -> Problem {
        switch error {
        case .notFound, .invalidKey, .tooLarge, .notInStore, .invalidManifest, .notDeleted, .unsupportedStore:
            .invalid(field: "link", error.description)
        case .io, .checksumMismatch, .sourceFailed: Problem(status: 500, detail: error.description)
        }
    }

    // MARK: Rendering

    /// The body: `{"detail", "errors"?, "status", "title"}`.
    public var body: [UInt8] {
        var object: [String: Any] = ["status": status, "title": title, "detail": detail]
        if let errors { object["errors"] = errors }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return Array(data)
    }

    /// The HTTP response: this problem as `application/problem+json`, with `Allow` on a 405.
    public var response: Response {
        var headers: HTTPFields = [.contentType: "application/problem+json"]
        if let allow { headers[.allow] = allow.map(\.rawValue).joined(separator: ", ") }
        if let challenge { headers[.wwwAuthenticate] = challenge }
        return Response(
            status: HTTPResponse.Status(code: status, reasonPhrase: title), headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

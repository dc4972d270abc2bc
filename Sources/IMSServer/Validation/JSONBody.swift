import Foundation
import IMSProtocol

/// The JSON body of a POST or PATCH, checked as IMS checks it before any field is looked at.
public enum JSONBody {
    /// Whether a `Content-Type` declares JSON (`application/json`, with parameters, or any `+json` type).
    public static func isJSON(contentType: String?) -> Bool {
        guard let contentType else { return false }
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json"))
    }

    /// Parses a request body into a JSON object.
    ///
    /// - 415 when the content type is not JSON;
    /// - 400 when the body is empty, not JSON, or falsy (`{}`, `[]`, `null`, `false`, `0`, `""`), as IMS does;
    /// - 422 when it is JSON but not an object.
    public static func object(_ bytes: [UInt8], contentType: String?) throws(Problem) -> [String: JSONValue] {
        guard isJSON(contentType: contentType) else { throw Problem.unsupportedMediaType(contentType) }
        guard bytes.contains(where: { !" \t\r\n".utf8.contains($0) }) else { throw Problem.noInput }
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
        } catch {
            throw Problem(status: 400, detail: "The request body is not valid JSON.")
        }
        if isFalsy(value) { throw Problem.noInput }
        guard case .object(let object) = value else { throw Problem.invalid(field: "_schema", "Invalid input type.") }
        return object
    }

    /// Python's truthiness, which IMS applies to the parsed body.
    public static func isFalsy(_ value: JSONValue) -> Bool {
        switch value {
        case .null: true
        case .bool(let flag): !flag
        case .number(let number): number == 0
        case .string(let text): text.isEmpty
        case .array(let items): items.isEmpty
        case .object(let fields): fields.isEmpty
        }
    }
}

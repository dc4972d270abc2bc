import Foundation
import IMSCatalog
import IMSProtocol

/// What one field of a request body may hold.
public enum FieldKind: Sendable {
    /// A string of at least `minLength` characters.
    case string(minLength: Int)
    case bool
    /// A whole number from `minimum` to `maximum`.
    case integer(minimum: Int, maximum: Int)
    case uuid
    /// One of these strings.
    case choice([String])
    /// An ArtifactLink object `{path, etag?, type}`, or null.
    case link
    /// A list of `{key, value}` strings.
    case keyValueList
    /// Image metadata on POST: `{"key": K, "value": V}` or a plain map of strings.
    case metadataMap
    /// Image metadata on PATCH: `{"operation": "set"|"remove", "key", "value"}`.
    case metadataChange
    /// Job SSH containers: a list of `{name, jail?}`.
    case sshContainers
}

/// One field of a body schema.
public struct FieldRule: Sendable {
    public var name: String
    public var kind: FieldKind
    public var required: Bool
    /// Whether `null` is accepted (and means "not given").
    public var nullable: Bool

    public init(_ name: String, _ kind: FieldKind, required: Bool = false, nullable: Bool = false) {
        self.name = name
        self.kind = kind
        self.required = required
        self.nullable = nullable
    }
}

/// The fields a request body may have, checked as IMS's marshmallow schemas do (`unknown = RAISE`): every problem
/// is collected into a 422 whose `errors` maps field names to messages.
public struct BodySchema: Sendable {
    public var fields: [FieldRule]

    public init(_ fields: [FieldRule]) {
        self.fields = fields
    }

    /// Checks `body` against the schema.
    ///
    /// - Throws: a 422 ``Problem`` listing unknown fields, missing required ones and malformed values.
    public func validate(_ body: [String: JSONValue]) throws(Problem) {
        var errors: [String: [String]] = [:]
        let known = Set(fields.map(\.name))
        for name in body.keys where !known.contains(name) { errors[name] = ["Unknown field."] }
        for rule in fields {
            guard let value = body[rule.name] else {
                if rule.required { errors[rule.name] = ["Missing data for required field."] }
                continue
            }
            if case .null = value {
                if !rule.nullable { errors[rule.name] = ["Field may not be null."] }
                continue
            }
            if let message = Self.check(value, rule.kind) { errors[rule.name] = [message] }
        }
        if !errors.isEmpty { throw Problem.invalid(errors) }
    }

    /// What is wrong with `value` for `kind`, or nil.
    static func check(_ value: JSONValue, _ kind: FieldKind) -> String? {
        switch kind {
        case .string(let minLength):
            guard case .string(let text) = value else { return "Not a valid string." }
            return text.count < minLength ? "Shorter than minimum length \(minLength)." : nil
        case .bool:
            guard case .bool = value else { return "Not a valid boolean." }
            return nil
        case .integer(let minimum, let maximum):
            // Compared as the parsed double, so a whole number too large for Int is out of range, not "not an integer".
            guard case .number(let number) = value, number.isFinite, number.rounded() == number else { return "Not a valid integer." }
            guard number >= Double(minimum), number <= Double(maximum) else {
                return "Must be greater than or equal to \(minimum) and less than or equal to \(maximum)."
            }
            return nil
        case .uuid:
            guard case .string(let text) = value, UUID(uuidString: text) != nil else { return "Not a valid UUID." }
            return nil
        case .choice(let allowed):
            guard case .string(let text) = value, allowed.contains(text) else { return "Must be one of: \(allowed.joined(separator: ", "))." }
            return nil
        case .link:
            guard case .object(let object) = value else { return "Not a valid mapping type." }
            return Self.firstError(object, BodySchema([
                FieldRule("path", .string(minLength: 1), required: true), FieldRule("etag", .string(minLength: 0)),
                FieldRule("type", .choice(ArtifactLinkType.allowedValues), required: true),
            ]))
        case .keyValueList:
            guard case .array(let items) = value else { return "Not a valid list." }
            let entry = BodySchema([FieldRule("key", .string(minLength: 1), required: true), FieldRule("value", .string(minLength: 0), required: true)])
            for item in items {
                guard case .object(let object) = item else { return "Not a valid mapping type." }
                if let message = firstError(object, entry) { return message }
            }
            return nil
        case .metadataMap:
            guard case .object(let object) = value else { return "Not a valid mapping type." }
            for (_, entry) in object {
                guard case .string = entry else { return "Metadata values must be strings." }
            }
            return nil
        case .metadataChange:
            guard case .object(let object) = value else { return "Not a valid mapping type." }
            if let message = firstError(object, BodySchema([
                FieldRule("operation", .choice(MetadataOperation.allCases.map(\.rawValue)), required: true),
                FieldRule("key", .string(minLength: 1), required: true), FieldRule("value", .string(minLength: 0)),
            ])) { return message }
            if object["operation"]?.stringValue == MetadataOperation.set.rawValue, object["value"]?.stringValue == nil {
                return "value: Missing data for required field."
            }
            return nil
        case .sshContainers:
            guard case .array(let items) = value else { return "Not a valid list." }
            let entry = BodySchema([FieldRule("name", .string(minLength: 1), required: true), FieldRule("jail", .bool)])
            for item in items {
                guard case .object(let object) = item else { return "Not a valid mapping type." }
                if let message = firstError(object, entry) { return message }
            }
            return nil
        }
    }

    /// The first of a nested schema's errors, as `field: message`.
    static func firstError(_ object: [String: JSONValue], _ schema: BodySchema) -> String? {
        do {
            try schema.validate(object)
            return nil
        } catch {
            guard let (field, messages) = error.errors?.sorted(by: { $0.key < $1.key }).first else { return error.detail }
            return "\(field): \(messages.first ?? "invalid")"
        }
    }

    /// A JSON number that is a whole number.
    static func integer(_ value: JSONValue) -> Int? {
        guard case .number(let number) = value, number.rounded() == number, abs(number) < 1e15 else { return nil }
        return Int(number)
    }
}

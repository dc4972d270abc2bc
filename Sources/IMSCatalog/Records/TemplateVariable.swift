/// One `{key, value}` entry of a recipe's `template_dictionary`.
public struct TemplateVariable: Codable, Hashable, Sendable, RecordJSONWritable {
    /// The variable name used in the recipe templates.
    public var key: String
    /// Its value.
    public var value: String

    /// Creates an entry.
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }

    /// Parses `KEY=VALUE` (the value may contain `=`).
    ///
    /// - Throws: ``CatalogError/invalidField(field:reason:)`` when there is no `=` or the key is empty.
    public init(parsing text: String) throws(CatalogError) {
        guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
            throw CatalogError.invalidField(field: "template_dictionary", reason: "'\(text)' is not KEY=VALUE")
        }
        self.init(key: String(text[..<equals]), value: String(text[text.index(after: equals)...]))
    }

    public func writeJSON(to writer: inout RecordJSONWriter) {
        writer.beginObject()
        writer.fieldKey("key")
        writer.string(key)
        writer.fieldKey("value")
        writer.string(value)
        writer.endObject()
    }
}

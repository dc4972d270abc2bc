/// An XML element of a description, detached from libxml2.
///
/// Used for the parts of a description that the typed model keeps generically (the children of
/// `<type>`, `<drivers>`, `<strip>`, `<containers>`, …). Comments and processing instructions are
/// dropped; `text` is the element's own character data (text and CDATA children, untrimmed).
public struct KiwiElement: Sendable, Hashable {
    /// The element name, with its namespace prefix if it had one (`xsi:…`).
    public var name: String
    /// The attributes, by name (with the prefix for namespaced ones).
    public var attributes: [String: String]
    /// The element's own character data, untrimmed.
    public var text: String
    /// Child elements in document order.
    public var children: [KiwiElement]
    /// Where the element starts.
    public var location: KiwiSourceLocation
    /// For top-level `<repository>` elements: the position among the repositories of their own
    /// file (used to find the element again when rewriting).
    var repositoryOrdinal: Int = 0

    /// Creates an element.
    public init(
        name: String, attributes: [String: String] = [:], text: String = "", children: [KiwiElement] = [],
        location: KiwiSourceLocation
    ) {
        self.name = name
        self.attributes = attributes
        self.text = text
        self.children = children
        self.location = location
    }

    /// The value of an attribute.
    public subscript(attribute name: String) -> String? { attributes[name] }

    /// The text with surrounding whitespace removed.
    public var trimmedText: String { text.kiwiTrimmed }

    /// The child elements with the given name, in document order.
    public func children(named name: String) -> [KiwiElement] { children.filter { $0.name == name } }

    /// The first child element with the given name.
    public func firstChild(named name: String) -> KiwiElement? { children.first { $0.name == name } }
}

extension KiwiElement: KiwiScoped {
    /// The element's `profiles` attribute, split at commas; empty means all.
    public var profiles: [String] { (attributes["profiles"] ?? "").kiwiCommaList }
    /// The element's `arch` attribute, split at commas; empty means all.
    public var arch: [String] { (attributes["arch"] ?? "").kiwiCommaList }
}

extension String {
    /// The string without leading and trailing ASCII/Unicode whitespace and newlines.
    var kiwiTrimmed: String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }

    /// Comma-separated tokens, trimmed, without empties (`"a, b,,c"` → `["a", "b", "c"]`).
    var kiwiCommaList: [String] {
        split(separator: ",", omittingEmptySubsequences: true).map { String($0).kiwiTrimmed }.filter { !$0.isEmpty }
    }

    /// KIWI's boolean spelling: `true`/`false` (case-insensitive); anything else is nil.
    var kiwiBool: Bool? {
        switch kiwiTrimmed.lowercased() {
        case "true": true
        case "false": false
        default: nil
        }
    }
}

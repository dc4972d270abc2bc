/// The one error type of the KIWI layer.
///
/// It carries the diagnostics that made the operation fail (at least one of them an error), each
/// with its stable code and `file:line`, so a caller can print them or match on `code`.
public struct KiwiError: Error, Sendable, CustomStringConvertible {
    /// The diagnostics behind the failure; the first error is the primary cause.
    public var diagnostics: [KiwiDiagnostic]

    /// Creates an error from diagnostics.
    public init(_ diagnostics: [KiwiDiagnostic]) {
        self.diagnostics = diagnostics
    }

    /// Creates an error from one error diagnostic.
    public init(_ code: KiwiDiagnosticCode, _ message: String, at location: KiwiSourceLocation?) {
        self.init([KiwiDiagnostic(.error, code, message, at: location)])
    }

    /// Creates an error about a file as a whole.
    public init(_ code: KiwiDiagnosticCode, _ message: String, file: String?) {
        self.init([KiwiDiagnostic(.error, code, message, file: file, line: nil)])
    }

    /// The primary diagnostic: the first error, else the first diagnostic.
    public var primary: KiwiDiagnostic? {
        diagnostics.first { $0.severity == .error } ?? diagnostics.first
    }

    /// The code of the primary diagnostic.
    public var code: KiwiDiagnosticCode? { primary?.code }

    /// The diagnostics, one per line, errors first.
    public var description: String {
        let ordered = diagnostics.enumerated().sorted { a, b in
            a.element.severity == b.element.severity ? a.offset < b.offset : a.element.severity < b.element.severity
        }
        return ordered.map(\.element.description).joined(separator: "\n")
    }
}

import CLibXML2

/// libxml2 set-up that must happen once per process.
///
/// `xmlInitParser()` is called exactly once. The process-wide external entity loader is replaced
/// by one that loads nothing, so no libxml2 code path in this process can open a file or a URL
/// on a document's behalf (descriptions are always read by Swift code and handed over as bytes).
enum LibXML2Runtime {
    static let ready: Bool = {
        xmlInitParser()
        xmlSetExternalEntityLoader(refusingEntityLoader)
        return true
    }()
}

/// Loads nothing: every external DTD, external entity or XInclude request fails.
private let refusingEntityLoader: xmlExternalEntityLoader = { _, _, _ in nil }

/// Parse limits for one document.
struct XMLParseLimits {
    /// Deepest accepted nesting (root = 1).
    var maxDepth: Int
    /// Most elements this document may add.
    var elementBudget: Int
}

/// The per-parse state the C callbacks reach through `ctxt->_private`.
///
/// Lives for one `parse` call only; never shared between tasks.
private final class ParseSession {
    let file: String
    let limits: XMLParseLimits
    var elementCount = 0
    var refusal: KiwiDiagnostic?
    var errors: [KiwiDiagnostic] = []
    var warnings: [KiwiDiagnostic] = []
    var originalStartElementNs: startElementNsSAX2Func?
    var originalInternalSubset: internalSubsetSAXFunc?

    init(file: String, limits: XMLParseLimits) {
        self.file = file
        self.limits = limits
    }

    static func from(_ ctx: UnsafeMutableRawPointer?) -> (xmlParserCtxtPtr, ParseSession)? {
        guard let ctx else { return nil }
        let ctxt = ctx.assumingMemoryBound(to: xmlParserCtxt.self)
        guard let opaque = ctxt.pointee._private else { return nil }
        return (ctxt, Unmanaged<ParseSession>.fromOpaque(opaque).takeUnretainedValue())
    }

    static func currentLine(_ ctxt: xmlParserCtxtPtr) -> Int {
        guard let input = ctxt.pointee.input else { return 0 }
        return Int(input.pointee.line)
    }

    func refuse(_ ctxt: xmlParserCtxtPtr, _ code: KiwiDiagnosticCode, _ message: String) {
        if refusal == nil {
            refusal = KiwiDiagnostic(.error, code, message, file: file, line: Self.currentLine(ctxt))
        }
        xmlStopParser(ctxt)
    }
}

/// Counts elements and depth while libxml2 parses, and stops the parser at a limit before the
/// element is added to the tree, so memory stays bounded.
private let limitingStartElementNs: startElementNsSAX2Func = {
    ctx, localname, prefix, uri, nbNamespaces, namespaces, nbAttributes, nbDefaulted, attributes in
    guard let (ctxt, session) = ParseSession.from(ctx) else { return }
    if session.refusal != nil { return }
    session.elementCount += 1
    // During this callback the new element is not yet on the name stack.
    let depth = Int(ctxt.pointee.nameNr) + 1
    if depth > session.limits.maxDepth {
        session.refuse(
            ctxt, .xmlTooDeep,
            "elements are nested deeper than \(session.limits.maxDepth) levels; KIWI descriptions are shallow, so this file is refused"
        )
        return
    }
    if session.elementCount > session.limits.elementBudget {
        session.refuse(
            ctxt, .xmlTooManyElements,
            "the description has more than the limit of elements (\(session.limits.elementBudget) left for this file); split it or raise the element limit"
        )
        return
    }
    session.originalStartElementNs?(
        ctx, localname, prefix, uri, nbNamespaces, namespaces, nbAttributes, nbDefaulted, attributes)
}

/// Notes a DOCTYPE; the DTD node is still created, but no external subset is ever loaded.
private let notingInternalSubset: internalSubsetSAXFunc = { ctx, name, externalID, systemID in
    guard let (ctxt, session) = ParseSession.from(ctx) else { return }
    var what = "a <!DOCTYPE> declaration"
    if let systemID {
        what += " referring to '\(String(cString: systemID))'"
    }
    session.warnings.append(
        KiwiDiagnostic(
            .warning, .xmlDoctypeIgnored,
            "\(what); the DTD is ignored and never loaded, remove the declaration",
            file: session.file, line: ParseSession.currentLine(ctxt)))
    session.originalInternalSubset?(ctx, name, externalID, systemID)
}

/// Never loads an external subset, whatever the options.
private let ignoringExternalSubset: externalSubsetSAXFunc = { _, _, _, _ in }

/// Refuses any entity declaration: no XXE, no billion laughs.
private let refusingEntityDecl: entityDeclSAXFunc = { ctx, name, _, _, _, _ in
    guard let (ctxt, session) = ParseSession.from(ctx) else { return }
    let entity = name.map { String(cString: $0) } ?? "?"
    session.refuse(
        ctxt, .xmlEntityDeclaration,
        "the DOCTYPE declares the entity '\(entity)'; entity declarations are refused (they enable XXE and entity-expansion attacks), remove the <!DOCTYPE …> block"
    )
}

/// Same for unparsed (NDATA) entities.
private let refusingUnparsedEntityDecl: unparsedEntityDeclSAXFunc = { ctx, name, _, _, _ in
    guard let (ctxt, session) = ParseSession.from(ctx) else { return }
    let entity = name.map { String(cString: $0) } ?? "?"
    session.refuse(
        ctxt, .xmlEntityDeclaration,
        "the DOCTYPE declares the unparsed entity '\(entity)'; entity declarations are refused, remove the <!DOCTYPE …> block"
    )
}

/// Collects libxml2's structured errors with their line numbers instead of printing them.
private let collectingStructuredError: xmlStructuredErrorFunc = { userData, error in
    guard let error, let (_, session) = ParseSession.from(userData) else { return }
    if session.refusal != nil { return }  // consequences of our own stop
    var message = error.pointee.message.map { String(cString: $0) } ?? "unknown libxml2 error"
    message = message.kiwiTrimmed
    let line = Int(error.pointee.line)
    let diagnostic = KiwiDiagnostic(
        error.pointee.level == XML_ERR_WARNING ? .warning : .error, .xmlMalformed, message,
        file: session.file, line: line > 0 ? line : nil)
    if diagnostic.severity == .error {
        if session.errors.count < 20 { session.errors.append(diagnostic) }
    } else if session.warnings.count < 20 {
        session.warnings.append(diagnostic)
    }
}

/// Parses untrusted XML with libxml2, safely.
///
/// - Options: `XML_PARSE_NONET | XML_PARSE_BIG_LINES` only. Never `XML_PARSE_NOENT`,
///   `XML_PARSE_DTDLOAD`, `XML_PARSE_DTDATTR`, `XML_PARSE_DTDVALID`, `XML_PARSE_XINCLUDE` or
///   `XML_PARSE_HUGE` (so libxml2's own limits stay on).
/// - SAX hooks refuse entity declarations, never load external subsets, and enforce the depth
///   and element limits while parsing.
/// - Errors go to a per-context structured handler (context through `ctxt->_private` with
///   `Unmanaged`), never to stderr.
/// - The `xmlDoc` lives only inside `withDocument`'s body.
enum SafeXMLParser {
    static let options: Int32 = Int32(bitPattern: XML_PARSE_NONET.rawValue | XML_PARSE_BIG_LINES.rawValue)

    /// Parses `bytes` and runs `body` on the document; the document is freed when `body` returns.
    ///
    /// - Parameters:
    ///   - bytes: the file's content.
    ///   - file: the display path used in diagnostics.
    ///   - limits: depth and element limits.
    ///   - body: receives the document and its root element (never nil).
    /// - Returns: the body's result, the number of elements, and non-fatal warnings.
    /// - Throws: `KiwiError` when the document is refused or not well formed.
    static func withDocument<T>(
        _ bytes: [UInt8], file: String, limits: XMLParseLimits,
        _ body: (xmlDocPtr, xmlNodePtr) throws -> T
    ) throws -> (value: T, elementCount: Int, warnings: [KiwiDiagnostic]) {
        precondition(LibXML2Runtime.ready)
        guard bytes.count <= Int(Int32.max) else {
            throw KiwiError(.fileTooLarge, "the file is too large for libxml2", file: file)
        }
        guard let ctxt = xmlNewParserCtxt() else {
            throw KiwiError(.fileUnreadable, "libxml2 could not allocate a parser context", file: file)
        }
        defer { xmlFreeParserCtxt(ctxt) }

        let session = ParseSession(file: file, limits: limits)
        let opaque = Unmanaged.passRetained(session).toOpaque()
        defer { Unmanaged<ParseSession>.fromOpaque(opaque).release() }
        ctxt.pointee._private = opaque
        if let sax = ctxt.pointee.sax {
            session.originalStartElementNs = sax.pointee.startElementNs
            session.originalInternalSubset = sax.pointee.internalSubset
            sax.pointee.startElementNs = limitingStartElementNs
            sax.pointee.internalSubset = notingInternalSubset
            sax.pointee.externalSubset = ignoringExternalSubset
            sax.pointee.entityDecl = refusingEntityDecl
            sax.pointee.unparsedEntityDecl = refusingUnparsedEntityDecl
            sax.pointee.serror = collectingStructuredError
        }

        let document: xmlDocPtr? = bytes.withUnsafeBufferPointer { buffer in
            buffer.baseAddress.flatMap { base in
                base.withMemoryRebound(to: CChar.self, capacity: buffer.count) { chars in
                    xmlCtxtReadMemory(ctxt, chars, Int32(buffer.count), nil, nil, options)
                }
            }
        }
        defer { if let document { xmlFreeDoc(document) } }

        if let refusal = session.refusal {
            throw KiwiError([refusal])
        }
        guard let document, ctxt.pointee.wellFormed != 0 else {
            var errors = session.errors
            if errors.isEmpty {
                errors.append(
                    KiwiDiagnostic(
                        .error, .xmlMalformed, bytes.isEmpty ? "the file is empty" : "the file is not well-formed XML",
                        file: file, line: nil))
            }
            throw KiwiError(errors + session.warnings)
        }
        guard let root = xmlDocGetRootElement(document) else {
            throw KiwiError(.xmlMalformed, "the document has no root element", file: file)
        }
        let value = try body(document, root)
        return (value, session.elementCount, session.warnings)
    }

    /// Parses `bytes` into a detached element tree.
    static func parse(_ bytes: [UInt8], file: String, limits: XMLParseLimits) throws -> (
        root: KiwiElement, elementCount: Int, warnings: [KiwiDiagnostic]
    ) {
        let result = try withDocument(bytes, file: file, limits: limits) { _, root in
            convert(root, file: file)
        }
        return (result.value, result.elementCount, result.warnings)
    }

    /// Copies an element and its descendants out of libxml2.
    private static func convert(_ node: xmlNodePtr, file: String) -> KiwiElement {
        var attributes: [String: String] = [:]
        var attribute = node.pointee.properties
        while let current = attribute {
            if let rawName = current.pointee.name {
                var name = String(cString: rawName)
                if let prefix = current.pointee.ns?.pointee.prefix {
                    name = String(cString: prefix) + ":" + name
                }
                attributes[name] = textContent(of: current.pointee.children)
            }
            attribute = current.pointee.next
        }
        var text = ""
        var children: [KiwiElement] = []
        var child = node.pointee.children
        while let current = child {
            switch current.pointee.type {
            case XML_ELEMENT_NODE:
                children.append(convert(current, file: file))
            case XML_TEXT_NODE, XML_CDATA_SECTION_NODE:
                if let content = current.pointee.content { text += String(cString: content) }
            default:
                break
            }
            child = current.pointee.next
        }
        var name = node.pointee.name.map { String(cString: $0) } ?? ""
        if let prefix = node.pointee.ns?.pointee.prefix {
            name = String(cString: prefix) + ":" + name
        }
        return KiwiElement(
            name: name, attributes: attributes, text: text, children: children,
            location: KiwiSourceLocation(file: file, line: Int(xmlGetLineNo(node))))
    }

    /// The concatenated text of an attribute's (or element's) text children.
    static func textContent(of first: xmlNodePtr?) -> String {
        var result = ""
        var node = first
        while let current = node {
            if current.pointee.type == XML_TEXT_NODE || current.pointee.type == XML_CDATA_SECTION_NODE,
                let content = current.pointee.content
            {
                result += String(cString: content)
            }
            node = current.pointee.next
        }
        return result
    }
}

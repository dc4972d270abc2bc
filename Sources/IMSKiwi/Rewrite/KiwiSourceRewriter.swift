import CLibXML2

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Rewrites repository source paths in description files, in place.
///
/// Used by the recipes layer to point repositories at mirrors or local repos. The main file and
/// every included file that holds a changed repository are edited through libxml2: only the
/// `path` attribute of `<source>` changes (a `<source>` is added when a repository had none).
/// Comments, element order, text and the original XML declaration (with its encoding) are kept;
/// libxml2 re-serialises start tags, so attribute quoting becomes `"` and line breaks inside a
/// start tag become spaces. Files without changes are not touched. Each file is replaced
/// atomically (temporary file in the same directory, same permission bits, fsync, rename).
public enum KiwiSourceRewriter {
    /// One changed repository source.
    public struct Rewrite: Sendable, Hashable, Codable {
        /// The file that was edited (display path).
        public var file: String
        /// The line of `<source>` (or of `<repository>` when a source was added).
        public var line: Int
        /// The repository alias, or nil.
        public var alias: String?
        /// The previous path, or nil when there was no `<source>`.
        public var old: String?
        /// The new path.
        public var new: String
    }

    /// Finds the description in a directory and rewrites its repository sources.
    ///
    /// - Parameters:
    ///   - descriptionDirectory: the description directory.
    ///   - options: limits for loading.
    ///   - transform: called once per repository (in document order, after include expansion;
    ///     a file included twice is offered once); returns the new source path, or nil to keep
    ///     the current one.
    /// - Returns: what changed, in document order.
    /// - Throws: `KiwiError` when the description cannot be loaded or a file cannot be written;
    ///   errors thrown by `transform` are passed on, and nothing is written in that case.
    public static func rewrite(
        descriptionDirectory: String, options: KiwiLoadOptions = .init(),
        transform: (KiwiRepository) throws -> String?
    ) throws -> [Rewrite] {
        try rewrite(KiwiLoader.load(directory: descriptionDirectory, options: options), options: options, transform: transform)
    }

    /// Rewrites the repository sources of a description file (for example a rendered template).
    ///
    /// - Parameters:
    ///   - file: the description file.
    ///   - options: limits for loading.
    ///   - transform: as for `rewrite(descriptionDirectory:options:transform:)`.
    /// - Returns: what changed, in document order.
    /// - Throws: as for `rewrite(descriptionDirectory:options:transform:)`.
    public static func rewrite(
        file: String, options: KiwiLoadOptions = .init(), transform: (KiwiRepository) throws -> String?
    ) throws -> [Rewrite] {
        try rewrite(KiwiLoader.load(file: file, options: options), options: options, transform: transform)
    }

    private struct Change {
        var ordinal: Int
        var newPath: String
        var rewrite: Rewrite
    }

    private static func rewrite(
        _ description: KiwiDescription, options: KiwiLoadOptions, transform: (KiwiRepository) throws -> String?
    ) throws -> [Rewrite] {
        var changesByFile: [String: [Change]] = [:]
        var fileOrder: [String] = []
        var seen = Set<String>()
        var all: [Rewrite] = []
        for repository in description.repositories {
            let key = "\(repository.location.file)#\(repository.ordinalInFile)"
            guard seen.insert(key).inserted else { continue }
            guard let newPath = try transform(repository), newPath != repository.sourcePath else { continue }
            let location = repository.sourceLocation ?? repository.location
            let rewrite = Rewrite(
                file: repository.location.file, line: location.line, alias: repository.alias,
                old: repository.sourcePath, new: newPath)
            if changesByFile[repository.location.file] == nil { fileOrder.append(repository.location.file) }
            changesByFile[repository.location.file, default: []].append(
                Change(ordinal: repository.ordinalInFile, newPath: newPath, rewrite: rewrite))
            all.append(rewrite)
        }
        // Prepare every file first, so a problem in one leaves all of them untouched.
        var prepared: [(path: String, display: String, bytes: [UInt8])] = []
        for file in fileOrder {
            guard let changes = changesByFile[file] else { continue }
            let absolute = KiwiFileSystem.absolute(file)
            let real = KiwiFileSystem.realPath(absolute) ?? absolute
            let original = try KiwiFileSystem.readFile(real, limit: options.maxFileSize, display: file)
            let edited = try edit(original, display: file, changes: changes, options: options)
            prepared.append((real, file, edited))
        }
        for file in prepared {
            try KiwiFileSystem.atomicReplace(file.path, with: file.bytes, display: file.display)
        }
        return all
    }

    /// Applies the changes to one file's bytes and returns the new bytes.
    private static func edit(_ original: [UInt8], display: String, changes: [Change], options: KiwiLoadOptions) throws
        -> [UInt8]
    {
        let limits = XMLParseLimits(maxDepth: options.maxDepth, elementBudget: options.maxElements)
        let serialized = try SafeXMLParser.withDocument(original, file: display, limits: limits) { document, root in
            var ordinal = 0
            var child = root.pointee.children
            while let node = child {
                defer { child = node.pointee.next }
                guard node.pointee.type == XML_ELEMENT_NODE, name(of: node) == "repository" else { continue }
                defer { ordinal += 1 }
                guard let change = changes.first(where: { $0.ordinal == ordinal }) else { continue }
                var source: xmlNodePtr?
                var element = node.pointee.children
                while let current = element {
                    if current.pointee.type == XML_ELEMENT_NODE, name(of: current) == "source" {
                        source = current
                        break
                    }
                    element = current.pointee.next
                }
                if source == nil {
                    source = withXMLString("source") { xmlNewChild(node, nil, $0, nil) }
                }
                guard let source else {
                    throw KiwiError(.fileUnwritable, "libxml2 could not add a <source> element", file: display)
                }
                let attribute = withXMLString("path") { name in
                    withXMLString(change.newPath) { value in xmlSetProp(source, name, value) }
                }
                if attribute == nil {
                    throw KiwiError(.fileUnwritable, "libxml2 could not set the source path", file: display)
                }
            }
            return try serialize(document, display: display)
        }.value
        let result = restoreProlog(original: original, serialized: serialized)
        // The result must read back as well-formed XML before it replaces anything.
        _ = try SafeXMLParser.parse(result, file: display, limits: limits)
        return result
    }

    private static func name(of node: xmlNodePtr) -> String {
        node.pointee.name.map { String(cString: $0) } ?? ""
    }

    private static func withXMLString<T>(_ string: String, _ body: (UnsafePointer<xmlChar>) throws -> T) rethrows -> T {
        try string.withCString { chars in
            try chars.withMemoryRebound(to: xmlChar.self, capacity: string.utf8.count + 1, body)
        }
    }

    /// `xmlDocDumpMemoryEnc` in the document's own encoding (UTF-8 when it declares none).
    private static func serialize(_ document: xmlDocPtr, display: String) throws -> [UInt8] {
        let encoding = document.pointee.encoding.map { String(cString: $0) } ?? "UTF-8"
        var memory: UnsafeMutablePointer<xmlChar>?
        var size: Int32 = 0
        encoding.withCString { xmlDocDumpMemoryEnc(document, &memory, &size, $0) }
        guard let memory, size > 0 else {
            throw KiwiError(.fileUnwritable, "libxml2 could not serialise the document in \(encoding)", file: display)
        }
        defer { free(memory) }
        return Array(UnsafeBufferPointer(start: memory, count: Int(size)))
    }

    /// Puts back the original prolog (XML declaration, comments, DOCTYPE and the whitespace
    /// between them, byte for byte) and the original's final-newline convention.
    ///
    /// The prolog is never edited, so the original bytes up to the root start tag replace
    /// libxml2's rendering of them. When the prolog cannot be scanned (e.g. UTF-16), only the
    /// XML declaration is restored.
    static func restoreProlog(original: [UInt8], serialized: [UInt8]) -> [UInt8] {
        if let originalRoot = rootElementStart(original), let serializedRoot = rootElementStart(serialized) {
            var result = Array(original[..<originalRoot]) + serialized[serializedRoot...]
            if original.last != UInt8(ascii: "\n"), result.last == UInt8(ascii: "\n") { result.removeLast() }
            return result
        }
        return restoreDeclaration(original: original, serialized: serialized)
    }

    /// The byte offset of the root element's start tag, skipping a BOM, whitespace, processing
    /// instructions, comments and a DOCTYPE (with its internal subset); nil when unsure.
    static func rootElementStart(_ bytes: [UInt8]) -> Int? {
        func find(_ needle: [UInt8], from start: Int) -> Int? {
            guard needle.count <= bytes.count else { return nil }
            var index = start
            while index + needle.count <= bytes.count {
                if bytes[index..<(index + needle.count)].elementsEqual(needle) { return index }
                index += 1
            }
            return nil
        }
        func starts(_ text: String, at index: Int) -> Bool {
            let needle = Array(text.utf8)
            return index + needle.count <= bytes.count && bytes[index..<(index + needle.count)].elementsEqual(needle)
        }
        var index = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        while index < bytes.count {
            let byte = bytes[index]
            if [0x20, 0x09, 0x0A, 0x0D].contains(byte) {
                index += 1
                continue
            }
            guard byte == UInt8(ascii: "<") else { return nil }
            if starts("<?", at: index) {
                guard let end = find(Array("?>".utf8), from: index + 2) else { return nil }
                index = end + 2
            } else if starts("<!--", at: index) {
                guard let end = find(Array("-->".utf8), from: index + 4) else { return nil }
                index = end + 3
            } else if starts("<!DOCTYPE", at: index) {
                var scan = index + 9
                var bracketDepth = 0
                var quote: UInt8?
                while scan < bytes.count {
                    let current = bytes[scan]
                    if let open = quote {
                        if current == open { quote = nil }
                    } else if current == UInt8(ascii: "\"") || current == UInt8(ascii: "'") {
                        quote = current
                    } else if current == UInt8(ascii: "[") {
                        bracketDepth += 1
                    } else if current == UInt8(ascii: "]") {
                        bracketDepth -= 1
                    } else if current == UInt8(ascii: ">") && bracketDepth <= 0 {
                        break
                    }
                    scan += 1
                }
                guard scan < bytes.count else { return nil }
                index = scan + 1
            } else if starts("<!", at: index) {
                return nil
            } else {
                return index
            }
        }
        return nil
    }

    /// Fallback: the original XML declaration and the whitespace after it (or no declaration
    /// when the original had none), and the original's final-newline convention.
    static func restoreDeclaration(original: [UInt8], serialized: [UInt8]) -> [UInt8] {
        func declarationEnd(_ bytes: [UInt8]) -> Int? {
            var start = 0
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { start = 3 }
            guard bytes[start...].starts(with: Array("<?xml".utf8)) else { return nil }
            var index = start
            while index + 1 < bytes.count {
                if bytes[index] == UInt8(ascii: "?") && bytes[index + 1] == UInt8(ascii: ">") { return index + 2 }
                index += 1
            }
            return nil
        }
        var body = serialized
        if let end = declarationEnd(serialized) {
            var cut = end
            if cut < serialized.count, serialized[cut] == UInt8(ascii: "\n") { cut += 1 }
            body = Array(serialized[cut...])
        }
        var result: [UInt8] = []
        if let end = declarationEnd(original) {
            var after = end
            while after < original.count, [0x20, 0x09, 0x0A, 0x0D].contains(original[after]) { after += 1 }
            result = Array(original[..<after])
        }
        result += body
        if original.last != UInt8(ascii: "\n"), result.last == UInt8(ascii: "\n") { result.removeLast() }
        return result
    }
}

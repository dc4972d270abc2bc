/// The description file found in a directory.
public struct KiwiLocatedDescription: Sendable, Hashable {
    /// The file (display path: the directory as given joined with the relative path).
    public var file: String
    /// The file relative to the directory (`config.xml`, `image/config.xml`, `appliance.kiwi`).
    public var relativePath: String
    /// Warnings from the lookup (several `*.kiwi` with `.firstSorted`).
    public var diagnostics: [KiwiDiagnostic]
}

/// Reads KIWI-NG descriptions: finds the file, parses it safely, expands includes and builds the
/// typed model.
///
/// Loading throws only when no model can be built (no file, unreadable file, XML that is not
/// well formed or refused, a root other than `<image>`, a missing, broken, escaping or cyclic
/// include). Everything else (legacy spellings, unsupported schema versions, duplicates) is
/// recorded in `KiwiDescription.diagnostics`; `KiwiValidator` adds the semantic checks.
public enum KiwiLoader {
    /// Finds the description file in a directory, in kiwi's order.
    ///
    /// 1. `config.xml`;
    /// 2. `image/config.xml`;
    /// 3. `*.kiwi` (this includes `config.kiwi`): exactly one is taken; with several, the
    ///    lookup refuses (`kiwi.description.ambiguous`, listing them) unless
    ///    `options.ambiguousKiwiFiles` is `.firstSorted`, which takes the first in sorted order
    ///    as kiwi does and warns.
    ///
    /// - Parameters:
    ///   - directory: the description directory.
    ///   - options: the lookup policy.
    /// - Returns: the file found.
    /// - Throws: `KiwiError` with `kiwi.description.not_found` or `kiwi.description.ambiguous`.
    public static func locateDescription(in directory: String, options: KiwiLoadOptions = .init()) throws
        -> KiwiLocatedDescription
    {
        guard KiwiFileSystem.kind(directory, followSymlinks: true) == .directory else {
            throw KiwiError(
                .descriptionNotFound, "not a directory; pass the directory that holds config.xml or the .kiwi file",
                file: directory)
        }
        for candidate in ["config.xml", "image/config.xml"] {
            let path = KiwiFileSystem.join(directory, candidate)
            if KiwiFileSystem.exists(path) {
                return KiwiLocatedDescription(file: path, relativePath: candidate, diagnostics: [])
            }
        }
        let kiwiFiles = KiwiFileSystem.listDirectory(directory)
            .filter { $0.hasSuffix(".kiwi") && $0 != ".kiwi" }
            .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        guard let first = kiwiFiles.first else {
            throw KiwiError(
                .descriptionNotFound,
                "no KIWI description here: expected config.xml, image/config.xml or one *.kiwi file",
                file: directory)
        }
        if kiwiFiles.count == 1 {
            return KiwiLocatedDescription(file: KiwiFileSystem.join(directory, first), relativePath: first, diagnostics: [])
        }
        let list = kiwiFiles.joined(separator: ", ")
        switch options.ambiguousKiwiFiles {
        case .refuse:
            throw KiwiError(
                .descriptionAmbiguous,
                "several .kiwi files and no config.xml: \(list); keep exactly one, or name the file to use",
                file: directory)
        case .firstSorted:
            let warning = KiwiDiagnostic(
                .warning, .descriptionAmbiguous,
                "several .kiwi files (\(list)); using \(first), the first in sorted order, as kiwi does", file: directory,
                line: nil)
            return KiwiLocatedDescription(
                file: KiwiFileSystem.join(directory, first), relativePath: first, diagnostics: [warning])
        }
    }

    /// Finds and loads the description in a directory.
    ///
    /// When the description is `image/config.xml`, includes may reach anywhere inside
    /// `directory` (the recipe root), unless `options.recipeRoot` says otherwise.
    ///
    /// - Parameters:
    ///   - directory: the description (recipe) directory.
    ///   - options: limits and policies.
    /// - Returns: the description.
    /// - Throws: `KiwiError` (see the type's discussion).
    public static func load(directory: String, options: KiwiLoadOptions = .init()) throws -> KiwiDescription {
        let located = try locateDescription(in: directory, options: options)
        var options = options
        if options.recipeRoot == nil { options.recipeRoot = directory }
        var description = try load(file: located.file, options: options)
        description.diagnostics.insert(contentsOf: located.diagnostics, at: 0)
        return description
    }

    /// Loads a description file (any name, e.g. a rendered template).
    ///
    /// - Parameters:
    ///   - file: the description file; its directory is the description directory.
    ///   - options: limits and policies; `recipeRoot` defaults to the file's directory.
    /// - Returns: the description.
    /// - Throws: `KiwiError` (see the type's discussion).
    public static func load(file: String, options: KiwiLoadOptions = .init()) throws -> KiwiDescription {
        var session = try LoadSession(file: file, options: options)
        return try session.run()
    }
}

/// One load: the state shared by the main file and its includes.
private struct LoadSession {
    let options: KiwiLoadOptions
    /// Display paths.
    let mainFile: String
    let directory: String
    let recipeRoot: String
    /// Absolute, lexically normalised paths.
    let absoluteDirectory: String
    let absoluteRoot: String
    /// The root with symlinks resolved.
    let realRoot: String

    var elementsUsed = 0
    var includeCount = 0
    var includes: [KiwiInclude] = []
    var diagnostics: [KiwiDiagnostic] = []

    init(file: String, options: KiwiLoadOptions) throws {
        self.options = options
        mainFile = file
        directory = KiwiFileSystem.dirname(file)
        recipeRoot = options.recipeRoot ?? directory
        absoluteDirectory = KiwiFileSystem.absolute(directory)
        absoluteRoot = KiwiFileSystem.absolute(recipeRoot)
        guard let realRoot = KiwiFileSystem.realPath(absoluteRoot) else {
            throw KiwiError(.descriptionNotFound, "the recipe directory does not exist", file: recipeRoot)
        }
        self.realRoot = realRoot
        guard KiwiFileSystem.isWithin(absoluteDirectory, root: absoluteRoot) else {
            throw KiwiError(
                .includeEscapes, "the description directory is outside the recipe directory \(recipeRoot)", file: file)
        }
    }

    mutating func run() throws -> KiwiDescription {
        let bytes = try KiwiFileSystem.readFile(mainFile, limit: options.maxFileSize, display: mainFile)
        let isTemplate = Self.containsTemplateMarkup(bytes)
        var root = try parse(bytes, display: mainFile)
        guard root.name == "image" else {
            throw KiwiError(
                .xmlRootNotImage,
                "the root element is <\(root.name)>, not <image>; this is not a KIWI image description",
                at: root.location)
        }
        let mainReal = KiwiFileSystem.realPath(KiwiFileSystem.absolute(mainFile)) ?? KiwiFileSystem.absolute(mainFile)
        root.children = try expandIncludes(in: root.children, stack: [mainReal], chain: [mainFile])
        var builder = KiwiModelBuilder()
        return builder.build(
            root: root, file: mainFile, directory: directory, recipeRoot: recipeRoot, includes: includes,
            isTemplate: isTemplate, loadDiagnostics: diagnostics)
    }

    private mutating func parse(_ bytes: [UInt8], display: String) throws -> KiwiElement {
        let limits = XMLParseLimits(maxDepth: options.maxDepth, elementBudget: max(0, options.maxElements - elementsUsed))
        let result = try SafeXMLParser.parse(bytes, file: display, limits: limits)
        elementsUsed += result.elementCount
        diagnostics += result.warnings
        var root = result.root
        var ordinal = 0
        for index in root.children.indices where root.children[index].name == "repository" {
            root.children[index].repositoryOrdinal = ordinal
            ordinal += 1
        }
        return root
    }

    /// Replaces each `<include>` among `children` with the children of the included `<image>`,
    /// recursively.
    private mutating func expandIncludes(in children: [KiwiElement], stack: [String], chain: [String]) throws
        -> [KiwiElement]
    {
        guard children.contains(where: { $0.name == "include" }) else { return children }
        var result: [KiwiElement] = []
        for child in children {
            guard child.name == "include" else {
                result.append(child)
                continue
            }
            let target = try resolveInclude(child)
            if let cycleStart = stack.firstIndex(of: target.real) {
                let cycle = (chain[cycleStart...] + [target.display]).joined(separator: " → ")
                throw KiwiError(
                    .includeCycle, "include cycle: \(cycle); remove one of these <include> elements", at: child.location)
            }
            includeCount += 1
            if includeCount > options.maxIncludes {
                throw KiwiError(
                    .includeTooMany,
                    "more than \(options.maxIncludes) include expansions; check for an include that is pulled in repeatedly",
                    at: child.location)
            }
            includes.append(KiwiInclude(from: target.from, path: target.relative, location: child.location))
            let included = try loadInclude(target, from: child)
            result += try expandIncludes(
                in: included.children, stack: stack + [target.real], chain: chain + [target.display])
        }
        return result
    }

    private struct IncludeTarget {
        var from: String
        var display: String
        var relative: String
        var real: String
    }

    /// Resolves `from` (`this://relative`, a relative path or an absolute path inside the recipe).
    private func resolveInclude(_ element: KiwiElement) throws -> IncludeTarget {
        let from = (element[attribute: "from"] ?? "").kiwiTrimmed
        guard !from.isEmpty else {
            throw KiwiError(
                .includeUnsupported, "<include> has no from attribute; write <include from=\"this://file.xml\"/>",
                at: element.location)
        }
        var path: String
        var isRelative: Bool
        if from.hasPrefix("this://") {
            path = String(from.dropFirst("this://".count))
            isRelative = true
            if path.hasPrefix("/") { path = String(path.drop { $0 == "/" }) }
        } else if from.hasPrefix("file://") {
            path = String(from.dropFirst("file://".count))
            isRelative = !path.hasPrefix("/")
        } else if from.contains("://") {
            throw KiwiError(
                .includeUnsupported,
                "include '\(from)' uses an unsupported scheme; includes must be files in the recipe, written as this://relative/path.xml",
                at: element.location)
        } else {
            path = from
            isRelative = !from.hasPrefix("/")
        }
        let absolute = KiwiFileSystem.normalize(isRelative ? KiwiFileSystem.join(absoluteDirectory, path) : path)
        guard KiwiFileSystem.isWithin(absolute, root: absoluteRoot) else {
            if isRelative {
                throw KiwiError(
                    .includeEscapes,
                    "include '\(from)' leaves the recipe directory \(recipeRoot); includes must stay inside the recipe",
                    at: element.location)
            }
            throw KiwiError(
                .includeMissing,
                "include '\(from)' is not in the recipe directory \(recipeRoot); copy the file into the recipe and include it as this://<path inside the recipe>",
                at: element.location)
        }
        let relativeToRoot = KiwiFileSystem.relative(absolute, to: absoluteRoot) ?? path
        let display = KiwiFileSystem.normalize(KiwiFileSystem.join(recipeRoot, relativeToRoot))
        guard let real = KiwiFileSystem.realPath(absolute) else {
            throw KiwiError(
                .includeMissing,
                "include '\(from)' refers to \(display), which does not exist; add the file or fix the path",
                at: element.location)
        }
        guard KiwiFileSystem.isWithin(real, root: realRoot) else {
            throw KiwiError(
                .includeEscapes,
                "include '\(from)' resolves (through a symbolic link) outside the recipe directory \(recipeRoot); replace the link with the file",
                at: element.location)
        }
        let relativeToDirectory = KiwiFileSystem.relativePath(of: absolute, from: absoluteDirectory)
        return IncludeTarget(from: from, display: display, relative: relativeToDirectory, real: real)
    }

    /// Reads and parses an included file; its root must be `<image>`.
    private mutating func loadInclude(_ target: IncludeTarget, from element: KiwiElement) throws -> KiwiElement {
        let reference = "included from \(element.location)"
        do {
            let bytes = try KiwiFileSystem.readFile(target.real, limit: options.maxFileSize, display: target.display)
            let root = try parse(bytes, display: target.display)
            guard root.name == "image" else {
                throw KiwiError(
                    .includeBroken,
                    "the included file \(target.display) has the root element <\(root.name)>; an included file must have <image> as its root (\(reference))",
                    at: element.location)
            }
            return root
        } catch let error as KiwiError {
            guard let primary = error.primary else { throw error }
            switch primary.code {
            case .xmlMalformed:
                let place = KiwiSourceLocation(file: primary.file ?? target.display, line: primary.line ?? 0)
                throw KiwiError(
                    [
                        KiwiDiagnostic(
                            .error, .includeBroken,
                            "the included file \(target.display) is not well-formed XML (\(place): \(primary.message)); fix that file",
                            at: element.location)
                    ] + error.diagnostics)
            case .includeBroken, .includeMissing, .includeEscapes, .includeCycle, .includeUnsupported, .includeTooMany:
                throw error
            default:
                throw KiwiError(
                    error.diagnostics + [
                        KiwiDiagnostic(.note, primary.code, "\(target.display) is \(reference)", at: element.location)
                    ])
            }
        }
    }

    /// Whether the raw bytes contain `{{ … }}` or `{% … %}` (Jinja-style) markup.
    static func containsTemplateMarkup(_ bytes: [UInt8]) -> Bool {
        let open = UInt8(ascii: "{")
        var index = 0
        while index + 1 < bytes.count {
            if bytes[index] == open {
                let next = bytes[index + 1]
                let close: [UInt8]? =
                    next == open ? [UInt8(ascii: "}"), UInt8(ascii: "}")]
                    : next == UInt8(ascii: "%") ? [UInt8(ascii: "%"), UInt8(ascii: "}")] : nil
                if let close {
                    var scan = index + 2
                    while scan + 1 < bytes.count, scan < index + 4096 {
                        if bytes[scan] == close[0] && bytes[scan + 1] == close[1] { return true }
                        if bytes[scan] == UInt8(ascii: "\n") && next == open { break }
                        scan += 1
                    }
                }
            }
            index += 1
        }
        return false
    }
}

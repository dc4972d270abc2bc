import Foundation
import Yams

/// What to do with `{{ NAME }}` when NAME has no value.
public enum UndefinedVariablePolicy: String, Sendable, Codable {
    /// Refuse, naming the file and line (the default).
    case error
    /// Render an empty string, as IMS (Jinja2's default `Undefined`) does.
    case renderEmpty = "render_empty"
}

/// The recipe's template values, from IMS's `template_dictionary`.
public struct TemplateValues: Sendable, Hashable {
    public var values: [String: String]

    public init(_ values: [String: String]) { self.values = values }

    /// Loads values from a YAML or JSON file: either a mapping `{KEY: VALUE}` or IMS's list form
    /// `[{key: KEY, value: VALUE}]`.
    public static func load(file path: String) throws(RecipeError) -> TemplateValues {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw RecipeError(.valuesFile, file: path, "cannot read the values file")
        }
        let parsed: Any?
        do {
            parsed = try Yams.load(yaml: text)
        } catch {
            throw RecipeError(.valuesFile, file: path, "not valid YAML or JSON: \(Self.yamlProblem(error))")
        }
        if let mapping = parsed as? [String: Any] {
            var values: [String: String] = [:]
            for (key, value) in mapping {
                guard let text = scalarText(value) else {
                    throw RecipeError(.valuesFile, file: path, "the value of '\(key)' must be a string or number")
                }
                values[key] = text
            }
            return TemplateValues(values)
        }
        if let list = parsed as? [Any] {
            var values: [String: String] = [:]
            for (index, item) in list.enumerated() {
                guard let entry = item as? [String: Any], let key = entry["key"] as? String, let value = entry["value"].flatMap(scalarText) else {
                    throw RecipeError(.valuesFile, file: path, "entry \(index + 1) must be {key: NAME, value: TEXT}")
                }
                values[key] = value
            }
            return TemplateValues(values)
        }
        throw RecipeError(.valuesFile, file: path, "expected a mapping {KEY: VALUE} or a list of {key, value}")
    }

    /// Parses `KEY=VALUE` arguments (from `--set` or `--template-dictionary`).
    public static func parse(assignments: [String]) throws(RecipeError) -> TemplateValues {
        var values: [String: String] = [:]
        for assignment in assignments {
            guard let equals = assignment.firstIndex(of: "="), equals != assignment.startIndex else {
                throw RecipeError(.valuesFile, "'\(assignment)' must look like KEY=VALUE")
            }
            values[String(assignment[..<equals])] = String(assignment[assignment.index(after: equals)...])
        }
        return TemplateValues(values)
    }

    static func scalarText(_ value: Any) -> String? {
        switch value {
        case let text as String: return text
        case let number as Int: return String(number)
        case let number as Double: return String(number)
        case let flag as Bool: return flag ? "true" : "false"
        default: return nil
        }
    }

    static func yamlProblem(_ error: any Error) -> String {
        if let yamlError = error as? YamlError { return "\(yamlError)".split(separator: "\n").first.map(String.init) ?? "syntax error" }
        return "syntax error"
    }
}

/// What rendering did to one file.
public struct RenderedFile: Sendable, Hashable, Codable {
    public var path: String
    public var substitutions: Int
    public var variables: [String]
    /// Variables that had no value and rendered empty (only with `render_empty`).
    public var undefined: [String]
}

/// Renders a recipe's templates, following IMS's contract with stricter defaults.
///
/// `.ims_recipe_template.yaml` holds `template_files: [config.xml, …]`, paths relative to the recipe.
/// Each listed file must exist inside the recipe (symlinks resolved); `{{ NAME }}` is replaced by the
/// value of NAME; file modes are kept. Unlike IMS, an undefined variable is an error naming file:line
/// (`UndefinedVariablePolicy.renderEmpty` restores IMS's behaviour), and Jinja constructs other than plain
/// `{{ NAME }}` are refused rather than silently mis-rendered.
public enum RecipeTemplater {
    public static let controlFileName = ".ims_recipe_template.yaml"

    /// The files a recipe asks to render, or nil when it has no control file.
    public static func templateFiles(recipeDirectory: String) throws(RecipeError) -> [String]? {
        let controlPath = recipeDirectory + "/" + controlFileName
        guard FileManager.default.fileExists(atPath: controlPath) else { return nil }
        guard let data = FileManager.default.contents(atPath: controlPath), let text = String(data: data, encoding: .utf8) else {
            throw RecipeError(.templateControlFile, file: controlFileName, "cannot read the template control file")
        }
        let parsed: Any?
        do {
            parsed = try Yams.load(yaml: text)
        } catch {
            throw RecipeError(.templateControlFile, file: controlFileName, "not valid YAML: \(TemplateValues.yamlProblem(error))")
        }
        guard let mapping = parsed as? [String: Any], let files = mapping["template_files"] else {
            throw RecipeError(.templateControlFile, file: controlFileName, "missing the 'template_files' list")
        }
        guard let list = files as? [Any], list.allSatisfy({ $0 is String }) else {
            throw RecipeError(.templateControlFile, file: controlFileName, "'template_files' must be a list of paths")
        }
        return list.compactMap { $0 as? String }
    }

    /// Renders the recipe in `recipeDirectory` in place.
    ///
    /// - Returns: one entry per rendered file; empty when the recipe has no control file.
    /// - Throws: `RecipeError` naming the file (and line) for every problem; on error no file is changed.
    public static func render(
        recipeDirectory: String, values: TemplateValues?, undefined: UndefinedVariablePolicy = .error
    ) throws(RecipeError) -> [RenderedFile] {
        guard let files = try templateFiles(recipeDirectory: recipeDirectory) else { return [] }
        guard let values else {
            throw RecipeError(
                .templateValuesMissing, file: controlFileName,
                "the recipe has templates (\(files.joined(separator: ", "))) but no template values were given; set the recipe's template_dictionary or pass --set KEY=VALUE")
        }
        let root = realPath(recipeDirectory) ?? recipeDirectory
        // Render everything first, then write: a failure leaves every file untouched.
        var pending: [(path: String, text: String, report: RenderedFile)] = []
        for file in files {
            let candidate = file.hasPrefix("/") ? file : root + "/" + file
            guard FileManager.default.fileExists(atPath: candidate) else {
                throw RecipeError(.templateFileMissing, file: file, "listed in \(controlFileName) but not in the recipe")
            }
            guard let resolved = realPath(candidate), resolved.hasPrefix(root + "/") else {
                throw RecipeError(.templatePathEscapes, file: file, "resolves outside the recipe directory; template files must be inside the recipe")
            }
            guard let data = FileManager.default.contents(atPath: resolved), let text = String(data: data, encoding: .utf8) else {
                throw RecipeError(.io, file: file, "cannot read the file as UTF-8 text")
            }
            let (rendered, report) = try renderText(text, file: file, values: values.values, undefined: undefined)
            pending.append((resolved, rendered, RenderedFile(path: file, substitutions: report.substitutions, variables: report.variables, undefined: report.undefined)))
        }
        for item in pending {
            try writeKeepingMode(item.text, to: item.path, displayName: item.report.path)
        }
        return pending.map(\.report)
    }

    struct TextReport {
        var substitutions = 0
        var variables: [String] = []
        var undefined: [String] = []
    }

    /// Renders one text; public for `ims recipes render` previews and tests.
    static func renderText(
        _ text: String, file: String, values: [String: String], undefined: UndefinedVariablePolicy
    ) throws(RecipeError) -> (String, TextReport) {
        var output = ""
        output.reserveCapacity(text.utf8.count)
        var report = TextReport()
        var seen: Set<String> = []
        var line = 1
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            let next = text.index(after: index)
            if character == "{", next < text.endIndex, text[next] == "{" || text[next] == "%" || text[next] == "#" {
                let opener = text[next]
                if opener != "{" {
                    throw RecipeError(
                        .templateSyntax, file: file, line: line,
                        "'{\(opener)' starts a Jinja \(opener == "%" ? "statement" : "comment"); only {{ NAME }} substitution is supported")
                }
                let bodyStart = text.index(after: next)
                guard let close = text.range(of: "}}", range: bodyStart..<text.endIndex) else {
                    throw RecipeError(.templateSyntax, file: file, line: line, "'{{' is never closed with '}}'")
                }
                let body = text[bodyStart..<close.lowerBound]
                if body.contains("\n") {
                    throw RecipeError(.templateSyntax, file: file, line: line, "'{{' is not closed on the same line")
                }
                let name = body.trimmingCharacters(in: .whitespaces)
                guard isIdentifier(name) else {
                    throw RecipeError(
                        .templateSyntax, file: file, line: line,
                        "'{{\(body)}}' is not a plain variable; only {{ NAME }} (letters, digits, _) is supported")
                }
                if let value = values[name] {
                    output += value
                } else if undefined == .renderEmpty {
                    if !report.undefined.contains(name) { report.undefined.append(name) }
                } else {
                    throw RecipeError(
                        .templateUndefined, file: file, line: line,
                        "template variable '\(name)' has no value; add it to the recipe's template_dictionary (or render with undefined=render_empty for IMS's behaviour)")
                }
                report.substitutions += 1
                if seen.insert(name).inserted { report.variables.append(name) }
                index = close.upperBound
                continue
            }
            if character == "\n" || character == "\r\n" { line += 1 }
            output.append(character)
            index = next
        }
        return (output, report)
    }

    static func isIdentifier(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || (first.isASCII && CharacterSet.letters.contains(first)) else { return false }
        return name.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && CharacterSet.alphanumerics.contains($0)) }
    }

    static func writeKeepingMode(_ text: String, to path: String, displayName: String) throws(RecipeError) {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let mode = (attributes?[.posixPermissions] as? NSNumber)?.intValue ?? 0o644
        let temporary = path + ".ims-render-" + UUID().uuidString.prefix(8)
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: mode]) else {
            throw RecipeError(.io, file: displayName, "cannot write the rendered file")
        }
        chmod(temporary, mode_t(mode))
        if rename(temporary, path) != 0 {
            unlink(temporary)
            throw RecipeError(.io, file: displayName, "cannot replace the file with its rendered version")
        }
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

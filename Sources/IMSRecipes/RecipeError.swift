/// Errors of the recipe layer: templating, repository rules and readiness, loading.
public struct RecipeError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Codable {
        case templateControlFile = "recipe.template.control_file"
        case templateValuesMissing = "recipe.template.values_missing"
        case templateFileMissing = "recipe.template.file_missing"
        case templatePathEscapes = "recipe.template.path_escapes"
        case templateUndefined = "recipe.template.undefined_variable"
        case templateSyntax = "recipe.template.syntax"
        case valuesFile = "recipe.values.invalid"
        case rewriteRule = "recipe.rewrite.invalid_rule"
        case notFound = "recipe.not_found"
        case io = "recipe.io"
        case invalidDescription = "recipe.description.invalid"
        case repositoriesNotReady = "recipe.repositories.not_ready"
    }

    public var code: Code
    /// The file the problem is in, relative to the recipe where possible.
    public var file: String?
    public var line: Int?
    public var message: String

    public init(_ code: Code, file: String? = nil, line: Int? = nil, _ message: String) {
        self.code = code
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String {
        var location = ""
        if let file {
            location = file
            if let line { location += ":\(line)" }
            location += ": "
        }
        return location + message
    }
}

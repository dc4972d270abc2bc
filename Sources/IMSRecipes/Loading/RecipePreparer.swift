import Foundation
import IMSKiwi

/// A recipe working copy after rendering, rewriting and validation.
public struct PreparedRecipe: Sendable {
    public var directory: String
    public var description: KiwiDescription
    public var diagnostics: [KiwiDiagnostic]
    public var rendered: [RenderedFile]
    public var rewrites: [KiwiSourceRewriter.Rewrite]
    public var distroFamily: String
    public var packageManager: String?

    /// Diagnostics of error severity.
    public var errors: [KiwiDiagnostic] { diagnostics.filter { $0.severity == .error } }
}

/// Renders, rewrites and validates a recipe working copy, in that order.
public enum RecipePreparer {
    /// - Parameters:
    ///   - directory: a working copy (it is changed in place).
    ///   - values: template values; nil when the recipe has none.
    ///   - rules: repository rewrite rules (first match wins).
    ///   - distroFamilyOverride: wins over inference (e.g. from the recipe record's linux_distribution).
    /// - Throws: `RecipeError` for template problems and for descriptions with errors (all listed, file:line).
    public static func prepare(
        directory: String, values: TemplateValues?, undefined: UndefinedVariablePolicy = .error,
        rules: [RepositoryRewriteRule] = [], distroFamilyOverride: String? = nil
    ) throws(RecipeError) -> PreparedRecipe {
        let rendered = try RecipeTemplater.render(recipeDirectory: directory, values: values, undefined: undefined)
        var rewrites: [KiwiSourceRewriter.Rewrite] = []
        if !rules.isEmpty {
            do {
                rewrites = try KiwiSourceRewriter.rewrite(descriptionDirectory: directory) { repository in
                    RepositoryRewriteRule.apply(rules, alias: repository.alias, source: repository.sourcePath ?? "")
                }
            } catch let error as KiwiError {
                throw RecipeError(.invalidDescription, Self.summary(error.diagnostics))
            } catch {
                throw RecipeError(.invalidDescription, "\(error)")
            }
        }
        let description: KiwiDescription
        do {
            description = try KiwiLoader.load(directory: directory)
        } catch let error as KiwiError {
            throw RecipeError(.invalidDescription, Self.summary(error.diagnostics))
        } catch {
            throw RecipeError(.invalidDescription, "\(error)")
        }
        let diagnostics = KiwiValidator.validate(description)
        let errors = diagnostics.filter { $0.severity == .error }
        if !errors.isEmpty {
            throw RecipeError(.invalidDescription, Self.summary(errors))
        }
        let family = distroFamilyOverride ?? KiwiDistroInference.infer(description).family.rawValue
        return PreparedRecipe(
            directory: directory, description: description, diagnostics: diagnostics, rendered: rendered,
            rewrites: rewrites, distroFamily: family, packageManager: description.packageManager?.rawValue)
    }

    static func summary(_ diagnostics: [KiwiDiagnostic]) -> String {
        let errors = diagnostics.filter { $0.severity == .error }
        let shown = (errors.isEmpty ? diagnostics : errors).map(\.description)
        return shown.count == 1 ? shown[0] : "\(shown.count) problems:\n  " + shown.joined(separator: "\n  ")
    }
}

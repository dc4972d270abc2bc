import Foundation

/// Maps a recipe repository to a site mirror, by alias or by URL prefix.
///
/// Written `FROM=TO`:
/// - `FROM` containing `://` is a URL prefix: a source starting with it has the prefix replaced by `TO`;
/// - otherwise `FROM` is an alias (`*` matches every alias) and the source becomes `TO`.
/// In `TO`, `{alias}` is replaced by the repository's alias, so one rule can point every repository at
/// a Nexus base: `*=https://packages.local/repository/{alias}`.
/// Rules apply in order; the first match wins. They change a rendered working copy, never the stored recipe.
public struct RepositoryRewriteRule: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Match: Sendable, Hashable, Codable {
        case alias(String)
        case urlPrefix(String)
    }

    public var match: Match
    public var target: String

    public init(match: Match, target: String) {
        self.match = match
        self.target = target
    }

    /// Parses `FROM=TO`.
    public init(parsing text: String) throws(RecipeError) {
        guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
            throw RecipeError(.rewriteRule, "repository rewrite '\(text)' must look like ALIAS=URI or URL_PREFIX=URI")
        }
        let from = String(text[..<equals])
        let to = String(text[text.index(after: equals)...])
        guard !to.isEmpty else {
            throw RecipeError(.rewriteRule, "repository rewrite '\(text)' has an empty target")
        }
        self.match = from.contains("://") ? .urlPrefix(from) : .alias(from)
        self.target = to
    }

    /// The new source for a repository, or nil when the rule does not apply.
    public func rewrite(alias: String?, source: String) -> String? {
        switch match {
        case .alias(let wanted):
            guard wanted == "*" || wanted == alias else { return nil }
            return target.replacingOccurrences(of: "{alias}", with: alias ?? "")
        case .urlPrefix(let prefix):
            guard source.hasPrefix(prefix) else { return nil }
            let rest = source.dropFirst(prefix.count)
            var base = target.replacingOccurrences(of: "{alias}", with: alias ?? "")
            if base.hasSuffix("/"), rest.hasPrefix("/") { base.removeLast() }
            return base + rest
        }
    }

    /// Applies the first matching rule of `rules`.
    public static func apply(_ rules: [RepositoryRewriteRule], alias: String?, source: String) -> String? {
        for rule in rules {
            if let rewritten = rule.rewrite(alias: alias, source: source) { return rewritten }
        }
        return nil
    }

    public var description: String {
        switch match {
        case .alias(let alias): "\(alias)=\(target)"
        case .urlPrefix(let prefix): "\(prefix)=\(target)"
        }
    }
}

/// Limits and policies for reading a description.
///
/// The defaults suit recipes from untrusted sources: a 16 MiB cap per file, depth 256,
/// 200,000 elements across the description and its includes, 256 include expansions.
public struct KiwiLoadOptions: Sendable, Hashable {
    /// What to do when a directory has no `config.xml` or `image/config.xml` and several `*.kiwi`.
    public enum AmbiguousKiwiFiles: Sendable, Hashable {
        /// Refuse with `kiwi.description.ambiguous`, listing the files (the default).
        case refuse
        /// Take the first in byte-wise sorted order, as kiwi does, with a warning.
        case firstSorted
    }

    /// Largest accepted size of one description or include file, in bytes (default 16 MiB).
    public var maxFileSize: Int
    /// Deepest accepted element nesting; the root is depth 1 (default 256).
    ///
    /// libxml2 itself refuses depth beyond 256 because the parser never sets `XML_PARSE_HUGE`,
    /// so larger values have no effect.
    public var maxDepth: Int
    /// Most elements accepted across the description and all its includes (default 200,000).
    public var maxElements: Int
    /// Most `<include>` expansions (default 256), which bounds include fan-out.
    public var maxIncludes: Int
    /// Policy for several `*.kiwi` files.
    public var ambiguousKiwiFiles: AmbiguousKiwiFiles
    /// The directory includes must stay inside; nil means the description directory.
    ///
    /// Set it to the recipe's top directory when the description is `image/config.xml`.
    public var recipeRoot: String?

    /// Creates options; every parameter has the documented default.
    public init(
        maxFileSize: Int = 16 * 1024 * 1024,
        maxDepth: Int = 256,
        maxElements: Int = 200_000,
        maxIncludes: Int = 256,
        ambiguousKiwiFiles: AmbiguousKiwiFiles = .refuse,
        recipeRoot: String? = nil
    ) {
        self.maxFileSize = maxFileSize
        self.maxDepth = maxDepth
        self.maxElements = maxElements
        self.maxIncludes = maxIncludes
        self.ambiguousKiwiFiles = ambiguousKiwiFiles
        self.recipeRoot = recipeRoot
    }
}

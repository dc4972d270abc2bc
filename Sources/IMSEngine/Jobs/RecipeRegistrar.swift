import Foundation
import IMSArchive
import IMSCatalog
import IMSKiwi
import IMSStore

/// Registers recipes: stores the archive and creates the record, all or nothing.
public struct RecipeRegistrar: Sendable {
    public var catalog: Catalog
    public var store: any ArtifactStore

    public init(catalog: Catalog, store: any ArtifactStore) {
        self.catalog = catalog
        self.store = store
    }

    /// Stores the recipe at `path` (a directory, packed reproducibly, or an archive) and creates its record.
    /// A directory's modification times are kept; with `sourceDateEpoch`, later times are clamped to it.
    ///
    /// The description is located first, so a path that is not a recipe is refused before anything is stored.
    /// If creating the record fails, the stored archive is removed again: nothing is half-registered.
    public func register(
        path: String, name: String?, linuxDistribution: LinuxDistribution?, arch: Arch = .x86_64,
        templateDictionary: [TemplateVariable] = [], requireDKMS: Bool = true, sourceDateEpoch: Int64? = nil
    ) async throws -> RecipeRecord {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw EngineError(.recipe, "no such file or directory")
        }
        let scratch = NSTemporaryDirectory() + "ims-register-" + UUID().uuidString.lowercased()
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let archive: String
        let recipeDirectory: String
        if isDirectory.boolValue {
            archive = scratch + "/recipe.tar.gz"
            _ = try ArchivePacker.pack(directory: path, to: archive, sourceDateEpoch: sourceDateEpoch)
            recipeDirectory = path
        } else {
            archive = path
            recipeDirectory = scratch + "/check"
            _ = try ArchiveExtractor().extract(archive: path, to: recipeDirectory)
        }
        // Refuse things that are not recipes before storing anything.
        let located = try KiwiLoader.locateDescription(in: recipeDirectory)
        let description = try Self.readableDescription(in: recipeDirectory, shownAs: isDirectory.boolValue ? nil : path)
        let distribution = linuxDistribution ?? Self.guessDistribution(description)
        guard let distribution else {
            throw EngineError(.recipe, "cannot tell the distribution of \(located.relativePath); pass --linux-distribution (one of \(LinuxDistribution.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let recipeName = name ?? ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        let id = UUID()
        let stored = try await RecipeArtifacts(store: store).store(recipeID: id, archive: archive)
        do {
            let link = try ArtifactLink(url: stored.url, etag: stored.etag)
            return try catalog.createRecipe(RecipeRecord(
                id: id, name: recipeName, link: link, linuxDistribution: distribution, templateDictionary: templateDictionary,
                requireDKMS: requireDKMS, arch: arch))
        } catch {
            try? await store.delete(stored.key)
            throw error
        }
    }

    /// The description, loaded once; one that cannot be read at all is refused (XML that is not well formed, a missing include, a root
    /// that is not `<image>`), with the reader's own diagnostics (file and line) before anything else is said
    /// about the recipe: a distribution cannot be inferred from such a file, and no job could build it.
    /// `shownAs` names an archive: its members are shown as `ARCHIVE:member`.
    static func readableDescription(in directory: String, shownAs archive: String?) throws -> KiwiDescription {
        do {
            return try KiwiLoader.load(directory: directory)
        } catch let error as KiwiError {
            var diagnostics = error.diagnostics.filter { $0.severity == .error }
            if let archive {
                diagnostics = diagnostics.map { diagnostic in
                    var shown = diagnostic
                    if let file = diagnostic.file, file.hasPrefix(directory + "/") {
                        shown.file = archive + ":" + file.dropFirst(directory.count + 1)
                    }
                    return shown
                }
            }
            let lines = diagnostics.map(\.description).joined(separator: "\n")
            throw EngineError(.recipe, "the description cannot be read:\n\(lines)")
        }
    }

    /// A distribution for a recipe without one: from the package manager (zypper → sles15, dnf → rhel9).
    static func guessDistribution(_ description: KiwiDescription) -> LinuxDistribution? {
        switch KiwiDistroInference.infer(description).family {
        case .suse: return .sles15
        case .rhel: return .rhel9
        default: return nil
        }
    }
}

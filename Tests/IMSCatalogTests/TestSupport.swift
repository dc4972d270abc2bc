import Foundation
import IMSCatalog

/// A fresh temporary directory, removed when the value is released by `withTemporaryCatalog`.
func makeTemporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "ims-catalog-tests-" + UUID().uuidString.prefix(8).lowercased()
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Runs `body` with a new catalog in a temporary data directory.
func withTemporaryCatalog<T>(_ body: (Catalog, DataDirectory) throws -> T) throws -> T {
    let path = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: path) }
    let directory = DataDirectory(path: path)
    let catalog = try Catalog(dataDirectory: directory)
    return try body(catalog, directory)
}

func link(_ path: String, etag: String = "abc") -> ArtifactLink {
    ArtifactLink(path: path, etag: etag, type: path.hasPrefix("s3://") ? .s3 : .file)
}

/// A recipe with every field set away from its default.
func fullRecipe(name: String = "compute", linkPath: String? = "file:///store/ims/recipes/r/recipe.tar.gz") -> RecipeRecord {
    RecipeRecord(
        name: name, link: linkPath.map { link($0, etag: "0123abcd") }, recipeType: .kiwiNG, linuxDistribution: .rocky9,
        templateDictionary: [TemplateVariable(key: "CSM_RELEASE", value: "1.6"), TemplateVariable(key: "a=b", value: "x=y")],
        requireDKMS: false, arch: .aarch64)
}

/// An image with every field set away from its default.
func fullImage(name: String = "compute-image", linkPath: String? = "file:///store/boot-images/i/manifest.json") -> ImageRecord {
    ImageRecord(
        name: name, link: linkPath.map { link($0, etag: "feedface") }, arch: .aarch64,
        metadata: ["tag": "prod", "owner": "hpc \"team\"", "ünïcode": "✓"])
}

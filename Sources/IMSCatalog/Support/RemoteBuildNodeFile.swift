import Foundation

/// The remote build nodes an administrator registered, in `<data-dir>/remote-build-nodes.json`: a JSON array of
/// `{"xname": …}` in registration order, the shape of IMS's `v2.0_remote_build_nodes.json`.
public enum RemoteBuildNodeFile {
    struct Node: Codable {
        var xname: String
    }

    /// The registered xnames; none when the file is missing.
    ///
    /// - Throws: ``CatalogError/dataDirectory(path:reason:)`` when the file exists but is not such an array.
    public static func read(path: String) throws(CatalogError) -> [String] {
        guard let bytes = FileManager.default.contents(atPath: path) else { return [] }
        do {
            return try JSONDecoder().decode([Node].self, from: bytes).map(\.xname)
        } catch {
            throw CatalogError.dataDirectory(path: path, reason: "not a JSON array of {\"xname\": …} objects")
        }
    }

    /// Replaces the registry (written to a temporary file and renamed, so readers see the old or the new list).
    public static func write(_ xnames: [String], path: String) throws(CatalogError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            try encoder.encode(xnames.map { Node(xname: $0) }).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw CatalogError.dataDirectory(path: path, reason: (error as NSError).localizedDescription)
        }
    }
}

import Foundation

/// Where ims keeps its catalog and its local artifact store.
///
/// Resolution order: an explicit path (`--data-dir`), then `IMS_DATA_DIR`, then `/var/lib/ims` when running as
/// root, else `$XDG_DATA_HOME/ims`, else `~/.local/share/ims`. The catalog is `catalog.sqlite` inside it and
/// the local store `store/` (`file://<data-dir>/store`).
public struct DataDirectory: Sendable, Hashable {
    /// The absolute path of the directory.
    public var path: String

    /// The name of the catalog database inside the directory.
    public static let catalogFileName = "catalog.sqlite"

    /// Uses `path` as it is (made absolute against the current directory).
    public init(path: String) {
        self.path = DataDirectory.absolute(path)
    }

    /// Resolves the data directory.
    ///
    /// - Parameters:
    ///   - explicit: the `--data-dir` value, if given.
    ///   - environment: the process environment (`IMS_DATA_DIR`, `XDG_DATA_HOME`, `HOME`).
    ///   - isRoot: whether the process runs as root (effective uid 0).
    public static func resolve(
        explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
        isRoot: Bool = geteuid() == 0
    ) -> DataDirectory {
        if let explicit, !explicit.isEmpty { return DataDirectory(path: explicit) }
        if let fromEnvironment = environment["IMS_DATA_DIR"], !fromEnvironment.isEmpty {
            return DataDirectory(path: fromEnvironment)
        }
        if isRoot { return DataDirectory(path: "/var/lib/ims") }
        if let xdg = environment["XDG_DATA_HOME"], xdg.hasPrefix("/") { return DataDirectory(path: xdg + "/ims") }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return DataDirectory(path: home + "/.local/share/ims")
    }

    /// The catalog database file.
    public var catalogPath: String { path + "/" + Self.catalogFileName }

    /// The registry of remote build nodes (`ims serve`'s `/v3/remote-build-nodes`; see ``RemoteBuildNodeFile``).
    public var remoteBuildNodesPath: String { path + "/remote-build-nodes.json" }

    /// The root of the embedded local artifact store.
    public var storePath: String { path + "/store" }

    /// The URL of the embedded local artifact store (`file://<data-dir>/store`).
    public var storeURL: String { "file://" + storePath }

    /// Creates the directory (mode 0700, parents as needed) if it does not exist.
    ///
    /// - Throws: ``CatalogError/dataDirectory(path:reason:)``.
    public func create() throws(CatalogError) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw CatalogError.dataDirectory(path: path, reason: "not a directory") }
            return
        }
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            // Another process may have created it meanwhile.
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { return }
            throw CatalogError.dataDirectory(path: path, reason: "cannot create it (\(error.localizedDescription))")
        }
    }

    private static func absolute(_ path: String) -> String {
        var result = path
        if result.hasPrefix("~/") { result = NSHomeDirectory() + result.dropFirst() }
        if !result.hasPrefix("/") { result = FileManager.default.currentDirectoryPath + "/" + result }
        while result.count > 1 && result.hasSuffix("/") { result.removeLast() }
        return result
    }
}

import Foundation

/// The advisory lock on a data directory (`<data-dir>/catalog.lock`) that keeps `ims catalog restore` and running
/// servers apart.
///
/// `ims serve` holds it shared for its lifetime; `ims catalog restore` takes it exclusively, so a restore refuses to
/// run while a server uses the catalog, and a server refuses to start while a restore replaces it.
public enum DataDirectoryLock {
    /// Takes the lock without waiting.
    ///
    /// - Returns: the held lock, or nil when another process holds it in a conflicting mode.
    /// - Throws: ``CatalogError/dataDirectory(path:reason:)`` when the lock file cannot be opened.
    public static func acquire(_ directory: DataDirectory, mode: FileLock.Mode) throws(CatalogError) -> FileLock? {
        do {
            return try FileLock.acquire(path: directory.path + "/catalog.lock", mode: mode, wait: false)
        } catch {
            throw CatalogError.dataDirectory(path: directory.path, reason: error.message)
        }
    }
}

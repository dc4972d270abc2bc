import Foundation

/// An artifact store in a local directory, named by a URL `file:///path/to/store`.
///
/// Layout: `<root>/<bucket>/<key>`, so an image manifest is `file://<root>/boot-images/<id>/manifest.json`.
///
/// - Writes are atomic: bytes go to a temporary file in the destination directory (name starting with
///   `.ims-tmp-`), which is fsynced and renamed over the key; a reader sees the old object or the whole new
///   one, never a part. `list` ignores temporary files.
/// - Each object has a sidecar `<key>.ims-meta.json` holding its size, md5, sha256, user metadata and the
///   file's inode and mtime. `head` trusts the sidecar only while those still match the file, and otherwise
///   recomputes the digests, so a crash between two renames cannot leave wrong digests.
/// - The ETag is the md5 hex. Digests are computed while streaming in 1 MiB chunks; no object is read into
///   memory whole (except by ``read(_:limit:)``, for manifests).
/// - `move` is a rename, so soft-deleting a large image is instant.
public struct LocalArtifactStore: ArtifactStore {
    /// The store directory (absolute, no trailing slash).
    public let root: String

    public var url: String { "file://" + root }

    public var linkType: String { "file" }

    /// Opens (creating if needed) a store rooted at a directory.
    ///
    /// - Throws: ``StoreError/io(operation:path:message:)`` when the directory cannot be created.
    public init(root: String) throws(StoreError) {
        var path = root
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        guard path.hasPrefix("/") else {
            throw StoreError.unsupportedStore(url: root, reason: "the store directory must be an absolute path")
        }
        self.root = path
        do {
            try FileSystem.makeDirectories(path)
        } catch {
            throw Self.storeError(error, operation: "create the store directory", path: path)
        }
    }

    /// Opens a store from its URL, `file:///absolute/path`.
    public init(url: String) throws(StoreError) {
        guard url.hasPrefix("file://") else {
            throw StoreError.unsupportedStore(url: url, reason: "a local store URL starts with file://")
        }
        let path = String(url.dropFirst("file://".count))
        guard path.hasPrefix("/") else {
            throw StoreError.unsupportedStore(url: url, reason: "write an absolute path: file:///absolute/path")
        }
        try self.init(root: path)
    }

    /// The file holding an object.
    public func path(for key: ObjectKey) -> String { root + "/" + key.bucket + "/" + key.key }

    public func url(for key: ObjectKey) -> String { "file://" + path(for: key) }

    public func key(for url: String) -> ObjectKey? {
        let prefix = "file://" + root + "/"
        guard url.hasPrefix(prefix) else { return nil }
        let rest = url.dropFirst(prefix.count)
        guard let slash = rest.firstIndex(of: "/") else { return nil }
        return try? ObjectKey(bucket: String(rest[..<slash]), key: String(rest[rest.index(after: slash)...]))
    }

    // MARK: - ArtifactStore

    public func put(_ source: ArtifactSource, key: ObjectKey, metadata: [String: String]) async throws(StoreError) -> StoredObject {
        do {
            return try await putThrowing(source, key: key, metadata: metadata)
        } catch {
            throw Self.storeError(error, operation: "store", path: url(for: key))
        }
    }

    public func get(_ key: ObjectKey, to destination: String) async throws(StoreError) -> StoredObject {
        do {
            return try getThrowing(key, to: destination)
        } catch {
            throw Self.storeError(error, operation: "read", path: url(for: key))
        }
    }

    public func read(_ key: ObjectKey, limit: Int64) async throws(StoreError) -> Data {
        do {
            guard let object = try headThrowing(key) else { throw StoreError.notFound(url: url(for: key)) }
            guard object.size <= limit else { throw StoreError.tooLarge(url: object.url, size: object.size, limit: limit) }
            let file = try POSIXFile.open(path(for: key), flags: O_RDONLY)
            var data = Data(count: Int(object.size))
            let count = try data.withUnsafeMutableBytes { buffer in try file.readFully(into: buffer) }
            data.count = count
            let actual = Insecure_md5(data)
            guard actual == object.md5 else {
                throw StoreError.checksumMismatch(url: object.url, expected: object.md5, actual: actual)
            }
            return data
        } catch {
            throw Self.storeError(error, operation: "read", path: url(for: key))
        }
    }

    public func head(_ key: ObjectKey) async throws(StoreError) -> StoredObject? {
        do {
            return try headThrowing(key)
        } catch {
            throw Self.storeError(error, operation: "inspect", path: url(for: key))
        }
    }

    public func delete(_ key: ObjectKey) async throws(StoreError) {
        let path = path(for: key)
        do {
            try FileSystem.unlinkIfPresent(path)
            try FileSystem.unlinkIfPresent(path + ObjectKey.sidecarSuffix)
        } catch {
            throw Self.storeError(error, operation: "delete", path: path)
        }
        FileSystem.pruneEmptyDirectories(from: (path as NSString).deletingLastPathComponent, upTo: root + "/" + key.bucket)
    }

    public func copy(_ source: ObjectKey, to destination: ObjectKey) async throws(StoreError) -> StoredObject {
        let original: StoredObject
        do {
            guard let found = try headThrowing(source) else { throw StoreError.notFound(url: url(for: source)) }
            original = found
        } catch {
            throw Self.storeError(error, operation: "copy", path: url(for: source))
        }
        let copied = try await put(.file(path(for: source)), key: destination, metadata: original.metadata)
        guard copied.md5 == original.md5 else {
            try? await delete(destination)
            throw StoreError.checksumMismatch(url: original.url, expected: original.md5, actual: copied.md5)
        }
        return copied
    }

    public func move(_ source: ObjectKey, to destination: ObjectKey) async throws(StoreError) -> StoredObject {
        do {
            return try moveThrowing(source, to: destination)
        } catch {
            throw Self.storeError(error, operation: "move", path: url(for: source))
        }
    }

    public func list(bucket: String, prefix: String) async throws(StoreError) -> [StoredObject] {
        do {
            return try listThrowing(bucket: bucket, prefix: prefix)
        } catch {
            throw Self.storeError(error, operation: "list", path: root + "/" + bucket)
        }
    }

    // MARK: - Implementation

    private func putThrowing(_ source: ArtifactSource, key: ObjectKey, metadata: [String: String]) async throws -> StoredObject {
        let path = path(for: key)
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = directory + "/" + FileSystem.temporaryName(for: key.name)
        let file = try openTemporary(temporary, directory: directory)
        var committed = false
        defer { if !committed { try? FileSystem.unlinkIfPresent(temporary) } }

        var digester = Digester()
        var size: Int64 = 0
        func append(_ bytes: UnsafeRawBufferPointer) throws {
            digester.update(bytes)
            try file.writeAll(bytes)
            size += Int64(bytes.count)
        }
        switch source {
        case .file(let sourcePath):
            let input = try POSIXFile.open(sourcePath, flags: O_RDONLY)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Digester.chunkSize, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let count = try input.read(into: buffer)
                if count == 0 { break }
                try append(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            }
        case .bytes(let data):
            try data.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let end = min(offset + Digester.chunkSize, bytes.count)
                    try append(UnsafeRawBufferPointer(rebasing: bytes[offset..<end]))
                    offset = end
                }
            }
        case .stream(let stream):
            do {
                for try await chunk in stream {
                    try chunk.withUnsafeBytes { bytes in try append(bytes) }
                }
            } catch let error as StoreError {
                throw error
            } catch {
                throw StoreError.sourceFailed(key: key.description, message: String(describing: error))
            }
        }
        try Task.checkCancellation()
        try file.sync()
        let info = try file.status()

        let (md5, sha256) = digester.finalize()
        if let expected = metadata["md5sum"]?.lowercased(), expected != md5 {
            throw StoreError.checksumMismatch(url: url(for: key), expected: "md5 " + expected, actual: "md5 " + md5)
        }
        if let expected = metadata["sha256sum"]?.lowercased(), expected != sha256 {
            throw StoreError.checksumMismatch(url: url(for: key), expected: "sha256 " + expected, actual: "sha256 " + sha256)
        }
        var stored = metadata
        if stored["md5sum"] == nil { stored["md5sum"] = md5 }
        let sidecar = Sidecar(size: size, md5: md5, sha256: sha256, inode: UInt64(info.st_ino), mtimeNanoseconds: FileSystem.mtimeNanoseconds(info), metadata: stored)
        try writeSidecar(sidecar, for: path)
        try FileSystem.rename(temporary, path)
        committed = true
        FileSystem.syncDirectory(directory)
        return StoredObject(key: key, url: url(for: key), size: size, md5: md5, sha256: sha256, etag: md5, metadata: stored)
    }

    /// Opens a new temporary file, creating the directory (again, if a concurrent delete pruned it).
    private func openTemporary(_ temporary: String, directory: String) throws -> POSIXFile {
        var attempts = 0
        while true {
            try FileSystem.makeDirectories(directory)
            do {
                return try POSIXFile.open(temporary, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o644)
            } catch StoreError.io(_, _, _) where attempts < 3 && errno == ENOENT {
                attempts += 1
            }
        }
    }

    private func getThrowing(_ key: ObjectKey, to destination: String) throws -> StoredObject {
        guard let object = try headThrowing(key) else { throw StoreError.notFound(url: url(for: key)) }
        let destinationPath = destination.hasPrefix("/") ? destination : FileManager.default.currentDirectoryPath + "/" + destination
        let directory = (destinationPath as NSString).deletingLastPathComponent
        try FileSystem.makeDirectories(directory)
        let temporary = directory + "/" + FileSystem.temporaryName(for: (destinationPath as NSString).lastPathComponent)
        var committed = false
        defer { if !committed { try? FileSystem.unlinkIfPresent(temporary) } }
        do {
            let input = try POSIXFile.open(path(for: key), flags: O_RDONLY)
            let output = try POSIXFile.open(temporary, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o644)
            var digester = Digester()
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Digester.chunkSize, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let count = try input.read(into: buffer)
                if count == 0 { break }
                let chunk = UnsafeRawBufferPointer(rebasing: buffer[..<count])
                digester.update(chunk)
                try output.writeAll(chunk)
            }
            let md5 = digester.finalize().md5
            guard md5 == object.md5 else {
                throw StoreError.checksumMismatch(url: object.url, expected: object.md5, actual: md5)
            }
            try output.sync()
        }
        try FileSystem.rename(temporary, destinationPath)
        committed = true
        return object
    }

    private func headThrowing(_ key: ObjectKey) throws -> StoredObject? {
        let path = path(for: key)
        guard let info = try FileSystem.status(path), FileSystem.isRegularFile(info) else { return nil }
        if let sidecar = readSidecar(for: path), sidecar.matches(info) {
            return StoredObject(
                key: key, url: url(for: key), size: sidecar.size, md5: sidecar.md5, sha256: sidecar.sha256,
                etag: sidecar.md5, metadata: sidecar.metadata)
        }
        // No sidecar, or one left from another file (a crash between renames, a hand-copied file).
        let digests = try Digester.digests(ofFile: path)
        let metadata = ["md5sum": digests.md5]
        if let fresh = try FileSystem.status(path), Int64(fresh.st_size) == digests.size {
            let sidecar = Sidecar(
                size: digests.size, md5: digests.md5, sha256: digests.sha256, inode: UInt64(fresh.st_ino),
                mtimeNanoseconds: FileSystem.mtimeNanoseconds(fresh), metadata: metadata)
            try? writeSidecar(sidecar, for: path)
        }
        return StoredObject(
            key: key, url: url(for: key), size: digests.size, md5: digests.md5, sha256: digests.sha256, etag: digests.md5,
            metadata: metadata)
    }

    private func moveThrowing(_ source: ObjectKey, to destination: ObjectKey) throws -> StoredObject {
        let from = path(for: source)
        let to = path(for: destination)
        guard let info = try FileSystem.status(from), FileSystem.isRegularFile(info) else {
            throw StoreError.notFound(url: url(for: source))
        }
        guard from != to else {
            guard let object = try headThrowing(source) else { throw StoreError.notFound(url: url(for: source)) }
            return object
        }
        try FileSystem.makeDirectories((to as NSString).deletingLastPathComponent)
        // The sidecar first: if we stop between the renames, the destination's sidecar does not match the
        // (old or missing) destination file and is ignored; the source recomputes its digests.
        if let sidecar = readSidecar(for: from), sidecar.matches(info) {
            try FileSystem.rename(from + ObjectKey.sidecarSuffix, to + ObjectKey.sidecarSuffix)
        } else {
            try FileSystem.unlinkIfPresent(to + ObjectKey.sidecarSuffix)
        }
        try FileSystem.rename(from, to)
        FileSystem.syncDirectory((to as NSString).deletingLastPathComponent)
        FileSystem.pruneEmptyDirectories(from: (from as NSString).deletingLastPathComponent, upTo: root + "/" + source.bucket)
        guard let object = try headThrowing(destination) else { throw StoreError.notFound(url: url(for: destination)) }
        return object
    }

    private func listThrowing(bucket: String, prefix: String) throws -> [StoredObject] {
        let bucketPath = root + "/" + bucket
        guard let info = try FileSystem.status(bucketPath), FileSystem.isDirectory(info) else { return [] }
        guard let enumerator = FileManager.default.enumerator(atPath: bucketPath) else { return [] }
        var objects: [StoredObject] = []
        while let relative = enumerator.nextObject() as? String {
            let name = (relative as NSString).lastPathComponent
            if name.hasPrefix(ObjectKey.temporaryPrefix) || name.hasSuffix(ObjectKey.sidecarSuffix) { continue }
            guard relative.hasPrefix(prefix) || prefix.hasPrefix(relative + "/") || prefix.isEmpty else {
                if let type = enumerator.fileAttributes?[.type] as? FileAttributeType, type == .typeDirectory {
                    enumerator.skipDescendants()
                }
                continue
            }
            guard relative.hasPrefix(prefix), let key = try? ObjectKey(bucket: bucket, key: relative),
                let object = try headThrowing(key)
            else { continue }
            objects.append(object)
        }
        return objects.sorted { $0.key < $1.key }
    }

    // MARK: - Sidecars

    private func readSidecar(for path: String) -> Sidecar? {
        guard let data = FileManager.default.contents(atPath: path + ObjectKey.sidecarSuffix) else { return nil }
        return try? JSONDecoder().decode(Sidecar.self, from: data)
    }

    private func writeSidecar(_ sidecar: Sidecar, for path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(sidecar)
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = directory + "/" + FileSystem.temporaryName(for: (path as NSString).lastPathComponent + ObjectKey.sidecarSuffix)
        var committed = false
        defer { if !committed { try? FileSystem.unlinkIfPresent(temporary) } }
        do {
            let file = try POSIXFile.open(temporary, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o644)
            try data.withUnsafeBytes { bytes in try file.writeAll(bytes) }
            try file.sync()
        }
        try FileSystem.rename(temporary, path + ObjectKey.sidecarSuffix)
        committed = true
    }

    static func storeError(_ error: any Error, operation: String, path: String) -> StoreError {
        if let storeError = error as? StoreError { return storeError }
        if error is CancellationError { return StoreError.sourceFailed(key: path, message: "cancelled") }
        return StoreError.io(operation: operation, path: path, message: String(describing: error))
    }
}

/// The digest record kept next to each object of the local store.
struct Sidecar: Codable, Equatable {
    var version = 1
    var size: Int64
    var md5: String
    var sha256: String
    var inode: UInt64
    var mtimeNanoseconds: Int64
    var metadata: [String: String]

    init(size: Int64, md5: String, sha256: String, inode: UInt64, mtimeNanoseconds: Int64, metadata: [String: String]) {
        self.size = size
        self.md5 = md5
        self.sha256 = sha256
        self.inode = inode
        self.mtimeNanoseconds = mtimeNanoseconds
        self.metadata = metadata
    }

    enum CodingKeys: String, CodingKey {
        case version, size, md5, sha256, inode, metadata
        case mtimeNanoseconds = "mtime_ns"
    }

    /// Whether the sidecar describes this file (same inode, size and modification time).
    func matches(_ info: stat) -> Bool {
        inode == UInt64(info.st_ino) && size == Int64(info.st_size) && mtimeNanoseconds == FileSystem.mtimeNanoseconds(info)
    }
}

/// md5 hex of bytes in memory.
func Insecure_md5(_ data: Data) -> String {
    var digester = Digester()
    data.withUnsafeBytes { digester.update($0) }
    return digester.finalize().md5
}

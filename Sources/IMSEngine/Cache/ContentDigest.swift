import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// SHA-256 digests of files and directory trees, for the phase cache's keys.
///
/// A tree's digest covers, for every entry in name order: its path relative to the root, its type, its permission
/// bits and owner, and its content (file bytes, a symbolic link's target, a device's numbers). Times are left out:
/// they say when something was made, not what it is.
public enum ContentDigest {
    /// `sha256:<hex>` of `path`: a file's bytes, or a directory's tree (`path` itself may be a symbolic link;
    /// links inside a tree are hashed as links).
    public static func of(path: String) throws(EngineError) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw EngineError(.artifact, "cannot read \(path) to compute its digest: \(String(cString: strerror(errno)))")
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            var hasher = SHA256()
            try hashTree(path, relative: ".", into: &hasher)
            return "sha256:" + hex(hasher.finalize())
        }
        var hasher = SHA256()
        try hashFile(realPath(path), into: &hasher)
        return "sha256:" + hex(hasher.finalize())
    }

    /// `path` with every symbolic link resolved (realpath(3)); `path` itself when it cannot be resolved.
    public static func realPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// A cheap fingerprint of what is at `path` (every entry's name, type, size, inode, modification and change
    /// times; no content): equal fingerprints let a digest computed earlier in the process be used again.
    public static func fingerprint(path: String) -> String {
        var hasher = SHA256()
        func walk(_ path: String, _ relative: String) {
            var info = stat()
            guard (relative == "." ? stat(path, &info) : lstat(path, &info)) == 0 else { return }
            let line = "\(relative)\u{0}\(info.st_mode)\u{0}\(info.st_size)\u{0}\(info.st_ino)\u{0}\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)\u{0}\(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)\n"
            hasher.update(data: Data(line.utf8))
            guard (info.st_mode & S_IFMT) == S_IFDIR, let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return }
            for name in names.sorted() { walk(path + "/" + name, relative + "/" + name) }
        }
        walk(path, ".")
        return hex(hasher.finalize())
    }

    /// `sha256:<hex>` of `text`.
    public static func of(text: String) -> String {
        "sha256:" + hex(SHA256.hash(data: Data(text.utf8)))
    }

    /// `sha256:<hex>` of `data`.
    public static func of(data: Data) -> String {
        "sha256:" + hex(SHA256.hash(data: data))
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }

    private static func hashFile(_ path: String, into hasher: inout SHA256) throws(EngineError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            throw EngineError(.artifact, "cannot read \(path) to compute its digest: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw EngineError(.artifact, "cannot read \(path) to compute its digest: \(String(cString: strerror(errno)))")
            }
            if count == 0 { return }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
    }

    private static func hashTree(_ path: String, relative: String, into hasher: inout SHA256) throws(EngineError) {
        guard let directory = opendir(path) else {
            throw EngineError(.artifact, "cannot list \(path) to compute its digest: \(String(cString: strerror(errno)))")
        }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(directory)
        for name in names.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            let full = path + "/" + name
            let entryPath = relative == "." ? name : relative + "/" + name
            var info = stat()
            guard lstat(full, &info) == 0 else {
                throw EngineError(.artifact, "cannot read \(full) to compute its digest: \(String(cString: strerror(errno)))")
            }
            let type = info.st_mode & S_IFMT
            let header = "\(entryPath)\u{0}\(type)\u{0}\(info.st_mode & 0o7777)\u{0}\(info.st_uid)\u{0}\(info.st_gid)\u{0}"
            hasher.update(data: Data(header.utf8))
            switch type {
            case S_IFDIR:
                hasher.update(data: Data("dir\u{0}".utf8))
                try hashTree(full, relative: entryPath, into: &hasher)
            case S_IFREG:
                hasher.update(data: Data("file\u{0}\(info.st_size)\u{0}".utf8))
                try hashFile(full, into: &hasher)
            case S_IFLNK:
                var target = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let length = readlink(full, &target, target.count - 1)
                guard length >= 0 else {
                    throw EngineError(.artifact, "cannot read the link \(full): \(String(cString: strerror(errno)))")
                }
                hasher.update(data: Data("link\u{0}".utf8) + Data(target[0..<length].map { UInt8(bitPattern: $0) }))
            default:
                hasher.update(data: Data("special\u{0}\(info.st_rdev)\u{0}".utf8))
            }
            hasher.update(data: Data([0]))
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Small POSIX helpers: lexical paths, realpath, bounded reads, atomic writes.
///
/// Paths are plain strings with `/` separators (Linux); nothing here follows URLs.
enum KiwiFileSystem {
    /// `a` joined with `b`; `b` wins when absolute.
    static func join(_ a: String, _ b: String) -> String {
        if b.hasPrefix("/") || a.isEmpty { return b }
        if b.isEmpty { return a }
        return a.hasSuffix("/") ? a + b : a + "/" + b
    }

    /// Removes `.`, empty components and resolves `..` lexically. Keeps leading `..` of relative paths.
    static func normalize(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." {
                if let last = parts.last, last != ".." {
                    parts.removeLast()
                } else if !absolute {
                    parts.append(part)
                }
                continue
            }
            parts.append(part)
        }
        let joined = parts.joined(separator: "/")
        if absolute { return "/" + joined }
        return joined.isEmpty ? "." : joined
    }

    /// The directory part of a path (`"."` when there is none).
    static func dirname(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    /// The last component of a path.
    static func basename(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// The current working directory.
    static func currentDirectory() -> String {
        guard let cwd = getcwd(nil, 0) else { return "/" }
        defer { free(cwd) }
        return String(cString: cwd)
    }

    /// An absolute, lexically normalised form of `path`.
    static func absolute(_ path: String) -> String {
        normalize(path.hasPrefix("/") ? path : join(currentDirectory(), path))
    }

    /// Whether `path` is `root` or below it; both must be absolute and normalised.
    static func isWithin(_ path: String, root: String) -> Bool {
        if root == "/" { return true }
        return path == root || path.hasPrefix(root + "/")
    }

    /// `path` relative to `root` when it is inside it.
    static func relative(_ path: String, to root: String) -> String? {
        guard isWithin(path, root: root) else { return nil }
        if path == root { return "." }
        return String(path.dropFirst(root == "/" ? 1 : root.count + 1))
    }

    /// `path` relative to the directory `base` (both absolute and normalised), with `..` steps
    /// when `path` is not below `base`.
    static func relativePath(of path: String, from base: String) -> String {
        let target = path.split(separator: "/")
        let origin = base.split(separator: "/")
        var common = 0
        while common < target.count, common < origin.count, target[common] == origin[common] { common += 1 }
        let steps = Array(repeating: "..", count: origin.count - common) + target[common...].map(String.init)
        return steps.isEmpty ? "." : steps.joined(separator: "/")
    }

    /// The symlink-free absolute path, or nil when it does not exist.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    enum Kind { case missing, regular, directory, symlink, other }

    /// What is at `path`, without following a final symlink.
    static func kind(_ path: String, followSymlinks: Bool = false) -> Kind {
        var info = stat()
        let rc = followSymlinks ? stat(path, &info) : lstat(path, &info)
        guard rc == 0 else { return .missing }
        switch info.st_mode & S_IFMT {
        case S_IFREG: return .regular
        case S_IFDIR: return .directory
        case S_IFLNK: return .symlink
        default: return .other
        }
    }

    /// Whether anything exists at `path` (following symlinks).
    static func exists(_ path: String) -> Bool { kind(path, followSymlinks: true) != .missing }

    /// Names in a directory (no `.`/`..`), unsorted; empty when it cannot be read.
    static func listDirectory(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Reads a regular file of at most `limit` bytes.
    ///
    /// - Throws: `KiwiError` with `kiwi.file.unreadable` (missing, not a regular file, I/O error)
    ///   or `kiwi.file.too_large`; `display` names the file in the message.
    static func readFile(_ path: String, limit: Int, display: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw KiwiError(.fileUnreadable, "cannot open the file: \(reason)", file: display)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw KiwiError(.fileUnreadable, "cannot stat the file", file: display)
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw KiwiError(.fileUnreadable, "not a regular file; descriptions and includes must be plain files", file: display)
        }
        if Int(info.st_size) > limit {
            throw KiwiError(
                .fileTooLarge, "the file has \(info.st_size) bytes, more than the limit of \(limit) bytes; KIWI descriptions are small, check that this is the right file",
                file: display)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(info.st_size))
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw KiwiError(.fileUnreadable, "read error: \(String(cString: strerror(errno)))", file: display)
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
            if bytes.count > limit {
                throw KiwiError(.fileTooLarge, "the file grew beyond the limit of \(limit) bytes while being read", file: display)
            }
        }
        return bytes
    }

    /// Replaces `path` atomically: writes a temporary file in the same directory, keeps the
    /// original's permission bits, fsyncs, then renames over the original.
    static func atomicReplace(_ path: String, with bytes: [UInt8], display: String) throws {
        var info = stat()
        let mode: mode_t = stat(path, &info) == 0 ? (info.st_mode & 0o7777) : 0o644
        var template = Array((dirname(path) + "/." + basename(path) + ".ims-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { buffer -> Int32 in
            guard let base = buffer.baseAddress else { return -1 }
            return mkstemp(base)
        }
        guard fd >= 0 else {
            throw KiwiError(.fileUnwritable, "cannot create a temporary file next to it: \(String(cString: strerror(errno)))", file: display)
        }
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var ok = false
        defer {
            if !ok { unlink(temporary) }
        }
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return write(fd, base + written, buffer.count - written)
            }
            if count < 0 {
                if errno == EINTR { continue }
                close(fd)
                throw KiwiError(.fileUnwritable, "cannot write the temporary file: \(String(cString: strerror(errno)))", file: display)
            }
            written += count
        }
        fchmod(fd, mode)
        if fsync(fd) != 0 {
            close(fd)
            throw KiwiError(.fileUnwritable, "cannot sync the temporary file: \(String(cString: strerror(errno)))", file: display)
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            throw KiwiError(.fileUnwritable, "cannot replace the file: \(String(cString: strerror(errno)))", file: display)
        }
        ok = true
    }
}

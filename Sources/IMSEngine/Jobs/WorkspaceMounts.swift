import Foundation
import IMSCatalog
#if canImport(Glibc)
import Glibc
#endif

/// Mounts below a job's workspace (a plugin's `/proc` in an image root, left by a plugin that was killed) and the one
/// rule for removing a workspace: every mount below it is released first, and a workspace that still has one is
/// never removed, so a removal cannot cross into a mount (a bind of the host's `/dev`, say).
public enum WorkspaceMounts {
    /// The mount points strictly below `path` (after symlinks), deepest first.
    public static func mounts(under path: String) -> [String] {
        let base = resolved(path)
        guard !base.isEmpty, base != "/" else { return [] }
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return [] }
        var points: [String] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count > 4 else { continue }
            let point = unescape(String(fields[4]))
            if point.hasPrefix(base + "/"), !points.contains(point) { points.append(point) }
        }
        return points.sorted { ($0.split(separator: "/").count, $1) > ($1.split(separator: "/").count, $0) }
    }

    /// Unmounts everything below `path`, deepest first, lazily when busy, until nothing is left or nothing more
    /// goes. Returns the mount points that are still there.
    @discardableResult
    public static func release(under path: String) -> [String] {
        var left = mounts(under: path)
        var rounds = 0
        while !left.isEmpty, rounds < 32 {  // stacked mounts of one point need one unmount each
            rounds += 1
            var progress = false
            for point in left where umount2(point, Int32(MNT_DETACH)) == 0 { progress = true }
            left = mounts(under: path)
            if !progress { break }
        }
        return left
    }

    /// Removes a workspace after releasing every mount below it; refuses (and removes nothing) when a mount stays.
    public static func remove(_ workspace: String) throws(EngineError) {
        guard FileManager.default.fileExists(atPath: workspace) else { return }
        let left = release(under: workspace)
        guard left.isEmpty else {
            throw EngineError(.workspace, "workspace \(workspace) was not removed: \(left.joined(separator: ", ")) could not be unmounted")
        }
        do {
            try FileManager.default.removeItem(atPath: workspace)
        } catch {
            throw EngineError(.workspace, "cannot remove workspace \(workspace): \(error.localizedDescription)")
        }
    }

    /// ``Catalog/markInterrupted(host:isAlive:)``, and then the mounts below the workspaces of the jobs it marked are
    /// released (a plugin killed with its runner cannot unmount what it mounted).
    @discardableResult
    public static func markInterrupted(_ catalog: Catalog) -> [JobRecord] {
        let marked = (try? catalog.markInterrupted()) ?? []
        for job in marked { if let workspace = job.workspace { release(under: workspace) } }
        return marked
    }

    private static func resolved(_ path: String) -> String {
        guard let real = realpath(path, nil) else { return URL(fileURLWithPath: path).standardizedFileURL.path }
        defer { free(real) }
        return String(cString: real)
    }

    /// mountinfo writes space, tab, newline and backslash as octal escapes (`\040`).
    private static func unescape(_ text: String) -> String {
        guard text.contains("\\") else { return text }
        var bytes: [UInt8] = []
        let utf8 = Array(text.utf8)
        var index = 0
        while index < utf8.count {
            if utf8[index] == UInt8(ascii: "\\"), index + 3 < utf8.count,
               let value = UInt8(String(decoding: utf8[(index + 1)...(index + 3)], as: UTF8.self), radix: 8) {
                bytes.append(value)
                index += 4
            } else {
                bytes.append(utf8[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

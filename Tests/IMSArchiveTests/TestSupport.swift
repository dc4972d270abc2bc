import CLibArchive
import Foundation
import IMSArchive
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// An entry for ``buildArchive(at:format:filter:entries:)``: hostile archives are generated here, in
/// the tests, with libarchive's own writer, so nothing binary is committed.
struct TestEntry {
    enum Kind {
        case file([UInt8])
        /// `count` zero bytes, streamed to the writer 1 MiB at a time (never held in memory).
        case zeros(Int64)
        case directory
        case symlink(String)
        case hardlink(String)
        case characterDevice
        case blockDevice
        case fifo
    }

    var path: String
    var kind: Kind
    var mode: mode_t

    static func file(_ path: String, _ content: String = "", mode: mode_t = 0o644) -> TestEntry {
        TestEntry(path: path, kind: .file(Array(content.utf8)), mode: mode)
    }

    static func directory(_ path: String, mode: mode_t = 0o755) -> TestEntry {
        TestEntry(path: path, kind: .directory, mode: mode)
    }

    static func symlink(_ path: String, to target: String) -> TestEntry {
        TestEntry(path: path, kind: .symlink(target), mode: 0o777)
    }

    static func hardlink(_ path: String, to target: String) -> TestEntry {
        TestEntry(path: path, kind: .hardlink(target), mode: 0o644)
    }
}

enum TestFormat: String, CaseIterable, CustomStringConvertible {
    case pax, gnutar, ustar, zip, cpio, sevenZip
    var description: String { rawValue }
}

enum TestFilter: String, CaseIterable, CustomStringConvertible {
    case gzip, bzip2, xz, zstd
    var description: String { rawValue }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
}

/// Writes `entries`, in order and verbatim (no sanitising), with libarchive's writer.
func buildArchive(at path: String, format: TestFormat = .pax, filter: TestFilter? = nil, entries: [TestEntry]) throws {
    guard let writer = archive_write_new() else { throw TestFailure(description: "archive_write_new") }
    defer { archive_write_free(writer) }
    func check(_ status: Int32, _ what: String) throws {
        guard status >= ARCHIVE_WARN else {
            let message = archive_error_string(writer).map { String(cString: $0) } ?? "?"
            throw TestFailure(description: "\(what): \(message)")
        }
    }
    switch format {
    case .pax: try check(archive_write_set_format_pax(writer), "format")
    case .gnutar: try check(archive_write_set_format_gnutar(writer), "format")
    case .ustar: try check(archive_write_set_format_ustar(writer), "format")
    case .zip: try check(archive_write_set_format_zip(writer), "format")
    case .cpio: try check(archive_write_set_format_cpio(writer), "format")
    case .sevenZip: try check(archive_write_set_format_7zip(writer), "format")
    }
    switch filter {
    case nil: break
    case .gzip?: try check(archive_write_add_filter_gzip(writer), "filter")
    case .bzip2?: try check(archive_write_add_filter_bzip2(writer), "filter")
    case .xz?: try check(archive_write_add_filter_xz(writer), "filter")
    case .zstd?: try check(archive_write_add_filter_zstd(writer), "filter")
    }
    try check(archive_write_open_filename(writer, path), "open")
    let zeros = [UInt8](repeating: 0, count: 1 << 20)
    for item in entries {
        guard let entry = archive_entry_new() else { throw TestFailure(description: "archive_entry_new") }
        defer { archive_entry_free(entry) }
        archive_entry_copy_pathname(entry, item.path)
        archive_entry_set_perm(entry, item.mode)
        archive_entry_set_mtime(entry, 1_700_000_000, 0)
        var data: [UInt8] = []
        var zeroCount: Int64 = 0
        switch item.kind {
        case .file(let bytes):
            archive_entry_set_filetype(entry, UInt32(0o100000))
            archive_entry_set_size(entry, la_int64_t(bytes.count))
            data = bytes
        case .zeros(let count):
            archive_entry_set_filetype(entry, UInt32(0o100000))
            archive_entry_set_size(entry, la_int64_t(count))
            zeroCount = count
        case .directory:
            archive_entry_set_filetype(entry, UInt32(0o040000))
        case .symlink(let target):
            archive_entry_set_filetype(entry, UInt32(0o120000))
            archive_entry_copy_symlink(entry, target)
        case .hardlink(let target):
            archive_entry_set_filetype(entry, UInt32(0o100000))
            archive_entry_copy_hardlink(entry, target)
            archive_entry_set_size(entry, 0)
        case .characterDevice:
            archive_entry_set_filetype(entry, UInt32(0o020000))
            archive_entry_set_rdevmajor(entry, 1)
            archive_entry_set_rdevminor(entry, 3)
        case .blockDevice:
            archive_entry_set_filetype(entry, UInt32(0o060000))
            archive_entry_set_rdevmajor(entry, 8)
            archive_entry_set_rdevminor(entry, 0)
        case .fifo:
            archive_entry_set_filetype(entry, UInt32(0o010000))
        }
        try check(archive_write_header(writer, entry), "header \(item.path)")
        if !data.isEmpty {
            guard archive_write_data(writer, data, data.count) >= 0 else { throw TestFailure(description: "data \(item.path)") }
        }
        while zeroCount > 0 {
            let chunk = Int(min(zeroCount, Int64(zeros.count)))
            guard archive_write_data(writer, zeros, chunk) >= 0 else { throw TestFailure(description: "zeros \(item.path)") }
            zeroCount -= Int64(chunk)
        }
    }
    try check(archive_write_close(writer), "close")
}

/// A private temporary directory holding the archive and the destination. Hostile archives aim their
/// escapes at this directory (`../escaped`, its absolute path, links to it), so "nothing outside the
/// destination" is checked by comparing its recursive listing before and after.
final class Sandbox {
    let root: String
    let archive: String
    let destination: String

    init(_ name: String = "archive") throws {
        let base = FileManager.default.temporaryDirectory.path
        root = "\(base)/ims-archive-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
        archive = "\(root)/\(name)"
        destination = "\(root)/out"
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    /// Every path below the root, recursively, without following symbolic links.
    func listing() -> [String] {
        var result: [String] = []
        func walk(_ path: String, _ prefix: String) {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return }
            for name in names.sorted() {
                let child = "\(path)/\(name)"
                result.append(prefix + name)
                var info = stat()
                if lstat(child, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR { walk(child, prefix + name + "/") }
            }
        }
        walk(root, "")
        return result
    }

    func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    func read(_ relative: String) throws -> String {
        try String(contentsOfFile: "\(destination)/\(relative)", encoding: .utf8)
    }

    func mode(_ relative: String) -> mode_t? {
        var info = stat()
        guard lstat("\(destination)/\(relative)", &info) == 0 else { return nil }
        return info.st_mode
    }

    func linkTarget(_ relative: String) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "\(destination)/\(relative)")
    }

    /// Builds an archive of `entries`, extracts it, and checks it is refused with `code`, naming
    /// `entry`, leaving nothing behind: the sandbox listing is unchanged and the destination absent.
    @discardableResult
    func expectRefused(
        _ entries: [TestEntry], format: TestFormat = .pax, filter: TestFilter? = nil, limits: ExtractionLimits = .default,
        code: ArchiveError.Code, entry: String?, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> ArchiveError? {
        try buildArchive(at: archive, format: format, filter: filter, entries: entries)
        return expectRefusedArchive(limits: limits, code: code, entry: entry, sourceLocation: sourceLocation)
    }

    /// Extracts the sandbox's existing archive and checks it is refused as in ``expectRefused``.
    @discardableResult
    func expectRefusedArchive(
        limits: ExtractionLimits = .default, code: ArchiveError.Code, entry: String?,
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> ArchiveError? {
        let before = listing()
        var caught: ArchiveError?
        do {
            let report = try ArchiveExtractor(limits: limits).extract(archive: archive, to: destination)
            Issue.record("extraction unexpectedly succeeded: \(report)", sourceLocation: sourceLocation)
        } catch {
            caught = error
        }
        guard let caught else { return nil }
        #expect(caught.code == code, "\(caught)", sourceLocation: sourceLocation)
        #expect(caught.archivePath == archive, sourceLocation: sourceLocation)
        if let entry {
            #expect(caught.entry == entry, "\(caught)", sourceLocation: sourceLocation)
            #expect(caught.description.contains("'\(entry)'"), "\(caught)", sourceLocation: sourceLocation)
        }
        #expect(listing() == before, "something was left behind: \(listing())", sourceLocation: sourceLocation)
        #expect(!exists(destination), sourceLocation: sourceLocation)
        return caught
    }
}

/// `count` random bytes, generated eight at a time.
func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    var bytes = [UInt8](repeating: 0, count: count)
    bytes.withUnsafeMutableBytes { raw in
        var offset = 0
        while offset < raw.count {
            withUnsafeBytes(of: generator.next()) { word in
                for byte in word where offset < raw.count {
                    raw[offset] = byte
                    offset += 1
                }
            }
        }
    }
    return bytes
}

/// The peak resident set size of this process, in bytes.
func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
    return usage.ru_maxrss * 1024
}

/// Runs a command and returns its standard output.
func run(_ executable: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw TestFailure(description: "\(executable) \(arguments) exited with \(process.terminationStatus)")
    }
    return String(decoding: data, as: UTF8.self)
}

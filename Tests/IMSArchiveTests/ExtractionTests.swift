import Foundation
import IMSArchive
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Extraction of well-formed archives")
struct ExtractionTests {
    /// A small recipe-like tree: files, an explicit and an implied directory, a symlink within the
    /// tree, an executable script and a read-only file.
    static let recipe: [TestEntry] = [
        .directory("root"),
        .file("config.xml", "<image schemaversion=\"7.4\" name=\"x\"/>\n"),
        .file("config.sh", "#!/bin/bash\necho hi\n", mode: 0o755),
        .file("root/etc/motd", "welcome\n", mode: 0o444),
        .symlink("root/etc/issue", to: "motd"),
        .symlink("latest", to: "root/etc"),
    ]

    static let layouts: [(TestFormat, TestFilter?)] = [
        (.pax, nil), (.ustar, nil), (.gnutar, nil), (.pax, .gzip), (.gnutar, .gzip), (.pax, .xz), (.pax, .zstd), (.pax, .bzip2), (.zip, nil),
    ]

    @Test("every supported format round-trips a small tree", arguments: layouts)
    func roundTrip(format: TestFormat, filter: TestFilter?) throws {
        let box = try Sandbox("recipe-\(format)-\(filter.map(\.rawValue) ?? "none")")
        try buildArchive(at: box.archive, format: format, filter: filter, entries: Self.recipe)
        let report = try ArchiveExtractor().extract(archive: box.archive, to: box.destination)

        #expect(try box.read("config.xml") == "<image schemaversion=\"7.4\" name=\"x\"/>\n")
        #expect(try box.read("root/etc/motd") == "welcome\n")
        #expect(try box.read("latest/motd") == "welcome\n")
        #expect(box.linkTarget("root/etc/issue") == "motd")
        #expect(box.linkTarget("latest") == "root/etc")
        #expect(box.mode("config.sh").map { $0 & 0o7777 } == 0o755)
        #expect(box.mode("config.xml").map { $0 & 0o7777 } == 0o644)
        #expect(box.mode("root/etc/motd").map { $0 & 0o7777 } == 0o444)
        #expect(box.mode("root/etc").map { $0 & S_IFMT } == S_IFDIR)
        var info = stat()
        #expect(lstat("\(box.destination)/config.xml", &info) == 0 && info.st_mtim.tv_sec == 1_700_000_000)

        #expect(report.entries == Self.recipe.count)
        #expect(report.files == 3)
        #expect(report.symlinks == 2)
        #expect(report.directories == 1)
        #expect(report.bytesWritten == Int64(Self.recipe.reduce(0) { total, entry in
            if case .file(let bytes) = entry.kind { return total + bytes.count }
            return total
        }))
        #expect(report.filters == (filter.map { [$0 == .bzip2 ? "bzip2" : $0.rawValue] } ?? []))
        #expect(report.format.lowercased().contains(format == .zip ? "zip" : "tar"))
        #expect(report.strippedSetuidEntries == 0)
        #expect(box.listing().filter { $0.contains(".partial-") }.isEmpty)
    }

    @Test("setuid, setgid and sticky bits are stripped and counted")
    func setuidStripped() throws {
        let box = try Sandbox()
        try buildArchive(at: box.archive, entries: [
            .file("bin/su", "#!/bin/sh\n", mode: 0o4755), .file("bin/wall", "x", mode: 0o2711), .directory("tmp", mode: 0o1777),
            .file("plain", "x", mode: 0o640),
        ])
        let report = try ArchiveExtractor().extract(archive: box.archive, to: box.destination)
        #expect(box.mode("bin/su").map { $0 & 0o7777 } == 0o755)
        #expect(box.mode("bin/wall").map { $0 & 0o7777 } == 0o711)
        #expect(box.mode("tmp").map { $0 & 0o7777 } == 0o777)
        #expect(box.mode("plain").map { $0 & 0o7777 } == 0o640)
        #expect(report.strippedSetuidEntries == 3)
    }

    @Test("exact duplicates are accepted: directories, identical files, identical links")
    func exactDuplicates() throws {
        let box = try Sandbox()
        try buildArchive(at: box.archive, entries: [
            .directory("d", mode: 0o755), .file("d/f", "same"), .directory("d", mode: 0o700), .file("d/f", "same"),
            .symlink("l", to: "d/f"), .symlink("l", to: "d/f"), .hardlink("h", to: "d/f"), .hardlink("h", to: "d/f"),
            .file("./d/./f", "same"),
        ])
        let report = try ArchiveExtractor().extract(archive: box.archive, to: box.destination)
        #expect(try box.read("d/f") == "same")
        #expect(try box.read("h") == "same")
        #expect(box.mode("d").map { $0 & 0o777 } == 0o700)
        #expect(report.files == 1)
        #expect(report.hardlinks == 1)
        #expect(report.symlinks == 1)
        #expect(report.directories == 1)
        #expect(report.entries == 9)
    }

    @Test("hard links within the tree share the inode")
    func hardlinks() throws {
        let box = try Sandbox()
        try buildArchive(at: box.archive, format: .gnutar, entries: [.file("a/file", "data"), .hardlink("b/link", to: "a/file")])
        _ = try ArchiveExtractor().extract(archive: box.archive, to: box.destination)
        var first = stat()
        var second = stat()
        #expect(lstat("\(box.destination)/a/file", &first) == 0)
        #expect(lstat("\(box.destination)/b/link", &second) == 0)
        #expect(first.st_ino == second.st_ino)
    }

    @Test("an empty destination directory is replaced; a './' root entry is fine")
    func emptyDestination() throws {
        let box = try Sandbox()
        try buildArchive(at: box.archive, entries: [.directory("./"), .file("./a", "x")])
        try FileManager.default.createDirectory(atPath: box.destination, withIntermediateDirectories: false)
        let report = try ArchiveExtractor().extract(archive: box.archive, to: box.destination + "/")
        #expect(try box.read("a") == "x")
        #expect(report.entries == 2)
        #expect(box.listing() == ["archive", "out", "out/a"])
    }

    @Test("files larger than a batch, and many small files, arrive intact", .timeLimit(.minutes(1)))
    func largeAndMany() throws {
        let box = try Sandbox("big.tar.zst")
        let big = randomBytes((3 << 20) + 12345)
        var entries = [TestEntry(path: "big.bin", kind: .file(big), mode: 0o600)]
        for index in 0..<3000 { entries.append(.file("many/\(index % 7)/f\(index)", String(repeating: "\(index) ", count: index % 50))) }
        try buildArchive(at: box.archive, filter: .zstd, entries: entries)
        let report = try ArchiveExtractor().extract(archive: box.archive, to: box.destination)
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(box.destination)/big.bin")) == Data(big))
        #expect(try box.read("many/3/f2999") == String(repeating: "2999 ", count: 2999 % 50))
        #expect(report.files == 3001)
    }

    @Test("sparse files keep their holes and size")
    func sparseFiles() throws {
        let box = try Sandbox("sparse.tar")
        let tree = "\(box.root)/tree"
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: false)
        let handle = try #require(FileHandle(forWritingAtPath: try {
            FileManager.default.createFile(atPath: "\(tree)/disk.img", contents: nil)
            return "\(tree)/disk.img"
        }()))
        try handle.seek(toOffset: 5 << 20)
        try handle.write(contentsOf: Data("middle".utf8))
        try handle.truncate(atOffset: 12 << 20)
        try handle.close()
        _ = try run("/bin/tar", ["-C", tree, "--sparse", "--format=pax", "-cf", box.archive, "disk.img"])
        let report = try ArchiveExtractor().extract(archive: box.archive, to: box.destination)
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(box.destination)/disk.img"))
        #expect(data.count == 12 << 20)
        #expect(data[(5 << 20)..<((5 << 20) + 6)] == Data("middle".utf8))
        #expect(data.prefix(5 << 20).allSatisfy { $0 == 0 })
        #expect(report.bytesWritten < 1 << 20)
    }

    @Test("a file-system failure in the writer is reported with the entry and cleaned up")
    func writerFailure() throws {
        let box = try Sandbox()
        let long = "dir/" + String(repeating: "n", count: 300)
        let entries = [TestEntry.file("a", "x")] + (0..<50).map { TestEntry.file("pad/\($0)", "y") } + [.file(long, "z")]
        let error = try box.expectRefused(entries, code: .io, entry: long)
        #expect(error?.reason.contains("File name too long") == true)
    }

    @Test("a UTF-8 file name round-trips through pax and zip", arguments: [TestFormat.pax, .zip])
    func utf8Names(format: TestFormat) throws {
        let box = try Sandbox()
        try buildArchive(at: box.archive, format: format, entries: [.file("café/naïve.txt", "x")])
        _ = try ArchiveExtractor().extract(archive: box.archive, to: box.destination)
        #expect(try box.read("café/naïve.txt") == "x")
    }

    @Test("archives from GNU tar extract, and error messages quote control characters")
    func gnuTarAndControlCharacters() throws {
        let box = try Sandbox("gnu.tar.gz")
        let tree = "\(box.root)/tree"
        try FileManager.default.createDirectory(atPath: "\(tree)/sub", withIntermediateDirectories: true)
        try Data("hello".utf8).write(to: URL(fileURLWithPath: "\(tree)/sub/file"))
        _ = try run("/bin/tar", ["-C", tree, "-czf", box.archive, "."])
        let destination = "\(box.root)/gnu-out"
        let report = try ArchiveExtractor().extract(archive: box.archive, to: destination)
        #expect(try String(contentsOfFile: "\(destination)/sub/file", encoding: .utf8) == "hello")
        #expect(report.filters == ["gzip"])

        let error = ArchiveError(.pathTraversal, archivePath: "r.tgz", entry: "../\u{1B}[2Jx", reason: "'..' in path")
        #expect(error.description == "r.tgz: entry '../\\u{1b}[2Jx' escapes the destination ('..' in path)")
    }
}

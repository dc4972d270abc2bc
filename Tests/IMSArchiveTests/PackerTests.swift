import Foundation
import IMSArchive
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Reproducible packing")
struct PackerTests {
    /// Creates a small recipe tree under `root`.
    static func makeTree(at root: String) throws {
        let manager = FileManager.default
        try manager.createDirectory(atPath: "\(root)/root/etc/zypp", withIntermediateDirectories: true)
        try manager.createDirectory(atPath: "\(root)/empty", withIntermediateDirectories: true)
        try Data("<image/>\n".utf8).write(to: URL(fileURLWithPath: "\(root)/config.xml"))
        try Data("#!/bin/bash\n".utf8).write(to: URL(fileURLWithPath: "\(root)/config.sh"))
        try Data("a-b sorts before a/…\n".utf8).write(to: URL(fileURLWithPath: "\(root)/root-b"))
        try Data(repeating: 7, count: 300_000).write(to: URL(fileURLWithPath: "\(root)/root/etc/blob"))
        try Data("[repo]\n".utf8).write(to: URL(fileURLWithPath: "\(root)/root/etc/zypp/zypp.conf"))
        chmod("\(root)/config.sh", 0o4755)
        chmod("\(root)/root/etc/zypp", 0o750)
        try manager.createSymbolicLink(atPath: "\(root)/root/etc/link", withDestinationPath: "zypp/zypp.conf")
    }

    /// Copies `source` to `destination` with `cp -a`, then gives everything other times and owners.
    static func copyAndDisturb(_ source: String, to destination: String) throws {
        _ = try run("/bin/cp", ["-a", source, destination])
        _ = try run("/usr/bin/find", [destination, "-exec", "touch", "-h", "-d", "2011-11-11 11:11:11", "{}", "+"])
        if geteuid() == 0 {
            _ = try run("/bin/chown", ["-R", "-h", "65534:65534", destination])
        }
    }

    @Test("packing the same tree twice gives identical bytes, in every format", arguments: PackFormat.allCases)
    func sameTreeTwice(format: PackFormat) throws {
        let box = try Sandbox()
        try Self.makeTree(at: "\(box.root)/tree")
        let first = try ArchivePacker.pack(directory: "\(box.root)/tree", to: "\(box.root)/one", format: format)
        let second = try ArchivePacker.pack(directory: "\(box.root)/tree", to: "\(box.root)/two", format: format)
        #expect(first.sha256 == second.sha256)
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(box.root)/one")) == Data(contentsOf: URL(fileURLWithPath: "\(box.root)/two")))
        #expect(first.entries == 10)
        #expect(first.format == format)
    }

    @Test("with SOURCE_DATE_EPOCH, a copy at another path with later times and other owners packs to identical bytes",
          arguments: PackFormat.allCases)
    func copiedTree(format: PackFormat) throws {
        let box = try Sandbox()
        try Self.makeTree(at: "\(box.root)/tree")
        try Self.copyAndDisturb("\(box.root)/tree", to: "\(box.root)/elsewhere")
        // Both trees are newer than the epoch, so every time is clamped to it.
        let first = try ArchivePacker.pack(directory: "\(box.root)/tree", to: "\(box.root)/one", format: format, sourceDateEpoch: 1_000_000_000)
        let second = try ArchivePacker.pack(directory: "\(box.root)/elsewhere", to: "\(box.root)/two", format: format, sourceDateEpoch: 1_000_000_000)
        #expect(first.sha256 == second.sha256)
        #expect(first.md5 == second.md5)
    }

    @Test("modification times are kept without SOURCE_DATE_EPOCH; with it, later times are clamped and earlier ones kept")
    func modificationTimes() throws {
        let box = try Sandbox()
        try Self.makeTree(at: "\(box.root)/tree")
        _ = try run("/usr/bin/touch", ["-h", "-d", "@1500000000", "\(box.root)/tree/root/etc/zypp/zypp.conf", "\(box.root)/tree/root/etc/link"])
        _ = try run("/usr/bin/touch", ["-d", "@1600000000", "\(box.root)/tree/root/etc", "\(box.root)/tree/config.xml"])
        func times(_ archive: String) throws -> [String: String] {
            let listing = try run("/bin/tar", ["--numeric-owner", "--full-time", "--utc", "-tvzf", archive])
            var result: [String: String] = [:]
            for line in listing.split(separator: "\n") {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                result[String(fields[5])] = "\(fields[3]) \(fields[4])"
            }
            return result
        }
        let kept = try times(ArchivePacker.pack(directory: "\(box.root)/tree", to: "\(box.root)/kept.tar.gz").path)
        #expect(kept["root/etc/zypp/zypp.conf"] == "2017-07-14 02:40:00")
        #expect(kept["root/etc/link"] == "2017-07-14 02:40:00", "a link's own time, not its target's")
        #expect(kept["root/etc/"] == "2020-09-13 12:26:40")
        #expect(kept["config.xml"] == "2020-09-13 12:26:40")
        #expect(!kept.values.contains("1970-01-01 00:00:00"), "nothing is dated 1970")

        let clamped = try times(ArchivePacker.pack(directory: "\(box.root)/tree", to: "\(box.root)/clamped.tar.gz", sourceDateEpoch: 1_550_000_000).path)
        #expect(clamped["root/etc/zypp/zypp.conf"] == "2017-07-14 02:40:00", "older than the epoch: kept")
        #expect(clamped["root/etc/"] == "2019-02-12 19:33:20", "newer than the epoch: clamped")
        #expect(clamped["config.sh"] == "2019-02-12 19:33:20")
    }

    @Test("digests and size describe the file written; no temporary file remains")
    func digests() throws {
        let box = try Sandbox()
        try Self.makeTree(at: "\(box.root)/tree")
        let result = try ArchivePacker.pack(directory: "\(box.root)/tree", to: "\(box.root)/recipe.tar.gz")
        let sha = try run("/usr/bin/sha256sum", ["\(box.root)/recipe.tar.gz"]).prefix(64)
        let md5 = try run("/usr/bin/md5sum", ["\(box.root)/recipe.tar.gz"]).prefix(32)
        #expect(result.sha256 == String(sha))
        #expect(result.md5 == String(md5))
        let size = try FileManager.default.attributesOfItem(atPath: "\(box.root)/recipe.tar.gz")[.size] as? Int
        #expect(Int64(size ?? -1) == result.size)
        #expect(box.listing().filter { $0.contains(".tmp-") }.isEmpty)
        #expect(result.path == "\(box.root)/recipe.tar.gz")

        // gzip header: no FNAME flag, zero MTIME.
        let header = try Data(contentsOf: URL(fileURLWithPath: result.path)).prefix(10)
        #expect(Array(header.prefix(3)) == [0x1F, 0x8B, 8])
        #expect(header[header.startIndex + 3] == 0)
        #expect(Array(header[(header.startIndex + 4)..<(header.startIndex + 8)]) == [0, 0, 0, 0])
    }

    @Test("entries are sorted, owned by 0:0, dated SOURCE_DATE_EPOCH, setuid stripped")
    func entryMetadata() throws {
        let box = try Sandbox()
        try Self.makeTree(at: "\(box.root)/tree")
        let result = try ArchivePacker.pack(directory: "\(box.root)/tree", to: "\(box.root)/r.tar.gz", sourceDateEpoch: 1_234_567_890)
        let listing = try run("/bin/tar", ["--numeric-owner", "--full-time", "-tvzf", result.path])
        let lines = listing.split(separator: "\n")
        let names = lines.compactMap { $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst(5).first.map(String.init) }
        #expect(names == [
            "config.sh", "config.xml", "empty/", "root/", "root-b", "root/etc/", "root/etc/blob", "root/etc/link", "root/etc/zypp/",
            "root/etc/zypp/zypp.conf",
        ])
        for line in lines {
            #expect(line.contains(" 0/0 "), "\(line)")
            #expect(line.contains("2009-02-13 23:31:30"), "\(line)")
        }
        #expect(lines.first?.hasPrefix("-rwxr-xr-x") == true)
        #expect(lines.contains { $0.hasPrefix("drwxr-x---") && $0.hasSuffix("root/etc/zypp/") })
        #expect(lines.contains { $0.hasPrefix("lrwxrwxrwx") && $0.hasSuffix("root/etc/link -> zypp/zypp.conf") })
    }

    @Test("pack then extract round-trips, in every format", arguments: PackFormat.allCases)
    func packThenExtract(format: PackFormat) throws {
        let box = try Sandbox()
        try Self.makeTree(at: "\(box.root)/tree")
        let result = try ArchivePacker.pack(directory: "\(box.root)/tree", to: box.archive, format: format)
        let report = try ArchiveExtractor().extract(archive: result.path, to: box.destination)
        #expect(report.entries == result.entries)
        #expect(try box.read("root/etc/link") == "[repo]\n")
        #expect(box.linkTarget("root/etc/link") == "zypp/zypp.conf")
        #expect(box.mode("config.sh").map { $0 & 0o7777 } == 0o755)
        #expect(box.mode("root/etc/zypp").map { $0 & 0o7777 } == 0o750)
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(box.destination)/root/etc/blob")) == Data(repeating: 7, count: 300_000))
        // Re-packing the extracted tree gives the same archive.
        let again = try ArchivePacker.pack(directory: box.destination, to: "\(box.root)/again", format: format)
        #expect(again.sha256 == result.sha256)
    }

    @Test("special files in the tree are refused, and the output is not created")
    func specialFileRefused() throws {
        let box = try Sandbox()
        try Self.makeTree(at: "\(box.root)/tree")
        #expect(mkfifo("\(box.root)/tree/root/pipe", 0o644) == 0)
        do {
            _ = try ArchivePacker.pack(directory: "\(box.root)/tree", to: "\(box.root)/r.tar.gz")
            Issue.record("packing a FIFO succeeded")
        } catch {
            #expect(error.code == .specialFile)
            #expect(error.entry == "root/pipe")
        }
        #expect(!box.exists("\(box.root)/r.tar.gz"))
        #expect(box.listing().filter { $0.contains(".tmp-") }.isEmpty)
    }

    @Test("packing replaces an existing archive atomically")
    func replacesExisting() throws {
        let box = try Sandbox()
        try Self.makeTree(at: "\(box.root)/tree")
        try Data("old".utf8).write(to: URL(fileURLWithPath: "\(box.root)/r.tar.gz"))
        let result = try ArchivePacker.pack(directory: "\(box.root)/tree", to: "\(box.root)/r.tar.gz")
        #expect(result.size > 3)
        #expect(box.listing().filter { $0.contains(".tmp-") }.isEmpty)
    }
}

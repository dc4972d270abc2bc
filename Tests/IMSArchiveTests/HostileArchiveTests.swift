import Foundation
import IMSArchive
import Testing

/// Every hostile archive is refused with the right code and a message naming the entry, writes nothing
/// outside the destination, and leaves neither the destination nor a partial directory behind.
@Suite("Hostile archives")
struct HostileArchiveTests {
    @Test("an absolute path is refused")
    func absolutePath() throws {
        let box = try Sandbox()
        let target = "\(box.root)/escaped"
        try box.expectRefused([.file("ok.txt", "fine"), .file(target, "pwned")], code: .absolutePath, entry: target)
    }

    @Test("'../' traversal is refused", arguments: ["../escaped", "a/../../escaped", "./../escaped", "a/b/../../../escaped"])
    func traversal(path: String) throws {
        let box = try Sandbox()
        let error = try box.expectRefused([.directory("a"), .file(path, "pwned")], code: .pathTraversal, entry: path)
        #expect(error?.description == "\(box.archive): entry '\(path)' escapes the destination ('..' in path)")
    }

    @Test("'..' is refused even when it would stay inside")
    func innocentDotDot() throws {
        let box = try Sandbox()
        try box.expectRefused([.file("a/../b", "x")], code: .pathTraversal, entry: "a/../b")
    }

    @Test("a file written through a symlink to /etc is refused")
    func writeThroughAbsoluteSymlink() throws {
        let box = try Sandbox()
        // `link` itself is refused first: its target is absolute.
        try box.expectRefused([.symlink("link", to: "/etc"), .file("link/passwd", "root::0:0::/:/bin/sh")], code: .linkEscape, entry: "link")
    }

    @Test("a file written through a symlink to the parent directory is refused")
    func writeThroughSymlinkToSandbox() throws {
        let box = try Sandbox()
        try box.expectRefused([.symlink("link", to: box.root), .file("link/escaped", "pwned")], code: .linkEscape, entry: "link")
    }

    @Test("a file written through an in-tree symlink is refused")
    func writeThroughInnocentSymlink() throws {
        let box = try Sandbox()
        let error = try box.expectRefused(
            [.directory("sub"), .symlink("link", to: "sub"), .file("link/passwd", "x")], code: .linkEscape, entry: "link/passwd")
        #expect(error?.description.contains("symbolic link 'link'") == true)
    }

    @Test("a symlink whose target escapes is refused", arguments: ["../../..", "../..", "x/../../../y", "../../escaped", "../sub/../../x"])
    func escapingSymlink(target: String) throws {
        let box = try Sandbox()
        let error = try box.expectRefused([.directory("sub"), .symlink("sub/link", to: target)], code: .linkEscape, entry: "sub/link")
        #expect(error?.reason.contains("'\(target)'") == true)
        let top = try Sandbox()
        try top.expectRefused([.symlink("link", to: "..")], code: .linkEscape, entry: "link")
    }

    @Test("symlinks that stay inside are accepted", arguments: ["..", "../sub/x", "x/../../y", "./.", "../../sub/.."])
    func innocentSymlink(target: String) throws {
        let box = try Sandbox()
        try buildArchive(at: box.archive, entries: [.directory("sub/deeper"), .symlink("sub/deeper/link", to: target)])
        _ = try ArchiveExtractor().extract(archive: box.archive, to: box.destination)
        #expect(box.linkTarget("sub/deeper/link") == target)
    }

    @Test("a chain of symlinks that escapes only when followed is refused, in either order")
    func symlinkChain() throws {
        let forward = try Sandbox()
        try forward.expectRefused(
            [.directory("a"), .symlink("a/b", to: ".."), .symlink("c", to: "a/b/../escaped")], code: .linkEscape, entry: "c")
        // `c` is created first, while `a/b` does not exist yet: only the final check can catch it.
        let backward = try Sandbox()
        try backward.expectRefused(
            [.directory("a"), .symlink("c", to: "a/b/.."), .symlink("a/b", to: "..")], code: .linkEscape, entry: "c")
    }

    @Test("a hardlink to /etc/passwd is refused")
    func hardlinkToEtcPasswd() throws {
        let box = try Sandbox()
        try box.expectRefused([.hardlink("passwd", to: "/etc/passwd")], code: .linkEscape, entry: "passwd")
    }

    @Test("a hardlink with '..' or to a missing file is refused")
    func hardlinkTraversalAndMissing() throws {
        let box = try Sandbox()
        try box.expectRefused([.hardlink("x", to: "../escaped")], code: .linkEscape, entry: "x")
        let missing = try Sandbox()
        try missing.expectRefused([.hardlink("x", to: "nothing")], code: .invalidEntry, entry: "x")
    }

    @Test("device nodes and FIFOs are refused")
    func specialFiles() throws {
        for (kind, what) in [(TestEntry.Kind.characterDevice, "character device"), (.blockDevice, "block device"), (.fifo, "FIFO")] {
            let box = try Sandbox()
            let error = try box.expectRefused(
                [.file("ok", "x"), TestEntry(path: "dev/thing", kind: kind, mode: 0o666)], code: .specialFile, entry: "dev/thing")
            #expect(error?.reason == what)
        }
    }

    @Test("a file then a directory with the same name is refused")
    func fileThenDirectory() throws {
        let box = try Sandbox()
        // libarchive's pax writer names directories with a trailing slash; errors quote the name as stored.
        try box.expectRefused([.file("conf", "x"), .directory("conf")], code: .duplicateEntry, entry: "conf/")
        let nested = try Sandbox()
        try nested.expectRefused([.file("conf", "x"), .file("conf/inner", "y")], code: .duplicateEntry, entry: "conf/inner")
    }

    @Test("the same file twice with different content is refused", arguments: [
        ("same size", "first content", "other content"), ("other size", "short", "much longer content"), ("emptied", "data", ""),
    ])
    func conflictingFiles(label: String, first: String, second: String) throws {
        let box = try Sandbox()
        try box.expectRefused([.file("config.sh", first), .file("config.sh", second)], code: .duplicateEntry, entry: "config.sh")
    }

    @Test("a symlink and a file with the same path are refused")
    func symlinkThenFile() throws {
        let box = try Sandbox()
        try box.expectRefused([.symlink("x", to: "y"), .file("x", "z")], code: .duplicateEntry, entry: "x")
        let other = try Sandbox()
        try other.expectRefused([.symlink("x", to: "y"), .symlink("x", to: "z")], code: .duplicateEntry, entry: "x")
    }

    @Test("a gzip bomb is stopped by the ratio limit, early and with bounded memory", .timeLimit(.minutes(1)))
    func gzipBomb() throws {
        let box = try Sandbox("bomb.tar.gz")
        try buildArchive(at: box.archive, filter: .gzip, entries: [TestEntry(path: "zeros", kind: .zeros(1 << 30), mode: 0o644)])
        let archiveSize = try #require(try FileManager.default.attributesOfItem(atPath: box.archive)[.size] as? Int)
        #expect(archiveSize < 4 << 20)
        let clock = ContinuousClock()
        let start = clock.now
        let error = box.expectRefusedArchive(code: .limitExceeded, entry: "zeros")
        let elapsed = clock.now - start
        #expect(error?.reason.contains("compression ratio over 200:1") == true)
        // The ratio trips at 200 × archive size (about 200 MiB), long before the 1 GiB is written.
        #expect(elapsed < .seconds(30))
        #expect(peakResidentBytes() < 768 << 20, "peak RSS \(peakResidentBytes() >> 20) MiB")
    }

    @Test("a bomb under the ratio threshold is still bounded by the total and per-entry limits")
    func sizeLimits() throws {
        let box = try Sandbox("big.tar.gz")
        let entries = [TestEntry(path: "a", kind: .zeros(3 << 20), mode: 0o644), TestEntry(path: "b", kind: .zeros(3 << 20), mode: 0o644)]
        let error = try box.expectRefused(
            entries, filter: .gzip, limits: ExtractionLimits(maxTotalBytes: 5 << 20), code: .limitExceeded, entry: "b")
        #expect(error?.reason.contains("total limit") == true)
        let single = try Sandbox("big.tar.gz")
        try single.expectRefused(entries, filter: .gzip, limits: ExtractionLimits(maxEntryBytes: 1 << 20), code: .limitExceeded, entry: "a")
    }

    @Test("too many entries are refused")
    func tooManyEntries() throws {
        let box = try Sandbox()
        let entries = (0..<11).map { TestEntry.file("f\($0)", "x") }
        let error = try box.expectRefused(entries, limits: ExtractionLimits(maxEntries: 10), code: .limitExceeded, entry: "f10")
        #expect(error?.reason == "more than 10 entries")
    }

    @Test("overlong and overdeep paths are refused")
    func pathLimits() throws {
        let long = String(repeating: "a", count: 300)
        let box = try Sandbox()
        try box.expectRefused([.file(long, "x")], limits: ExtractionLimits(maxPathLength: 255), code: .limitExceeded, entry: long)
        let deep = (0..<20).map { "d\($0)" }.joined(separator: "/")
        let other = try Sandbox()
        try other.expectRefused([.file(deep, "x")], limits: ExtractionLimits(maxPathDepth: 10), code: .limitExceeded, entry: deep)
    }

    @Test("a zip with a '..' entry is refused")
    func zipTraversal() throws {
        let box = try Sandbox("recipe.zip")
        try box.expectRefused([.file("ok.txt", "x"), .file("../escaped", "pwned")], format: .zip, code: .pathTraversal, entry: "../escaped")
    }

    @Test("a zip with an absolute entry is refused")
    func zipAbsolute() throws {
        let box = try Sandbox("recipe.zip")
        try box.expectRefused([.file("\(box.root)/escaped", "pwned")], format: .zip, code: .absolutePath, entry: "\(box.root)/escaped")
    }

    @Test("a truncated archive is reported as corrupt", arguments: [TestFilter.gzip, .xz, .zstd])
    func truncated(filter: TestFilter) throws {
        let box = try Sandbox("truncated.tar")
        let noise = randomBytes(200_000)
        try buildArchive(
            at: box.archive, filter: filter, entries: [.file("a.txt", "first"), TestEntry(path: "noise.bin", kind: .file(noise), mode: 0o644)])
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: box.archive))
        let size = try handle.seekToEnd()
        try handle.truncate(atOffset: size / 2)
        try handle.close()
        let error = box.expectRefusedArchive(code: .corrupt, entry: nil)
        #expect(error?.description.contains("corrupt") == true)
    }

    @Test("cpio, 7z and raw files are unsupported formats", arguments: [TestFormat.cpio, .sevenZip])
    func unsupportedFormats(format: TestFormat) throws {
        let box = try Sandbox("recipe.\(format)")
        let error = try box.expectRefused([.file("a.txt", "x")], format: format, code: .unsupportedFormat, entry: nil)
        #expect(error?.description.contains("not a tar or zip archive") == true)
    }

    @Test("a raw file, an empty file and a gzipped non-archive are unsupported")
    func rawFiles() throws {
        let box = try Sandbox("recipe.tgz")
        try Data(String(repeating: "just some text, not an archive\n", count: 100).utf8).write(to: URL(fileURLWithPath: box.archive))
        box.expectRefusedArchive(code: .unsupportedFormat, entry: nil)
        try Data().write(to: URL(fileURLWithPath: box.archive))
        box.expectRefusedArchive(code: .unsupportedFormat, entry: nil)
        let gzipped = try Sandbox("data.gz")
        let text = "\(gzipped.root)/text"
        try Data(String(repeating: "plain text ", count: 1000).utf8).write(to: URL(fileURLWithPath: text))
        _ = try run("/bin/gzip", ["-n", text])
        try FileManager.default.moveItem(atPath: text + ".gz", toPath: gzipped.archive)
        let error = gzipped.expectRefusedArchive(code: .unsupportedFormat, entry: nil)
        #expect(error?.description.contains("gzip") == true)
    }

    @Test("a missing archive is an I/O error and creates nothing")
    func missingArchive() throws {
        let box = try Sandbox("absent.tgz")
        let error = box.expectRefusedArchive(code: .io, entry: nil)
        #expect(error?.description.contains("cannot open") == true)
    }

    @Test("a non-empty destination is refused untouched")
    func destinationExists() throws {
        let box = try Sandbox("recipe.tar")
        try buildArchive(at: box.archive, entries: [.file("a", "x")])
        try FileManager.default.createDirectory(atPath: box.destination, withIntermediateDirectories: false)
        try Data("keep".utf8).write(to: URL(fileURLWithPath: "\(box.destination)/mine"))
        let before = box.listing()
        #expect(throws: ArchiveError.self) { try ArchiveExtractor().extract(archive: box.archive, to: box.destination) }
        do {
            _ = try ArchiveExtractor().extract(archive: box.archive, to: box.destination)
        } catch {
            #expect(error.code == .destinationExists)
        }
        #expect(box.listing() == before)
        #expect(try box.read("mine") == "keep")
    }

    @Test("no error description ever contains file content")
    func secretsStayOut() throws {
        let secret = "TOP-SECRET-\(UUID().uuidString)"
        let cases: [[TestEntry]] = [
            [.file("secret.txt", secret), .file("secret.txt", secret + "changed")],
            [.file("secret.txt", secret), .file("secret.txt", "x")],
            [.file("secret.txt", secret), .file("../secret.txt", secret)],
            [.file("secret.txt", secret), .symlink("secret.txt", to: secret)],
            [.file("secret.txt", secret), .file("secret.txt/inner", secret)],
            [.file("secret.txt", secret), TestEntry(path: "fifo", kind: .fifo, mode: 0o644)],
            [.file("secret.txt", secret), .hardlink("/etc/shadow", to: "secret.txt")],
        ]
        for entries in cases {
            let box = try Sandbox()
            try buildArchive(at: box.archive, entries: entries)
            do {
                _ = try ArchiveExtractor().extract(archive: box.archive, to: box.destination)
                Issue.record("extraction unexpectedly succeeded")
            } catch {
                #expect(!error.description.contains(secret), "\(error)")
                #expect(!error.reason.contains(secret))
            }
        }
        // Truncated inside the secret's data.
        let box = try Sandbox("truncated.tar")
        try buildArchive(at: box.archive, entries: [.file("secret.txt", String(repeating: secret, count: 400))])
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: box.archive))
        try handle.truncate(atOffset: 4096)
        try handle.close()
        let error = box.expectRefusedArchive(code: .corrupt, entry: nil)
        #expect(error?.description.contains(secret) == false)
    }
}

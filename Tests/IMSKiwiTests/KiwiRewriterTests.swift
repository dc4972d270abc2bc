import Foundation
import IMSKiwi
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Repository source rewriting")
struct KiwiRewriterTests {
    func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    func inode(_ path: String) -> (ino_t, Int) {
        var info = stat()
        _ = stat(path, &info)
        return (info.st_ino, Int(info.st_mode & 0o7777))
    }

    @Test("rewrites sources in the main file and in included files, in place, keeping the rest")
    func includedFiles() throws {
        try KiwiFixtures.requireCorpus()
        try KiwiFixtures.withTemporaryDirectory { directory in
            let recipe = try KiwiFixtures.copySample("almalinux-10", into: directory)
            chmod(recipe + "/repositories/core-release.xml", 0o640)
            let untouched = try bytes(recipe + "/AlmaLinux-OS.kiwi")
            let untouchedInode = inode(recipe + "/AlmaLinux-OS.kiwi")

            let rewrites = try KiwiSourceRewriter.rewrite(descriptionDirectory: recipe) { repository in
                repository.alias == "crb" ? nil : "http://127.0.0.1:8080/\(repository.alias ?? "none")/"
            }
            #expect(rewrites.map(\.alias) == ["extras-common", "appstream", "baseos", "epel"])
            #expect(rewrites.map(\.line) == [3, 13, 18, 3])
            #expect(rewrites.first?.file == recipe + "/repositories/core-release.xml")
            #expect(rewrites.first?.old == "https://mirrors.almalinux.org/mirrorlist/$releasever/extras-common")
            #expect(rewrites.last?.file == recipe + "/repositories/epel-minor.xml")
            #expect(rewrites.last?.old == "https://mirrors.fedoraproject.org/metalink?repo=epel-z-$releasever&arch=$basearch")

            // Files without changes are not rewritten at all.
            #expect(try bytes(recipe + "/AlmaLinux-OS.kiwi") == untouched)
            #expect(inode(recipe + "/AlmaLinux-OS.kiwi").0 == untouchedInode.0)
            // The permission bits of rewritten files are kept.
            #expect(inode(recipe + "/repositories/core-release.xml").1 == 0o640)

            // Only the path attributes differ from the original.
            let original = try String(
                contentsOfFile: KiwiFixtures.valid + "/almalinux-10/repositories/core-release.xml", encoding: .utf8)
            let edited = try String(contentsOfFile: recipe + "/repositories/core-release.xml", encoding: .utf8)
            let changedLines = zip(original.split(separator: "\n", omittingEmptySubsequences: false),
                                   edited.split(separator: "\n", omittingEmptySubsequences: false)).filter { $0 != $1 }
            #expect(changedLines.count == 3)
            #expect(changedLines.allSatisfy { $0.0.contains("<source path=") && $0.1.contains("<source path=\"http://127.0.0.1:8080/") })
            #expect(original.split(separator: "\n").count == edited.split(separator: "\n").count)

            let reloaded = try KiwiLoader.load(directory: recipe)
            #expect(reloaded.repositories.map(\.sourcePath) == [
                "http://127.0.0.1:8080/extras-common/", "https://mirrors.almalinux.org/mirrorlist/$releasever/crb",
                "http://127.0.0.1:8080/appstream/", "http://127.0.0.1:8080/baseos/", "http://127.0.0.1:8080/epel/",
            ])
            // Signing keys and other children are kept.
            #expect(reloaded.repositories[0].signingKeys.count == 1)
        }
    }

    @Test("keeps the XML declaration, encoding, comments before the root and the prolog bytes")
    func prologKept() throws {
        try KiwiFixtures.requireCorpus()
        try KiwiFixtures.withTemporaryDirectory { directory in
            let recipe = try KiwiFixtures.copySample("kiwi-bt-centos-live-disk-v9", into: directory)
            let file = recipe + "/appliance.kiwi"
            let original = try String(contentsOfFile: file, encoding: .utf8)
            let rewrites = try KiwiSourceRewriter.rewrite(descriptionDirectory: recipe) { _ in "dir:///srv/repo" }
            #expect(rewrites.count == 1)
            #expect(rewrites.first?.old == "obsrepositories:/")
            #expect(rewrites.first?.line == 55)
            let edited = try String(contentsOfFile: file, encoding: .utf8)
            let prologEnd = try #require(original.range(of: "<image "))
            #expect(edited.hasPrefix(String(original[..<prologEnd.lowerBound])))
            #expect(edited.contains("<source path=\"dir:///srv/repo\"/>"))
            #expect(edited.hasSuffix("</image>\n") == original.hasSuffix("</image>\n"))
            #expect(try KiwiLoader.load(directory: recipe).repositories.first?.sourcePath == "dir:///srv/repo")
        }
    }

    @Test("keeps a non-UTF-8 encoding")
    func latin1() throws {
        try KiwiFixtures.withTemporaryDirectory { directory in
            let xml = KiwiFixtures.description(name: "caf\u{e9}").replacingOccurrences(of: "utf-8", with: "ISO-8859-1")
            let latin1 = try #require(xml.data(using: .isoLatin1))
            try latin1.write(to: URL(fileURLWithPath: directory + "/config.xml"))
            _ = try KiwiSourceRewriter.rewrite(descriptionDirectory: directory) { _ in "https://mirror.example/\u{e9}" }
            let data = try bytes(directory + "/config.xml")
            #expect(data.starts(with: Data("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>".utf8)))
            #expect(data.contains(0xE9))
            #expect(!data.contains(0xC3))  // no UTF-8 sequences
            let reloaded = try KiwiLoader.load(directory: directory)
            #expect(reloaded.name == "caf\u{e9}")
            #expect(reloaded.repositories.first?.sourcePath == "https://mirror.example/\u{e9}")
        }
    }

    @Test("adds a source to a repository that has none; nil keeps the current one")
    func addSource() throws {
        try KiwiFixtures.withTemporaryDirectory { directory in
            try KiwiFixtures.write(
                KiwiFixtures.description(body: #"<repository alias="bare" type="rpm-md"/>"#), to: "config.xml", in: directory)
            let rewrites = try KiwiSourceRewriter.rewrite(descriptionDirectory: directory) { repository in
                repository.sourcePath == nil ? "https://added.example/" : nil
            }
            #expect(rewrites.count == 1)
            #expect(rewrites.first?.old == nil)
            #expect(rewrites.first?.line == 19)
            let reloaded = try KiwiLoader.load(directory: directory)
            #expect(reloaded.repositories.map(\.sourcePath) == [
                "https://download.opensuse.org/distribution/leap/15.6/repo/oss/", "https://added.example/",
            ])
            #expect(KiwiValidator.validate(reloaded).errors.isEmpty)
        }
    }

    @Test("special characters in the new path are escaped, not injected")
    func escaping() throws {
        try KiwiFixtures.withTemporaryDirectory { directory in
            try KiwiFixtures.write(KiwiFixtures.description(), to: "config.xml", in: directory)
            let hostile = "https://x/?a=1&b=\"2\"<image/>"
            _ = try KiwiSourceRewriter.rewrite(descriptionDirectory: directory) { _ in hostile }
            let reloaded = try KiwiLoader.load(directory: directory)
            #expect(reloaded.repositories.first?.sourcePath == hostile)
            #expect(reloaded.repositories.count == 1)
        }
    }

    @Test("a throwing transform leaves every file untouched")
    func throwingTransform() throws {
        struct Stop: Error {}
        try KiwiFixtures.requireCorpus()
        try KiwiFixtures.withTemporaryDirectory { directory in
            let recipe = try KiwiFixtures.copySample("almalinux-10", into: directory)
            let before = try bytes(recipe + "/repositories/core-release.xml")
            #expect(throws: Stop.self) {
                _ = try KiwiSourceRewriter.rewrite(descriptionDirectory: recipe) { repository in
                    if repository.alias == "epel" { throw Stop() }
                    return "http://changed/"
                }
            }
            #expect(try bytes(recipe + "/repositories/core-release.xml") == before)
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: recipe + "/repositories")
            #expect(leftovers.sorted() == ["core-release.xml", "epel-minor.xml"])
        }
    }

    @Test("a file included twice is offered once")
    func includedTwice() throws {
        try KiwiFixtures.withTemporaryDirectory { directory in
            try KiwiFixtures.write(
                KiwiFixtures.description(body: #"<include from="this://r.xml"/><include from="this://r.xml"/>"#),
                to: "config.xml", in: directory)
            try KiwiFixtures.write(
                #"<image><repository alias="shared"><source path="https://a/"/></repository></image>"#, to: "r.xml",
                in: directory)
            var offered: [String?] = []
            let rewrites = try KiwiSourceRewriter.rewrite(descriptionDirectory: directory) { repository in
                offered.append(repository.alias)
                return "https://b/"
            }
            #expect(offered == ["base", "shared"])
            #expect(rewrites.count == 2)
            let reloaded = try KiwiLoader.load(directory: directory)
            #expect(reloaded.repositories.map(\.sourcePath) == ["https://b/", "https://b/", "https://b/"])
        }
    }
}

import Testing

@testable import IMSArchive

@Suite("Entry paths and link resolution")
struct EntryPathTests {
    static func normalise(_ text: String) throws(EntryPath.Problem) -> String {
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBufferPointer { buffer throws(EntryPath.Problem) in try EntryPath.normalise(buffer).display }
    }

    @Test("normalisation drops '.', empty components and trailing slashes", arguments: [
        ("a/b", "a/b"), ("./a//b/", "a/b"), ("./", ""), (".", ""), ("a/./b/.", "a/b"), ("...", "..."), ("a/..b", "a/..b"),
    ])
    func normalises(raw: String, expected: String) throws {
        #expect(try Self.normalise(raw) == expected)
    }

    @Test("absolute paths and '..' components are problems")
    func problems() {
        #expect(throws: EntryPath.Problem.absolute) { try Self.normalise("/etc/passwd") }
        #expect(throws: EntryPath.Problem.absolute) { try Self.normalise("//x") }
        #expect(throws: EntryPath.Problem.dotDot) { try Self.normalise("..") }
        #expect(throws: EntryPath.Problem.dotDot) { try Self.normalise("a/../b") }
        #expect(throws: EntryPath.Problem.dotDot) { try Self.normalise("a/b/..") }
    }

    static func path(_ text: String) -> EntryPath {
        EntryPath(components: text.split(separator: "/").map { Array($0.utf8) })
    }

    @Test("symlink targets resolve relative to the link's directory")
    func resolution() {
        var tree = ExtractedTree()
        let link = Self.path("a/b/link")
        #expect(tree.resolve(target: Array("../c".utf8), of: link, followingSymlinks: true) == .inside)
        #expect(tree.resolve(target: Array("../../c".utf8), of: link, followingSymlinks: true) == .inside)
        #expect(tree.resolve(target: Array("../../../c".utf8), of: link, followingSymlinks: true) != .inside)
        #expect(tree.resolve(target: Array("/a".utf8), of: link, followingSymlinks: true) != .inside)
        #expect(tree.resolve(target: Array("x/../../..".utf8), of: link, followingSymlinks: true) == .inside)
        tree.insertSymlink(Self.path("a/b/up"), target: Array("../..".utf8))
        #expect(tree.resolve(target: Array("up/..".utf8), of: link, followingSymlinks: false) == .inside)
        #expect(tree.resolve(target: Array("up/..".utf8), of: link, followingSymlinks: true) != .inside)
        // A loop is not an escape: the kernel refuses to follow it.
        tree.insertSymlink(Self.path("loop"), target: Array("loop".utf8))
        #expect(tree.resolve(target: Array("loop/x".utf8), of: Self.path("l2"), followingSymlinks: true) == .inside)
    }
}

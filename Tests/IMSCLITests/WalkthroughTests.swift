import Foundation
import Testing

/// Keeps the site-phase walkthrough of docs/writing-plugins.md honest: its plugin sources (each code block after a
/// `<!-- walkthrough LANG PATH -->` marker) are written out as the guide says, and the Python, bash and C plugins pass
/// `ims plugins check` with the guide's request and a scratch root; the guide's pipeline file passes `ims pipelines
/// validate`. (The Swift plugin is a package of its own, too slow to build here; its manifest is checked.)
@Suite("The site-phase walkthrough of docs/writing-plugins.md", .timeLimit(.minutes(3)))
struct WalkthroughTests {
    static let guide = CLI.repositoryRoot + "/docs/writing-plugins.md"

    struct Block {
        var language: String
        var path: String
        var text: String
    }

    static func blocks() throws -> [Block] {
        let text = try String(contentsOfFile: guide, encoding: .utf8)
        let pattern = try NSRegularExpression(pattern: #"<!-- walkthrough (\w+) (\S+) -->\n```\w*\n(.*?)\n```"#, options: [.dotMatchesLineSeparators])
        let range = NSRange(text.startIndex..., in: text)
        return pattern.matches(in: text, range: range).compactMap { match in
            guard let language = Range(match.range(at: 1), in: text), let path = Range(match.range(at: 2), in: text),
                let body = Range(match.range(at: 3), in: text)
            else { return nil }
            return Block(language: String(text[language]), path: String(text[path]), text: String(text[body]) + "\n")
        }
    }

    /// The lines of the guide's `cat > FILE <<'YAML'` here-document for `file`.
    static func hereDocument(_ file: String) throws -> String {
        let text = try String(contentsOfFile: guide, encoding: .utf8)
        guard let start = text.range(of: "cat > \(file) <<'YAML'\n"), let end = text.range(of: "\nYAML\n", range: start.upperBound..<text.endIndex) else {
            throw CocoaError(.fileReadCorruptFile)
        }
        return String(text[start.upperBound..<end.lowerBound]) + "\n"
    }

    /// Writes the walkthrough's files under a new directory, as steps 2 of the guide do, and returns it.
    static func writeOut() throws -> String {
        let root = NSTemporaryDirectory() + "ims-walkthrough-" + UUID().uuidString.prefix(8)
        for block in try blocks() {
            let path = root + "/" + block.path
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try block.text.write(toFile: path, atomically: true, encoding: .utf8)
            if path.hasSuffix("/bin/stamp-motd") {
                try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
            }
        }
        let sdk = CLI.repositoryRoot + "/sdk"
        try FileManager.default.createDirectory(atPath: root + "/plugins/motd-python/lib", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: sdk + "/python/ims_plugin.py", toPath: root + "/plugins/motd-python/lib/ims_plugin.py")
        try FileManager.default.createDirectory(atPath: root + "/plugins/motd-bash/lib", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: sdk + "/bash/ims-plugin.sh", toPath: root + "/plugins/motd-bash/lib/ims-plugin.sh")
        try FileManager.default.createDirectory(atPath: root + "/plugins/motd-c/bin", withIntermediateDirectories: true)
        let compile = try CLI.runTool("/bin/sh", [
            "-c", "cc -O2 -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE -I \(sdk)/c -o \(root)/plugins/motd-c/bin/stamp-motd "
                + "\(root)/plugins/motd-c/src/main.c \(sdk)/c/ims_plugin.c $(pkg-config --cflags --libs json-c) -lpthread",
        ])
        #expect(compile.status == 0, "the guide's C plugin does not compile: \(compile.stderr)")
        return root
    }

    @Test("the guide has every file of every language")
    func everyFile() throws {
        let paths = Set(try Self.blocks().map { "\($0.language) \($0.path)" })
        #expect(paths == [
            "python plugins/motd-python/plugin.json", "python plugins/motd-python/bin/stamp-motd",
            "bash plugins/motd-bash/plugin.json", "bash plugins/motd-bash/bin/stamp-motd",
            "c plugins/motd-c/plugin.json", "c plugins/motd-c/src/main.c",
            "swift motd-swift/Package.swift", "swift motd-swift/Sources/stamp-motd/StampMotd.swift", "swift plugins/motd-swift/plugin.json",
        ])
    }

    @Test("the guide's Python, bash and C plugins pass ims plugins check and write /etc/motd", arguments: ["python", "bash", "c"])
    func check(language: String) async throws {
        let root = try Self.writeOut()
        let scratch = root + "/scratch-root"
        try FileManager.default.createDirectory(atPath: scratch + "/etc", withIntermediateDirectories: true)
        try #"{"config": {"text": "Built by ims at Example Site"}}"#.write(toFile: root + "/req.json", atomically: true, encoding: .utf8)
        let result = try await CLI.ims([
            "plugins", "check", root + "/plugins/motd-\(language)", "--request", root + "/req.json", "--input", "rootfs=\(scratch)", "--json",
        ])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let cases = try #require(try CLI.json(result.stdout)["cases"] as? [[String: Any]])
        let verdicts = Dictionary(cases.map { ($0["name"] as? String ?? "", $0["verdict"] as? String ?? "") }, uniquingKeysWith: { a, _ in a })
        for name in ["manifest", "describe_agrees", "hello_first", "one_terminal_message", "bad_request", "version_mismatch", "cleanup_idempotent", "forward_compatible"] {
            #expect(verdicts[name] == "passed", "\(name): \(result.stdout)")
        }
        #expect(try String(contentsOfFile: scratch + "/etc/motd", encoding: .utf8) == "Built by ims at Example Site\n")
    }

    @Test("the guide's pipeline file validates with the guide's plugin, and the Swift manifest is valid")
    func pipeline() async throws {
        let root = try Self.writeOut()
        try FileManager.default.createDirectory(atPath: root + "/site/pipelines", withIntermediateDirectories: true)
        try Self.hereDocument("site/pipelines/create.yaml").write(toFile: root + "/site/pipelines/create.yaml", atomically: true, encoding: .utf8)
        // All four languages are in plugins/: with the Swift one unbuilt (refused), python, bash and c offer the phase.
        let show = try await CLI.ims(["pipelines", "show", "--config-dir", root + "/site", "--plugin-path", root + "/plugins", "--json"])
        #expect(show.status == 0, "\(show.stderr)")
        let steps = try #require(try CLI.json(show.stdout)["steps"] as? [[String: Any]])
        let motd = try #require(steps.first { $0["name"] as? String == "motd" })
        #expect(motd["phase"] as? String == "stamp-motd")
        #expect(motd["config"] as? [String: String] == ["text": "Built by ims at Example Site"])
        #expect(Set(motd["candidates"] as? [String] ?? []) == ["org.site.motd-python", "org.site.motd-bash", "org.site.motd-c"])

        // One language at a time, as the guide says: no error.
        try FileManager.default.removeItem(atPath: root + "/plugins/motd-bash")
        try FileManager.default.removeItem(atPath: root + "/plugins/motd-c")
        let one = try await CLI.ims(["pipelines", "validate", "--config-dir", root + "/site", "--plugin-path", root + "/plugins", "--json"])
        #expect(one.status == 0, "\(one.stdout)")
        #expect(try CLI.json(one.stdout)["errors"] as? Int == 0)

        let manifest = try await CLI.ims(["plugins", "list", "--plugin-path", root + "/plugins", "--json"])
        let plugins = try #require(try CLI.json(manifest.stdout)["plugins"] as? [[String: Any]])
        let swift = try #require(plugins.first { $0["id"] as? String == "org.site.motd-swift" })
        // Its binary is not built here: refused for that reason only, not for its manifest.
        #expect((swift["reason"] as? String)?.contains("entrypoint") == true, "\(swift)")
    }
}

import Foundation
import Testing

/// protocol/README.md shows what the host prints; these run the host and hold the text to it.
@Suite("protocol/README.md agrees with what ims emits", .timeLimit(.minutes(2)))
struct ProtocolTextTests {
    static let readme = CLI.repositoryRoot + "/protocol/README.md"
    static let fixtures = CLI.repositoryRoot + "/Tests/Fixtures/plugins"

    /// The text of section `number` (e.g. "5.1"), up to the next heading.
    static func section(_ number: String) throws -> String {
        let text = try String(contentsOfFile: readme, encoding: .utf8)
        let start = try #require(text.range(of: "\n### \(number) "))
        let rest = text[start.upperBound...]
        let end = rest.range(of: "\n#")?.lowerBound ?? rest.endIndex
        return String(rest[..<end])
    }

    static func matches(_ pattern: String, _ text: String) throws -> Bool {
        try NSRegularExpression(pattern: pattern, options: [.anchorsMatchLines]).firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    @Test("§5.1: a plugin with no shared protocol major is refused with the example's line, code plugin.unavailable and exit 69")
    func refusal() async throws {
        let request = NSTemporaryDirectory() + "ims-protocol-text-" + UUID().uuidString.prefix(8) + ".json"
        try "{}".write(toFile: request, atomically: true, encoding: .utf8)
        let plugin = Self.fixtures + "/wrong-version-manifest"
        let result = try await CLI.ims(["plugins", "run", plugin, "--phase", "test", "--request", request, "--json"])
        #expect(result.status == 69)
        let expected = "error: plugin 'org.ims.test.wrong-version-manifest' at \(plugin) was refused: it speaks protocol 7; this ims speaks protocol 1\n"
        #expect(result.stderr == expected)
        let report = try CLI.json(result.stdout)
        #expect(report["code"] as? String == "plugin.unavailable")

        // The README shows the same line (another plugin, another directory), the same code and exit code, and no
        // host-made ims.protocol.unsupported_version.
        let shape = #"^  error: plugin '[a-z0-9.-]+' at /\S+ was refused: it speaks protocol [0-9, ]+; this ims speaks protocol [0-9, ]+$"#
        #expect(try Self.matches(#"^error: plugin '[a-z0-9.-]+' at /\S+ was refused: it speaks protocol [0-9, ]+; this ims speaks protocol [0-9, ]+$"#, result.stderr))
        let section = try Self.section("5.1")
        #expect(try Self.matches(shape, section), "§5.1 does not show the refusal line ims prints")
        #expect(section.contains("\"code\": \"plugin.unavailable\"") && section.contains("69"))
        #expect(!section.contains("[ims.protocol.unsupported_version]"))

        let list = try await CLI.ims(["plugins", "list", "--plugin-path", Self.fixtures])
        let listed = try #require(list.stdout.split(separator: "\n").firstIndex { $0.hasPrefix("org.ims.test.wrong-version-manifest ") })
        let lines = list.stdout.split(separator: "\n").map(String.init)
        #expect(try Self.matches(#"^\S+ \S+  phases: \S+  \[refused\]  /\S+$"#, lines[listed]))
        #expect(lines[listed + 1] == "    it speaks protocol 7; this ims speaks protocol 1")
        #expect(try Self.matches(#"^  \S+ \S+  phases: \S+  \[refused\]  /\S+\n      it speaks protocol [0-9, ]+; this ims speaks protocol [0-9, ]+$"#, section))
    }

    @Test("§3.4: a stray line is a warning whose message quotes it, with details.line and a hint, as the text says")
    func strayLine() async throws {
        let request = NSTemporaryDirectory() + "ims-protocol-text-" + UUID().uuidString.prefix(8) + ".json"
        try "{}".write(toFile: request, atomically: true, encoding: .utf8)
        let result = try await CLI.ims(["plugins", "run", Self.fixtures + "/stray-stdout", "--phase", "test", "--request", request, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let events = try result.stdout.split(separator: "\n").map { try CLI.json(String($0)) }
        let warning = try #require(events.first { $0["event"] as? String == "warning" })
        let data = try #require(warning["data"] as? [String: Any])
        #expect(data["code"] as? String == "ims.protocol.stray_output")
        #expect((data["message"] as? String)?.contains("\"this is not protocol\"") == true)
        #expect((data["details"] as? [String: Any])?["line"] as? String == "this is not protocol")
        #expect((data["hint"] as? String)?.contains("stderr") == true)
        let section = try Self.section("3.4")
        #expect(section.contains("`ims.protocol.stray_output`") && section.contains("first 200 characters")
            && section.contains("`details.line`") && section.contains("`hint`"))
    }
}

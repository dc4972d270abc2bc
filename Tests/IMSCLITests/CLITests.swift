import Foundation
import Testing

/// Runs the built `ims` binary end to end.
enum CLI {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static var binary: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: exe).deletingLastPathComponent()
        if directory.path.hasSuffix(".xctest") { directory = directory.deletingLastPathComponent() }
        return directory.appendingPathComponent("ims").path
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs ims (without the caller's IMS_PLUGIN_PATH), with output going to files.
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        var env = ProcessInfo.processInfo.environment
        env["IMS_PLUGIN_PATH"] = nil
        for (key, value) in environment { env[key] = value }
        return try runTool(binary, arguments, environment: env)
    }

    /// Runs any executable with output going to files, so nothing can block on a full pipe.
    static func runTool(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> Result {
        let scratch = NSTemporaryDirectory() + "ims-cli-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        FileManager.default.createFile(atPath: scratch + "/out", contents: nil)
        FileManager.default.createFile(atPath: scratch + "/err", contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch + "/out"))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch + "/err"))
        try process.run()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus,
            stdout: (try? String(contentsOfFile: scratch + "/out", encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: scratch + "/err", encoding: .utf8)) ?? "")
    }

    static func json(_ text: String) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try #require(object as? [String: Any])
    }
}

@Suite("ims CLI", .serialized, .timeLimit(.minutes(2)))
struct CLITests {
    @Test("--help teaches the search path and lists the plugins command")
    func help() throws {
        let result = try CLI.run(["--help"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("plugins") && result.stdout.contains("IMS_PLUGIN_PATH"))
        let sub = try CLI.run(["plugins", "run", "--help"])
        #expect(sub.stdout.contains("--request") && sub.stdout.contains("Example"))
    }

    @Test("plugins list --json shows the bundled plugins as ok and a refused one with its reason")
    func list() throws {
        let result = try CLI.run(["plugins", "list", "--json", "--plugin-path", CLI.repositoryRoot + "/Tests/Fixtures/plugins"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try CLI.json(result.stdout)
        let plugins = try #require(object["plugins"] as? [[String: Any]])
        let byID = Dictionary(plugins.compactMap { p in (p["id"] as? String).map { ($0, p) } }, uniquingKeysWith: { a, _ in a })
        for id in ["org.ims.example.swift", "org.ims.example.c", "org.ims.example.bash", "org.ims.example.python"] {
            #expect(byID[id]?["status"] as? String == "ok", "\(id)")
        }
        let refused = try #require(byID["org.ims.test.wrong-version-manifest"])
        #expect(refused["status"] as? String == "refused")
        #expect((refused["reason"] as? String)?.contains("speaks protocol 7") == true)
        let search = try #require(object["search_path"] as? [[String: Any]])
        #expect(search.first?["origin"] as? String == "explicit")
    }

    @Test("plugins check passes a good plugin and fails a broken one, in bounded time")
    func check() throws {
        let good = try CLI.run(["plugins", "check", "org.ims.example.python"])
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        #expect(good.stdout.contains(" passed, 0 failed"))
        let started = Date()
        let bad = try CLI.run(["plugins", "check", CLI.repositoryRoot + "/Tests/Fixtures/plugins/hang-ignore-term", "--json", "--timeout", "2"])
        #expect(Date().timeIntervalSince(started) < 60)
        #expect(bad.status == 1)
        let report = try CLI.json(bad.stdout)
        #expect(report["passed"] as? Bool == false)
        let cases = try #require(report["cases"] as? [[String: Any]])
        #expect(cases.contains { $0["name"] as? String == "one_terminal_message" && $0["passed"] as? Bool == false })
    }

    @Test("plugins check reports a describe that disagrees with the manifest")
    func describeMismatch() throws {
        let result = try CLI.run(["plugins", "check", CLI.repositoryRoot + "/Tests/Fixtures/plugins/describe-mismatch"])
        #expect(result.status == 1)
        #expect(result.stdout.contains("FAIL  describe_agrees"))
    }

    @Test("plugins run --json streams NDJSON events ending with the outcome")
    func runJSON() throws {
        let request = NSTemporaryDirectory() + "req-\(UUID().uuidString.prefix(6)).json"
        try #"{"config": {"greeting": "from the CLI test"}}"#.write(toFile: request, atomically: true, encoding: .utf8)
        let result = try CLI.run(["plugins", "run", "org.ims.example.bash", "--phase", "hello", "--request", request, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let events = try lines.map { try CLI.json($0) }
        #expect(events.first?["event"] as? String == "started")
        #expect(events.contains { $0["event"] as? String == "hello" })
        #expect(events.contains { $0["event"] as? String == "progress" })
        let last = try #require(events.last)
        #expect(last["event"] as? String == "finished")
        let data = try #require(last["data"] as? [String: Any])
        #expect(data["status"] as? String == "succeeded")
        for event in events { #expect(event["plugin_id"] as? String == "org.ims.example.bash") }
    }

    @Test("a failing phase exits 1 and prints the structured error")
    func runFailure() throws {
        let request = NSTemporaryDirectory() + "req-\(UUID().uuidString.prefix(6)).json"
        try "{}".write(toFile: request, atomically: true, encoding: .utf8)
        let result = try CLI.run(["plugins", "run", CLI.repositoryRoot + "/Tests/Fixtures/plugins/crash", "--phase", "test", "--request", request])
        #expect(result.status == 1)
        #expect(result.stdout.contains("ims.plugin_crashed"))
    }

    @Test("unknown plugins and bad request files get clear errors and distinct exit codes")
    func badInput() throws {
        let missing = try CLI.run(["plugins", "describe", "org.nowhere.nothing"])
        #expect(missing.status == 69)
        #expect(missing.stderr.contains("no plugin 'org.nowhere.nothing'"))
        let request = NSTemporaryDirectory() + "bad-\(UUID().uuidString.prefix(6)).json"
        try "[not json".write(toFile: request, atomically: true, encoding: .utf8)
        let bad = try CLI.run(["plugins", "run", "org.ims.example.c", "--phase", "hello", "--request", request])
        #expect(bad.status == 65)
        #expect(bad.stderr.contains(request))
    }

    @Test("plugins describe shows the manifest and the describe answer")
    func describe() throws {
        let result = try CLI.run(["plugins", "describe", "org.ims.example.c", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try CLI.json(result.stdout)
        #expect((object["describe"] as? [String: Any]) != nil)
        #expect(object["protocol_version"] as? Int == 1)
    }
}

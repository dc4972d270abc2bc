import Foundation
import IMSCommands
import Testing

/// Runs ims: in this process (``ims(_:environment:)``), or the built binary end to end (``run(_:environment:)``).
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

    /// Runs ims in this process through the same edge as the binary (`CommandLineEntry.run`), with a context whose
    /// environment is this process's without IMS_PLUGIN_PATH plus `environment`, and whose output goes to files.
    static func ims(_ arguments: [String], environment: [String: String] = [:], executablePath: String? = nil) async throws -> Result {
        var env = ProcessInfo.processInfo.environment
        env["IMS_PLUGIN_PATH"] = nil
        for (key, value) in environment { env[key] = value }
        let scratch = NSTemporaryDirectory() + "ims-cli-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        FileManager.default.createFile(atPath: scratch + "/out", contents: nil)
        FileManager.default.createFile(atPath: scratch + "/err", contents: nil)
        let stdout = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch + "/out"))
        let stderr = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch + "/err"))
        let context = CommandContext(
            stdout: OutputSink(fileHandle: stdout), stderr: OutputSink(fileHandle: stderr), stdin: .nullDevice,
            environment: env, currentDirectory: FileManager.default.currentDirectoryPath, executablePath: executablePath ?? binary)
        let status = await CommandLineEntry.run(arguments, context: context)
        try stdout.close()
        try stderr.close()
        return Result(
            status: status,
            stdout: (try? String(contentsOfFile: scratch + "/out", encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: scratch + "/err", encoding: .utf8)) ?? "")
    }

    /// Runs the built ims binary (without the caller's IMS_PLUGIN_PATH), with output going to files. It waits without
    /// holding a thread, so in-process tests keep running meanwhile.
    static func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> Result {
        var env = ProcessInfo.processInfo.environment
        env["IMS_PLUGIN_PATH"] = nil
        for (key, value) in environment { env[key] = value }
        let launch = try Launch(binary, arguments, environment: env)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            launch.process.terminationHandler = { _ in continuation.resume() }
            do {
                try launch.process.run()
            } catch {
                launch.process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        return launch.result()
    }

    /// Runs any executable with output going to files, so nothing can block on a full pipe.
    static func runTool(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> Result {
        let launch = try Launch(executable, arguments, environment: environment)
        try launch.process.run()
        launch.process.waitUntilExit()
        return launch.result()
    }

    /// A process set up with stdin from /dev/null and stdout and stderr going to files in a scratch directory.
    final class Launch {
        let process = Process()
        private let scratch = NSTemporaryDirectory() + "ims-cli-" + UUID().uuidString.prefix(8)

        init(_ executable: String, _ arguments: [String], environment: [String: String]?) throws {
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: scratch + "/out", contents: nil)
            FileManager.default.createFile(atPath: scratch + "/err", contents: nil)
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            if let environment { process.environment = environment }
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch + "/out"))
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch + "/err"))
        }

        deinit { try? FileManager.default.removeItem(atPath: scratch) }

        func result() -> Result {
            Result(
                status: process.terminationStatus,
                stdout: (try? String(contentsOfFile: scratch + "/out", encoding: .utf8)) ?? "",
                stderr: (try? String(contentsOfFile: scratch + "/err", encoding: .utf8)) ?? "")
        }
    }

    static func json(_ text: String) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try #require(object as? [String: Any])
    }
}

@Suite("ims CLI", .timeLimit(.minutes(2)))
struct CLITests {
    @Test("plugins describe says whether describe agrees with plugin.json, and exits 1 with the differences when not")
    func describeAgreement() async throws {
        let fixtures = CLI.repositoryRoot + "/Tests/Fixtures/plugins"
        let good = try await CLI.ims(["plugins", "describe", fixtures + "/conf-ok", "--json"])
        #expect(good.status == 0, "\(good.stderr)")
        #expect(try CLI.json(good.stdout)["agrees"] as? Bool == true)
        let drifted = try await CLI.ims(["plugins", "describe", fixtures + "/version-drift", "--json"])
        #expect(drifted.status == 1)
        let report = try CLI.json(drifted.stdout)
        #expect(report["agrees"] as? Bool == false)
        #expect((report["differences"] as? [String])?.contains("version '1.0.0' differs from the manifest's '2.0.0'") == true, "\(drifted.stdout)")
        let text = try await CLI.ims(["plugins", "describe", fixtures + "/version-drift"])
        #expect(text.stdout.contains("describe DISAGREES with plugin.json"))
    }

    @Test("--help teaches the search path and lists the plugins command")
    func help() async throws {
        let result = try await CLI.ims(["--help"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("plugins") && result.stdout.contains("IMS_PLUGIN_PATH"))
        let sub = try await CLI.ims(["plugins", "run", "--help"])
        #expect(sub.stdout.contains("--request") && sub.stdout.contains("Example"))
    }

    @Test("plugins list --json shows the bundled plugins as ok and a refused one with its reason")
    func list() async throws {
        let result = try await CLI.ims(["plugins", "list", "--json", "--plugin-path", CLI.repositoryRoot + "/Tests/Fixtures/plugins"])
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
    func check() async throws {
        let good = try await CLI.ims(["plugins", "check", "org.ims.example.python"])
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        #expect(good.stdout.contains(" passed, 0 failed"))
        let started = Date()
        let bad = try await CLI.ims(["plugins", "check", CLI.repositoryRoot + "/Tests/Fixtures/plugins/hang-ignore-term", "--json", "--timeout", "2"])
        #expect(Date().timeIntervalSince(started) < 60)
        #expect(bad.status == 1)
        let report = try CLI.json(bad.stdout)
        #expect(report["passed"] as? Bool == false)
        let cases = try #require(report["cases"] as? [[String: Any]])
        #expect(cases.contains { $0["name"] as? String == "one_terminal_message" && $0["passed"] as? Bool == false })
    }

    @Test("plugins check reports a describe that disagrees with the manifest")
    func describeMismatch() async throws {
        let result = try await CLI.ims(["plugins", "check", CLI.repositoryRoot + "/Tests/Fixtures/plugins/describe-mismatch"])
        #expect(result.status == 1)
        #expect(result.stdout.contains("FAIL  describe_agrees"))
    }

    @Test("plugins run --json streams NDJSON events ending with the outcome")
    func runJSON() async throws {
        let request = NSTemporaryDirectory() + "req-\(UUID().uuidString.prefix(6)).json"
        try #"{"config": {"greeting": "from the CLI test"}}"#.write(toFile: request, atomically: true, encoding: .utf8)
        let result = try await CLI.ims(["plugins", "run", "org.ims.example.bash", "--phase", "hello", "--request", request, "--json"])
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
    func runFailure() async throws {
        let request = NSTemporaryDirectory() + "req-\(UUID().uuidString.prefix(6)).json"
        try "{}".write(toFile: request, atomically: true, encoding: .utf8)
        let result = try await CLI.ims(["plugins", "run", CLI.repositoryRoot + "/Tests/Fixtures/plugins/crash", "--phase", "test", "--request", request])
        #expect(result.status == 1)
        #expect(result.stdout.contains("ims.plugin_crashed"))
    }

    @Test("unknown plugins and bad request files get clear errors and distinct exit codes")
    func badInput() async throws {
        let missing = try await CLI.ims(["plugins", "describe", "org.nowhere.nothing"])
        #expect(missing.status == 69)
        #expect(missing.stderr.contains("no plugin 'org.nowhere.nothing'"))
        let request = NSTemporaryDirectory() + "bad-\(UUID().uuidString.prefix(6)).json"
        try "[not json".write(toFile: request, atomically: true, encoding: .utf8)
        let bad = try await CLI.ims(["plugins", "run", "org.ims.example.c", "--phase", "hello", "--request", request])
        #expect(bad.status == 65)
        #expect(bad.stderr.contains(request))
    }

    @Test("plugins describe shows the manifest and the describe answer")
    func describe() async throws {
        let result = try await CLI.ims(["plugins", "describe", "org.ims.example.c", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try CLI.json(result.stdout)
        #expect((object["describe"] as? [String: Any]) != nil)
        #expect(object["protocol_version"] as? Int == 1)
    }
}

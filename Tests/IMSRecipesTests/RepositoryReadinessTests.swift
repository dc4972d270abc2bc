import Foundation
import IMSRecipes
import Testing

/// A real HTTPS server on 127.0.0.1 with a throwaway CA (Tests/Support).
final class TestHTTPSServer: @unchecked Sendable {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    let root: String
    let certificates: String
    let port: Int
    private let process: Process
    private let stdin: Pipe

    init(tls: Bool = true) throws {
        root = NSTemporaryDirectory() + "ims-https-" + UUID().uuidString.prefix(8)
        certificates = NSTemporaryDirectory() + "ims-test-ca"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let ca = Process()
        ca.executableURL = URL(fileURLWithPath: Self.repositoryRoot + "/Tests/Support/make-test-ca")
        ca.arguments = [certificates]
        try ca.run()
        ca.waitUntilExit()
        let portFile = root + ".port"
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        var arguments = [Self.repositoryRoot + "/Tests/Support/https-server.py", root, "--port-file", portFile]
        if tls { arguments += ["--cert", certificates + "/server.pem", "--key", certificates + "/server.key"] }
        process.arguments = arguments
        stdin = Pipe()
        process.standardInput = stdin
        process.standardError = FileHandle.nullDevice
        try process.run()
        var found: Int?
        for _ in 0..<200 {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8), let value = Int(text) {
                found = value
                break
            }
            usleep(25_000)
        }
        guard let found else { throw CocoaError(.fileReadNoSuchFile) }
        port = found
    }

    var caBundle: String { certificates + "/ca.pem" }
    func url(_ path: String) -> String { "https://127.0.0.1:\(port)/\(path)" }

    func addRepository(_ name: String) throws {
        try FileManager.default.createDirectory(atPath: root + "/" + name + "/repodata", withIntermediateDirectories: true)
        try "<repomd/>".write(toFile: root + "/" + name + "/repodata/repomd.xml", atomically: true, encoding: .utf8)
    }

    deinit {
        try? stdin.fileHandleForWriting.close()
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: root)
    }
}

@Suite("Waiting for repositories", .serialized, .timeLimit(.minutes(1)))
struct RepositoryReadinessTests {
    let fast = RepositoryReadiness(timeout: .seconds(2), pollInterval: .milliseconds(200), requestTimeout: .seconds(2))

    @Test("an https rpm-md repository answers when the site CA is trusted")
    func ready() async throws {
        let server = try TestHTTPSServer()
        try server.addRepository("sles")
        var readiness = fast
        readiness.caBundlePath = server.caBundle
        let report = try await readiness.wait(for: [RepositoryProbe(alias: "sles", source: server.url("sles/"), kind: .rpmMD)])
        #expect(report.ready)
        #expect(report.repositories.first?.url == server.url("sles/repodata/repomd.xml"))
    }

    @Test("without the CA the report names the repository and the TLS failure")
    func untrusted() async throws {
        let server = try TestHTTPSServer()
        try server.addRepository("sles")
        let report = try await fast.wait(for: [RepositoryProbe(alias: "sles", source: server.url("sles/"), kind: .rpmMD)])
        #expect(!report.ready)
        let reason = try #require(report.repositories.first?.reason)
        #expect(reason.contains("TLS") && reason.contains("--ca-bundle"), "\(reason)")
        #expect(report.repositories.first?.alias == "sles")
    }

    @Test("a missing repository is reported with the HTTP status after the timeout")
    func missing() async throws {
        let server = try TestHTTPSServer()
        try server.addRepository("present")
        var readiness = RepositoryReadiness(timeout: .seconds(5), pollInterval: .milliseconds(200), requestTimeout: .seconds(2))
        readiness.caBundlePath = server.caBundle
        let started = ContinuousClock.now
        let report = try await readiness.wait(for: [
            RepositoryProbe(alias: "present", source: server.url("present"), kind: .rpmMD),
            RepositoryProbe(alias: "absent", source: server.url("absent"), kind: .rpmMD),
        ])
        #expect(!report.ready)
        #expect(report.repositories.map(\.ready) == [true, false])
        #expect(report.repositories[1].reason?.contains("404") == true)
        #expect(report.repositories[1].attempts >= 1)
        #expect(started.duration(to: .now) < .seconds(15))
    }

    @Test("a repository that is down is reported as refused")
    func down() async throws {
        let report = try await fast.wait(for: [RepositoryProbe(alias: "down", source: "https://127.0.0.1:9/repo", kind: .rpmMD)])
        #expect(!report.ready)
        #expect(report.repositories.first?.reason != nil)
    }

    @Test("a recipe with no http(s) repositories passes at once")
    func noHTTP() async throws {
        let report = try await fast.wait(for: [RepositoryProbe(alias: "local", source: "dir:///srv/repo", kind: .rpmMD)])
        #expect(report.ready)
        #expect(report.skipped == ["local"])
    }
}

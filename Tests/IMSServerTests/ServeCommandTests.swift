import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

/// `ims serve` as a process: refusing unsafe addresses, and stopping gracefully on SIGTERM.
@Suite("ims serve", .timeLimit(.minutes(2)))
struct ServeCommandTests {
    /// Runs `ims serve ARGUMENTS` to its end (it must refuse to start).
    static func refused(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let root = NSTemporaryDirectory() + "ims-serve-refused-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: root + "/err", contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestServer.binary)
        process.arguments = ["serve", "--data-dir", root + "/data", "--config-dir", root + "/site"] + arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: root + "/err"))
        try process.run()
        process.waitUntilExit()
        return (process.terminationStatus, (try? String(contentsOfFile: root + "/err", encoding: .utf8)) ?? "")
    }

    @Test("a non-loopback --listen without auth is refused; malformed addresses too")
    func refusesNetwork() throws {
        let network = try Self.refused(["--listen", "0.0.0.0:0"])
        #expect(network.status == 64 && network.stderr.contains("--insecure-no-auth"), "\(network)")
        let malformed = try Self.refused(["--listen", "nowhere"])
        #expect(malformed.status == 64 && malformed.stderr.contains("ADDRESS:PORT"), "\(malformed)")
    }

    @Test("--insecure-no-auth serves a non-loopback address")
    func insecureNoAuth() async throws {
        let server = try await TestServer(arguments: ["--listen", "0.0.0.0:0", "--insecure-no-auth"])
        #expect(try await server.get("/healthz/live").status == 200)
        #expect(await server.stop() == 0)
    }

    @Test("SIGTERM stops the server cleanly, with access logs on stderr")
    func gracefulStop() async throws {
        let server = try await TestServer()
        #expect(try await server.get("/v3/images").status == 200)
        #expect(await server.stop() == 0)
        #expect(server.stderr.contains("GET /v3/images 200"), "\(server.stderr)")
    }

    @Test("SIGTERM lets a request in flight finish before the server exits")
    func inFlightRequestFinishes() async throws {
        let server = try await TestServer()
        let bytes = Array(#"{"name": "late", "public_key": "\#(TestServer.publicKey)"}"#.utf8)
        let (chunks, sender) = AsyncStream<ByteBuffer>.makeStream()
        var request = HTTPClientRequest(url: server.baseURL + "/v3/public-keys")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .stream(chunks, length: .known(Int64(bytes.count)))
        let pending = Task { try await HTTPClient.shared.execute(request, timeout: .seconds(60)) }
        // Half the body, then SIGTERM while the server waits for the rest.
        sender.yield(ByteBuffer(bytes: bytes.prefix(10)))
        try await Task.sleep(for: .milliseconds(500))
        let stopping = Task { await server.stop() }
        try await Task.sleep(for: .milliseconds(300))
        sender.yield(ByteBuffer(bytes: bytes.dropFirst(10)))
        sender.finish()
        let response = try await pending.value
        #expect(response.status.code == 201)
        #expect(await stopping.value == 0)
    }
}

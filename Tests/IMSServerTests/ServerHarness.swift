import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// An `ims serve` process on an ephemeral loopback port, with its own data and site directories; the site's create
/// pipeline uses the fake builder fixture, so create jobs finish in seconds.
final class TestServer: @unchecked Sendable {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let fixtures = repositoryRoot + "/Tests/Fixtures/engine-plugins"

    /// The built `ims` beside the test bundle.
    static var binary: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: exe).deletingLastPathComponent()
        if directory.path.hasSuffix(".xctest") { directory = directory.deletingLastPathComponent() }
        return directory.appendingPathComponent("ims").path
    }

    let root: String
    let data: String
    let site: String
    let process = Process()
    private(set) var port = 0
    /// `https` when the site settings configure TLS (read from the server's "listening on" line).
    private(set) var scheme = "http"
    /// The address the server listens on (port chosen by the server).
    let listenHost: String
    var baseURL: String { "\(scheme)://\(listenHost):\(port)" }
    /// Sent as `Authorization` with every request that does not set its own (servers with `server.auth`).
    var authorization: String?
    /// The client requests go through (a TLS test's client trusts its own certificate).
    var client: HTTPClient = .shared
    var stdoutPath: String { root + "/serve.out" }
    var stderrPath: String { root + "/serve.err" }

    /// Starts the server and waits until it listens.
    ///
    /// - Parameters:
    ///   - settings: the site's ims.yaml.
    ///   - arguments: extra arguments of `ims serve`.
    ///   - builderConfig: the fake builder's config in the create pipeline, e.g. `{sleep_seconds: 5}`.
    ///   - root: an earlier server's directory, to start again on its data.
    init(
        settings: String = "", arguments: [String] = [], builderConfig: String? = nil, root existing: String? = nil,
        listenHost: String = "127.0.0.1", realPipeline: Bool = false
    ) async throws {
        self.listenHost = listenHost
        root = existing ?? NSTemporaryDirectory() + "ims-serve-" + UUID().uuidString.prefix(8)
        data = root + "/data"
        site = root + "/site"
        try FileManager.default.createDirectory(atPath: site + "/pipelines", withIntermediateDirectories: true)
        let config = builderConfig.map { ", config: \($0)" } ?? ""
        if !realPipeline {
            try "extends: create\noverride:\n  build-root: {plugin: org.ims.test.fake-builder\(config)}\n"
                .write(toFile: site + "/pipelines/create.yaml", atomically: true, encoding: .utf8)
        }
        if !settings.isEmpty { try settings.write(toFile: site + "/ims.yaml", atomically: true, encoding: .utf8) }
        try await start(arguments: arguments)
    }

    private func start(arguments: [String]) async throws {
        FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        FileManager.default.createFile(atPath: stderrPath, contents: nil)
        var environment = ProcessInfo.processInfo.environment
        environment["IMS_PLUGIN_PATH"] = nil
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["serve", "--listen", "\(listenHost):0", "--data-dir", data, "--config-dir", site, "--plugin-path", Self.fixtures] + arguments
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let output = (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? ""
            if let range = output.range(of: "listening on "), let line = output[range.upperBound...].split(separator: "\n").first,
               let separator = line.range(of: "://"), let colon = line.lastIndex(of: ":"), let port = Int(line[line.index(after: colon)...]) {
                self.scheme = String(line[..<separator.lowerBound])
                self.port = port
                return
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ServerStartFailure(stderr: (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "")
    }

    struct ServerStartFailure: Error, CustomStringConvertible {
        var stderr: String
        var description: String { "ims serve did not start: \(stderr)" }
    }

    /// SIGTERM without waiting (for `defer`: the server stops on its own, even if the test process ends first).
    func terminate() {
        if process.isRunning { process.terminate() }
    }

    /// SIGTERM, then waits for the process; returns its exit status.
    @discardableResult
    func stop() async -> Int32 {
        if process.isRunning { process.terminate() }
        for _ in 0..<400 where process.isRunning { try? await Task.sleep(for: .milliseconds(25)) }
        return process.isRunning ? -1 : process.terminationStatus
    }

    /// SIGKILL: the server gets no chance to clean up (its job runners are separate processes and go on).
    func kill() async {
        _ = Foundation.kill(process.processIdentifier, SIGKILL)
        for _ in 0..<400 where process.isRunning { try? await Task.sleep(for: .milliseconds(25)) }
    }

    deinit {
        if process.isRunning { process.terminate() }
    }

    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    // MARK: Requests

    struct Reply: CustomStringConvertible {
        var status: Int
        var headers: HTTPHeaders
        var body: String

        var json: Any? { try? JSONSerialization.jsonObject(with: Data(body.utf8), options: [.fragmentsAllowed]) }
        var object: [String: Any] { json as? [String: Any] ?? [:] }
        var array: [[String: Any]] { json as? [[String: Any]] ?? [] }
        var contentType: String? { headers.first(name: "content-type") }
        var description: String { "\(status) \(body.prefix(600))" }
    }

    /// Sends a request; `json` is serialised with `Content-Type: application/json` unless `contentType` says otherwise.
    func request(
        _ method: HTTPMethod, _ path: String, json: Any? = nil, body: String? = nil, contentType: String? = nil,
        headers: [(String, String)] = []
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let authorization, !headers.contains(where: { $0.0.lowercased() == "authorization" }) {
            request.headers.add(name: "Authorization", value: authorization)
        }
        var payload: String?
        if let json { payload = String(decoding: try JSONSerialization.data(withJSONObject: json, options: [.fragmentsAllowed]), as: UTF8.self) }
        if let body { payload = body }
        if let payload {
            request.body = .bytes(ByteBuffer(string: payload))
            request.headers.add(name: "Content-Type", value: contentType ?? "application/json")
        } else if let contentType {
            request.headers.add(name: "Content-Type", value: contentType)
        }
        let response = try await client.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes))
    }

    func get(_ path: String) async throws -> Reply { try await request(.GET, path) }
    func post(_ path: String, _ json: Any) async throws -> Reply { try await request(.POST, path, json: json) }
    func patch(_ path: String, _ json: Any) async throws -> Reply { try await request(.PATCH, path, json: json) }
    func delete(_ path: String) async throws -> Reply { try await request(.DELETE, path) }

    // MARK: Fixtures

    /// Writes `contents` as an object of the local store and returns its `file://` URL.
    func storeObject(bucket: String, key: String, contents: Data) throws -> String {
        let path = data + "/store/" + bucket + "/" + key
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try contents.write(to: URL(fileURLWithPath: path))
        return "file://" + path
    }

    /// A valid image manifest (a rootfs and a kernel) in the store; returns the manifest's URL.
    func storeManifest(_ name: String = UUID().uuidString.lowercased()) throws -> String {
        let rootfs = try storeObject(bucket: "boot-images", key: "\(name)/rootfs", contents: Data("rootfs \(name)".utf8))
        let kernel = try storeObject(bucket: "boot-images", key: "\(name)/kernel", contents: Data("kernel \(name)".utf8))
        let manifest: [String: Any] = [
            "version": "1.0", "created": "2026-01-01 00:00:00",
            "artifacts": [
                ["link": ["path": rootfs, "etag": "", "type": "file"], "type": "application/vnd.cray.image.rootfs.squashfs"],
                ["link": ["path": kernel, "etag": "", "type": "file"], "type": "application/vnd.cray.image.kernel"],
            ],
        ]
        return try storeObject(bucket: "boot-images", key: "\(name)/manifest.json", contents: try JSONSerialization.data(withJSONObject: manifest))
    }

    /// A recipe archive (the fake builder's KIWI description) in the store; returns its URL.
    func storeRecipeArchive() throws -> String {
        let directory = root + "/recipe-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try """
            <?xml version="1.0" encoding="utf-8"?>
            <image schemaversion="7.4" name="api-test">
              <description type="system"><author>a</author><contact>b</contact><specification>c</specification></description>
              <preferences><version>1.0.0</version><packagemanager>zypper</packagemanager><type image="tbz"/></preferences>
              <repository type="rpm-md" alias="base"><source path="dir:///srv/base"/></repository>
              <packages type="bootstrap"><package name="ims-test-filesystem"/></packages>
            </image>
            """.write(toFile: directory + "/config.xml", atomically: true, encoding: .utf8)
        let archive = root + "/recipe-\(UUID().uuidString.prefix(8)).tar.gz"
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/bin/tar")
        tar.arguments = ["-czf", archive, "-C", directory, "config.xml"]
        try tar.run()
        tar.waitUntilExit()
        return try storeObject(bucket: "ims", key: "recipes/\(UUID().uuidString.lowercased())/recipe.tar.gz", contents: try Data(contentsOf: URL(fileURLWithPath: archive)))
    }

    static let publicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f user@host"

    /// Registers a public key through the API; returns its id.
    func createPublicKey() async throws -> String {
        let reply = try await post("/v3/public-keys", ["name": "admin", "public_key": Self.publicKey])
        try #require(reply.status == 201, "\(reply)")
        return try #require(reply.object["id"] as? String)
    }

    /// Registers a recipe with a stored archive through the API; returns its id.
    func createRecipe(name: String = "compute", arch: String = "x86_64") async throws -> String {
        let link = try storeRecipeArchive()
        let reply = try await post("/v3/recipes", [
            "name": name, "recipe_type": "kiwi-ng", "linux_distribution": "sles15", "arch": arch,
            "link": ["path": link, "etag": "", "type": "file"],
        ])
        try #require(reply.status == 201, "\(reply)")
        return try #require(reply.object["id"] as? String)
    }

    /// Creates a create job of `recipe` through the API; returns its id.
    func createJob(recipe: String, key: String, name: String = "api-image") async throws -> String {
        let reply = try await post("/v3/jobs", ["job_type": "create", "artifact_id": recipe, "public_key_id": key, "image_root_archive_name": name])
        try #require(reply.status == 201, "\(reply)")
        return try #require(reply.object["id"] as? String)
    }

    /// Polls a job until `condition` holds for it.
    func waitForJob(_ id: String, timeout: Duration = .seconds(300), until condition: ([String: Any]) -> Bool) async throws -> [String: Any] {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            let job = try await get("/v3/jobs/\(id)").object
            if condition(job) { return job }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw JobTimeout(id: id)
    }

    /// Polls a job until it is `success` or `error`. The limits are generous: a loaded CI machine runs other suites'
    /// blocking work on the same two cores.
    func waitForJob(_ id: String, timeout: Duration = .seconds(300)) async throws -> [String: Any] {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            let job = try await get("/v3/jobs/\(id)").object
            if let status = job["status"] as? String, status == "success" || status == "error" { return job }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw JobTimeout(id: id)
    }

    struct JobTimeout: Error { var id: String }
}

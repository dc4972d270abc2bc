import Foundation
import IMSCatalog
import Testing

/// A test support script of Tests/Support, run to completion.
struct SupportTool {
    var status: Int32
    var stdout: String
    var stderr: String

    /// The `KEY=VALUE` lines the script printed.
    var values: [String: String] {
        var values: [String: String] = [:]
        for line in stdout.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return values
    }

    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:], input: String? = nil) throws -> SupportTool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : TestServer.repositoryRoot + "/" + executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Read both pipes to their end before waiting (a full pipe would block the tool).
        let group = DispatchGroup()
        nonisolated(unsafe) var errorData = Data()
        group.enter()
        DispatchQueue.global().async {
            errorData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outputData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return SupportTool(
            status: process.terminationStatus, stdout: String(decoding: outputData, as: UTF8.self), stderr: String(decoding: errorData, as: UTF8.self))
    }
}

/// A throwaway Slurm cluster (munge, slurmctld, slurmd) from Tests/Support/slurm-cluster.
final class TestSlurmCluster: @unchecked Sendable {
    let directory: String
    let conf: String
    let partition: String

    init() throws {
        directory = "/tmp/ims-slurm-" + UUID().uuidString.prefix(8)
        let started = try SupportTool.run("Tests/Support/slurm-cluster", ["start", directory])
        guard started.status == 0, let conf = started.values["SLURM_CONF"], let partition = started.values["PARTITION"] else {
            throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "slurm-cluster: \(started.stderr)"])
        }
        self.conf = conf
        self.partition = partition
    }

    func stop() {
        _ = try? SupportTool.run("Tests/Support/slurm-cluster", ["stop", directory])
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// `scontrol` with this cluster's configuration.
    func scontrol(_ arguments: [String]) throws -> SupportTool {
        try SupportTool.run("/usr/bin/scontrol", arguments, environment: ["SLURM_CONF": conf])
    }

    /// A finished or running Slurm job's `Key=Value` fields.
    func job(_ id: String) throws -> [String: String] {
        var fields: [String: String] = [:]
        for word in try scontrol(["show", "job", "-o", id]).stdout.split(whereSeparator: \.isWhitespace) {
            guard let equals = word.firstIndex(of: "=") else { continue }
            fields[String(word[..<equals])] = String(word[word.index(after: equals)...])
        }
        return fields
    }

    /// The settings of a site whose jobs run on this cluster.
    func settings(site: String, heartbeat: Double = 1, timeout: Double = 30, timeLimitMinutes: Int? = nil, testPlugins: Bool = true, store: String) -> String {
        // (The runner's plugin path: the instant test plugins, unless the site's real builders are to run.)
        """
        \(store)
        executor:
          kind: slurm
          heartbeat_seconds: \(heartbeat)
          heartbeat_timeout_seconds: \(timeout)
          runner_config_dir: \(site)
        \(testPlugins ? "  runner_plugin_path: [\(TestServer.fixtures)]" : "")
          slurm:
            partition: \(partition)
            conf: \(conf)
        \(timeLimitMinutes.map { "    time_limit_minutes: \($0)" } ?? "")

        """
    }
}

/// A real S3 server (SeaweedFS) on loopback, from Tests/Support/s3-server.
final class TestS3Store: @unchecked Sendable {
    let directory: String
    let endpoint: String
    let credentials: String

    init() throws {
        directory = NSTemporaryDirectory() + "ims-s3-" + UUID().uuidString.prefix(8)
        let started = try SupportTool.run("Tests/Support/s3-server", ["start", directory])
        guard started.status == 0, let endpoint = started.values["ENDPOINT"], let credentials = started.values["CREDENTIALS"] else {
            throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "s3-server: \(started.stderr)"])
        }
        self.endpoint = endpoint
        self.credentials = credentials
    }

    func stop() {
        _ = try? SupportTool.run("Tests/Support/s3-server", ["stop", directory])
        try? FileManager.default.removeItem(atPath: directory)
    }

    var settings: String { "store: s3://boot-images\ns3:\n  endpoint_url: \(endpoint)\n  credentials_file: \(credentials)" }

    /// The S3 keys.
    var keys: [String] {
        let object = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: credentials)))) as? [String: String] ?? [:]
        return [object["access_key"], object["secret_key"]].compactMap { $0 }
    }
}

/// Jobs run by the slurm and remote-build-nodes executors: real Slurm, real SSH into a network namespace, the
/// runner reporting through the API of a real `ims serve`.
@Suite("jobs on Slurm and remote build nodes", .timeLimit(.minutes(8)))
struct ScaleOutTests {
    static func root() -> String { "/tmp/ims-scale-" + UUID().uuidString.prefix(8) }

    /// Waits until `condition` holds for the job (or fails after `timeout`).
    static func waitFor(_ server: TestServer, _ id: String, timeout: Duration = .seconds(180), _ condition: ([String: Any]) -> Bool) async throws -> [String: Any] {
        try await server.waitForJob(id, timeout: timeout, until: condition)
    }

    /// A server whose jobs run on `cluster`, over a local store marked shared (the cluster is this machine).
    static func slurmServer(_ cluster: TestSlurmCluster, heartbeat: Double = 1, timeout: Double = 30, timeLimitMinutes: Int? = nil, builderConfig: String) async throws -> TestServer {
        let root = Self.root()
        let settings = cluster.settings(
            site: root + "/site", heartbeat: heartbeat, timeout: timeout, timeLimitMinutes: timeLimitMinutes, store: "store: file://\(root)/data/store")
        return try await TestServer(settings: settings + "  shared_store: true\n", builderConfig: builderConfig, root: root)
    }

    /// Creates a small create job (1 GiB of memory and build space, so it fits the test node) through the API.
    static func createSmallJob(_ server: TestServer, recipe: String, key: String, name: String) async throws -> String {
        let created = try await server.post("/v3/jobs", [
            "job_type": "create", "artifact_id": recipe, "public_key_id": key, "image_root_archive_name": name, "build_env_size": 1, "job_mem_size": 1,
        ])
        return try #require(created.object["id"] as? String, "\(created)")
    }

    /// The pid of the runner of job `id` (the `ims jobs run-remote` process, not the batch shell).
    static func runnerPID(_ id: String) throws -> Int32 {
        let line = try #require(try processList().split(separator: "\n").first { $0.contains("run-remote \(id)") && !$0.contains("/bin/sh") })
        return try #require(Int32(line.trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? ""))
    }

    /// The processes' command lines, as `ps` shows them to every user.
    static func processList() throws -> String {
        try SupportTool.run("/bin/ps", ["-eo", "pid,args", "ww"]).stdout
    }

    /// Every file under `directory` (logs, outputs) that contains one of `secrets`.
    static func filesContaining(_ secrets: [String], under directories: [String]) -> [String] {
        var found: [String] = []
        for directory in directories {
            guard let walker = FileManager.default.enumerator(atPath: directory) else { continue }
            while let relative = walker.nextObject() as? String {
                let path = directory + "/" + relative
                guard let data = FileManager.default.contents(atPath: path), data.count < 32 << 20 else { continue }
                let text = String(decoding: data, as: UTF8.self)
                if secrets.contains(where: { text.contains($0) }) { found.append(path) }
            }
        }
        return found
    }

    @Test("a create job runs through Slurm against the S3 store to a registered image; no secret in ps, logs or a plugin's environment")
    func slurmEndToEnd() async throws {
        let cluster = try TestSlurmCluster()
        defer { cluster.stop() }
        let s3 = try TestS3Store()
        defer { s3.stop() }
        let root = Self.root()
        let environmentFile = root + "/plugin-environment.json"
        let server = try await TestServer(
            settings: cluster.settings(site: root + "/site", store: s3.settings), builderConfig: "{sleep_seconds: 3, env_file: \(environmentFile)}", root: root)
        defer { server.terminate() }
        let key = try await server.createPublicKey()
        // The recipe archive goes into S3 first, as a site's recipes are.
        let local = try server.storeRecipeArchive()
        let recipeURL = "s3://ims/recipes/\(UUID().uuidString.lowercased())/recipe.tar.gz"
        let put = try SupportTool.run(TestServer.binary, ["store", "put", String(local.dropFirst("file://".count)), recipeURL, "--config-dir", server.site])
        try #require(put.status == 0, "\(put.stderr)")
        let recipe = try await server.post("/v3/recipes", [
            "name": "slurm", "recipe_type": "kiwi-ng", "linux_distribution": "sles15", "link": ["path": recipeURL, "etag": "", "type": "s3"],
        ])
        try #require(recipe.status == 201, "\(recipe)")
        let created = try await server.post("/v3/jobs", [
            "job_type": "create", "artifact_id": recipe.object["id"] as? String ?? "", "public_key_id": key,
            "image_root_archive_name": "slurm-image", "build_env_size": 1, "job_mem_size": 1,
        ])
        try #require(created.status == 201, "\(created)")
        let id = try #require(created.object["id"] as? String)
        // While the runner works: its secrets are in Slurm's copy of the batch script (root only), nowhere else.
        // The runner has reported (the builder sleeps 3 s, so it is still running).
        let running = try await Self.waitFor(server, id) { $0["last_report"] is String || ["success", "error"].contains($0["status"] as? String) }
        #expect(running["executor"] as? String == "slurm")
        let slurmID = try #require(running["slurm_job_id"] as? String)
        let script = try cluster.scontrol(["write", "batch_script", slurmID, "-"]).stdout
        let token = try #require(script.split(separator: "\"").first { $0.hasPrefix("imsr_") }.map(String.init), "the batch script: \(script)")
        let secrets = [token] + s3.keys
        #expect(secrets.count == 3)
        let processes = try Self.processList()
        #expect(processes.contains("run-remote \(id)"), "the runner is running")
        #expect(!secrets.contains { processes.contains($0) }, "a secret in ps output")

        let finished = try await server.waitForJob(id)
        #expect(finished["status"] as? String == "success", "\(finished)\n\(server.stderr.suffix(3000))")
        let statuses = (finished["status_history"] as? [[String: Any]])?.compactMap { $0["status"] as? String } ?? []
        #expect(statuses.first == "creating" && statuses.contains("building_image") && statuses.contains("packaging_artifacts") && statuses.last == "success", "\(statuses)")
        #expect(finished["host"] as? String == ProcessInfo.processInfo.hostName || finished["host"] != nil)
        #expect(finished["last_report"] as? String != nil)
        let imageID = try #require(finished["resultant_image_id"] as? String)
        let image = try await server.get("/v3/images/\(imageID)")
        let link = image.object["link"] as? [String: Any]
        #expect(link?["path"] as? String == "s3://boot-images/\(imageID)/manifest.json" && link?["type"] as? String == "s3", "\(image)")
        // The runner reports its result before its process exits: Slurm says COMPLETED a moment later.
        var slurmState = try cluster.job(slurmID)["JobState"]
        let settled = Date().addingTimeInterval(30)
        while slurmState != "COMPLETED", Date() < settled {
            try await Task.sleep(for: .milliseconds(500))
            slurmState = try cluster.job(slurmID)["JobState"]
        }
        #expect(slurmState == "COMPLETED")
        // The events reached the server's catalog.
        let logs = try SupportTool.run(TestServer.binary, ["jobs", "logs", id, "--data-dir", server.data, "--json"])
        #expect(logs.stdout.contains("\"job_finished\"") && logs.stdout.contains("\"step_started\""), "\(logs.stdout.suffix(500))")

        // No secret in the plugin's environment, the server's log, the Slurm output or anything in the data directory.
        let environment = try String(contentsOfFile: environmentFile, encoding: .utf8)
        #expect(!secrets.contains { environment.contains($0) }, "a secret in the plugin's environment")
        #expect(!secrets.contains { server.stderr.contains($0) }, "a secret in the server's log")
        #expect(Self.filesContaining(secrets, under: [server.data, server.root + "/site", NSTemporaryDirectory() + "ims-runner-" + id]).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: NSTemporaryDirectory() + "ims-runner-" + id), "the runner's work directory is removed after a success")
    }

    @Test("the SUSE example is built by the real zypper builder through Slurm, from the HTTPS test repository into S3, and registered")
    func slurmRealBuild() async throws {
        let repositoryDirectory = NSTemporaryDirectory() + "ims-scale-repo-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: repositoryDirectory) }
        let built = try SupportTool.run("Tests/Support/build-test-repo", [repositoryDirectory])
        try #require(built.status == 0, "\(built.stderr)")
        let served = try SupportTool.run("Tests/Support/serve-test-repo", [repositoryDirectory, "--until-pid", String(getpid())])
        defer { _ = try? SupportTool.run("Tests/Support/serve-test-repo", ["--stop", repositoryDirectory]) }
        let repositoryURL = try #require(served.values["URL"], "\(served.stderr)")
        let ca = try #require(served.values["CA"])
        let cluster = try TestSlurmCluster()
        defer { cluster.stop() }
        let s3 = try TestS3Store()
        defer { s3.stop() }
        let root = Self.root()
        try FileManager.default.createDirectory(atPath: root + "/site", withIntermediateDirectories: true)
        // The site's own create pipeline (the real builders); the runners share the site directory.
        let settings = cluster.settings(site: root + "/site", timeout: 120, testPlugins: false, store: s3.settings + """

            ca_cert: \(ca)
            dns: {nameservers: [10.92.100.225]}
            repository_timeout_seconds: 5
            repository_poll_seconds: 1
            """)
        let server = try await TestServer(settings: settings, root: root, realPipeline: true)
        defer { server.terminate() }
        // The recipe: examples/sles15 packed and put into S3, its repository URL in the template dictionary.
        let archive = root + "/sles15.tar.gz"
        let tar = try SupportTool.run("/bin/tar", ["-czf", archive, "-C", TestServer.repositoryRoot + "/examples/sles15", "."])
        try #require(tar.status == 0, "\(tar.stderr)")
        let recipeURL = "s3://ims/recipes/\(UUID().uuidString.lowercased())/recipe.tar.gz"
        let put = try SupportTool.run(TestServer.binary, ["store", "put", archive, recipeURL, "--config-dir", server.site])
        try #require(put.status == 0, "\(put.stderr)")
        let recipe = try await server.post("/v3/recipes", [
            "name": "sles15", "recipe_type": "kiwi-ng", "linux_distribution": "sles15", "link": ["path": recipeURL, "etag": "", "type": "s3"],
            "template_dictionary": [["key": "REPO_URL", "value": repositoryURL]],
        ])
        try #require(recipe.status == 201, "\(recipe)")
        let key = try await server.createPublicKey()
        let created = try await server.post("/v3/jobs", [
            "job_type": "create", "artifact_id": recipe.object["id"] as? String ?? "", "public_key_id": key,
            "image_root_archive_name": "slurm-sles15", "build_env_size": 1, "job_mem_size": 1,
        ])
        let id = try #require(created.object["id"] as? String, "\(created)")
        let finished = try await server.waitForJob(id, timeout: .seconds(400))
        #expect(finished["status"] as? String == "success", "\(finished)\n\(server.stderr.suffix(3000))")
        #expect(finished["slurm_job_id"] as? String != nil)
        let imageID = try #require(finished["resultant_image_id"] as? String)
        let image = try await server.get("/v3/images/\(imageID)")
        #expect(image.object["name"] as? String == "slurm-sles15")
        // The manifest the server checked is in S3 with the image's artifacts.
        let listing = try SupportTool.run(TestServer.binary, ["store", "ls", "s3://boot-images/\(imageID)/", "--config-dir", server.site, "--json"])
        let keys = ((try? JSONSerialization.jsonObject(with: Data(listing.stdout.utf8))) as? [[String: Any]] ?? []).compactMap { $0["key"] as? String }
        #expect(Set(keys).isSuperset(of: ["\(imageID)/manifest.json", "\(imageID)/rootfs"]), "\(listing.stdout)\(listing.stderr)")
    }

    @Test("DELETE of a job running on Slurm cancels its Slurm job; a runner killed with SIGKILL leaves its job error with Slurm's reason")
    func slurmCancelAndKill() async throws {
        let cluster = try TestSlurmCluster()
        defer { cluster.stop() }
        let server = try await Self.slurmServer(cluster, builderConfig: "{sleep_seconds: 300}")
        defer { server.terminate() }
        let key = try await server.createPublicKey()
        let recipe = try await server.createRecipe()
        func start() async throws -> (id: String, slurm: String) {
            let id = try await Self.createSmallJob(server, recipe: recipe, key: key, name: "slow")
            let running = try await Self.waitFor(server, id) { $0["status"] as? String == "building_image" || $0["status"] as? String == "error" }
            try #require(running["status"] as? String == "building_image", "\(running)\n\(server.stderr.suffix(2000))")
            return (id, try #require(running["slurm_job_id"] as? String))
        }
        let first = try await start()
        let second = try await start()

        #expect(try await server.delete("/v3/jobs/\(first.id)").status == 204)
        #expect(try await server.get("/v3/jobs/\(first.id)").status == 404)
        var state = ""
        for _ in 0..<100 {
            state = try cluster.job(first.slurm)["JobState"] ?? ""
            if state == "CANCELLED" { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(state == "CANCELLED")
        #expect(!(try Self.processList()).contains("run-remote \(first.id)"), "the cancelled runner is gone")

        // SIGKILL to the runner: Slurm ends the batch job, and the job says so.
        kill(try Self.runnerPID(second.id), SIGKILL)
        let failed = try await server.waitForJob(second.id, timeout: .seconds(60))
        #expect(failed["status"] as? String == "error")
        let message = (failed["error"] as? [String: Any])?["message"] as? String ?? ""
        #expect(message.contains("Slurm ended job \(second.slurm) as FAILED") || message.contains("stopped reporting"), "\(message)")
    }

    @Test("a runner that falls silent is marked error after the heartbeat timeout; when it comes back it is told to stop and its result is refused")
    func silentRunner() async throws {
        let cluster = try TestSlurmCluster()
        defer { cluster.stop() }
        let server = try await Self.slurmServer(cluster, heartbeat: 1, timeout: 4, builderConfig: "{sleep_seconds: 8}")
        defer { server.terminate() }
        let key = try await server.createPublicKey()
        let recipe = try await server.createRecipe()
        let id = try await Self.createSmallJob(server, recipe: recipe, key: key, name: "silent")
        let running = try await Self.waitFor(server, id) { $0["status"] as? String == "building_image" || $0["status"] as? String == "error" }
        try #require(running["status"] as? String == "building_image", "\(running)")
        let slurmID = try #require(running["slurm_job_id"] as? String)
        let pid = try Self.runnerPID(id)
        let script = try cluster.scontrol(["write", "batch_script", slurmID, "-"]).stdout
        let token = try #require(script.split(separator: "\"").first { $0.hasPrefix("imsr_") }.map(String.init))
        kill(pid, SIGSTOP)
        defer { kill(pid, SIGCONT) }
        let failed = try await server.waitForJob(id, timeout: .seconds(60))
        #expect(failed["status"] as? String == "error")
        let error = failed["error"] as? [String: Any]
        #expect(error?["code"] as? String == "ims.job.runner_silent" && (error?["message"] as? String)?.contains("stopped reporting") == true, "\(failed)")
        // The server also stopped the silent runner's Slurm job.
        var state = ""
        for _ in 0..<100 {
            state = try cluster.job(slurmID)["JobState"] ?? ""
            if state == "CANCELLED" { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(state == "CANCELLED")
        // A runner that comes back with the job's token is told to stop, and its late result is refused.
        let headers = [("Authorization", "Bearer \(token)")]
        let report = try await server.request(.POST, "/v3/jobs/\(id)/runner/report", json: ["events": [], "status_changes": []], headers: headers)
        #expect(report.status == 401 && report.contentType == "application/problem+json", "\(report)")
        let late = try await server.request(.POST, "/v3/jobs/\(id)/runner/result", json: [
            "status": "success", "image": ["id": UUID().uuidString.lowercased(), "name": "late", "created": "2026-01-01T00:00:00Z", "arch": "x86_64", "metadata": [:],
                                           "link": ["path": "file:///nowhere/manifest.json", "etag": "", "type": "file"]],
        ], headers: headers)
        #expect(late.status == 401, "\(late)")
        #expect(try await server.get("/v3/images").array.isEmpty, "the late result registered nothing")
        let after = try await server.get("/v3/jobs/\(id)").object
        #expect(after["status"] as? String == "error" && after["resultant_image_id"] is NSNull)
    }

    @Test("a job past its Slurm time limit ends as error with Slurm's TIMEOUT")
    func slurmTimeLimit() async throws {
        let cluster = try TestSlurmCluster()
        defer { cluster.stop() }
        let server = try await Self.slurmServer(cluster, timeout: 300, timeLimitMinutes: 1, builderConfig: "{sleep_seconds: 600}")
        defer { server.terminate() }
        let key = try await server.createPublicKey()
        let recipe = try await server.createRecipe()
        let id = try await Self.createSmallJob(server, recipe: recipe, key: key, name: "long")
        let failed = try await server.waitForJob(id, timeout: .seconds(200))
        #expect(failed["status"] as? String == "error")
        let error = failed["error"] as? [String: Any]
        #expect(error?["code"] as? String == "ims.job.slurm_timeout", "\(failed)")
        #expect((error?["message"] as? String)?.contains("time limit") == true)
    }

    @Test("remote build nodes: status probed over SSH (ok, key refused, down within the timeout), a job placed on the node of its arch, cancel stops the runner there")
    func remoteBuildNodes() async throws {
        let root = Self.root()
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let suffix = String(UUID().uuidString.lowercased().prefix(6))
        let names = ["ok-\(suffix)", "deny-\(suffix)", "down-\(suffix)"]
        let good = try SupportTool.run("Tests/Support/build-node", ["start", names[0], root + "/n0"])
        defer { _ = try? SupportTool.run("Tests/Support/build-node", ["stop", names[0], root + "/n0"]) }
        try #require(good.status == 0, "\(good.stderr)")
        // A node that refuses our key (it authorizes another one), and one without sshd.
        let other = try SupportTool.run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", root + "/other-key"])
        try #require(other.status == 0)
        let denying = try SupportTool.run("Tests/Support/build-node", ["start", names[1], root + "/n1", "--authorize", root + "/other-key.pub"])
        defer { _ = try? SupportTool.run("Tests/Support/build-node", ["stop", names[1], root + "/n1"]) }
        let down = try SupportTool.run("Tests/Support/build-node", ["start", names[2], root + "/n2", "--no-sshd"])
        defer { _ = try? SupportTool.run("Tests/Support/build-node", ["stop", names[2], root + "/n2"]) }
        try #require(denying.status == 0 && down.status == 0, "\(denying.stderr)\(down.stderr)")
        func node(_ values: [String: String]) -> String {
            "      {address: \(values["ADDRESS"] ?? ""), user: root, identity_file: \(good.values["KEY"] ?? ""), known_hosts: \(values["KNOWN_HOSTS"] ?? "")}"
        }
        let settings = """
            store: file://\(root)/data/store
            executor:
              kind: remote-build-nodes
              shared_store: true
              heartbeat_seconds: 1
              heartbeat_timeout_seconds: 30
              runner_config_dir: \(root)/site
              runner_plugin_path: [\(TestServer.fixtures)]
              remote_build_nodes:
                connect_timeout_seconds: 3
                nodes:
                  x0c0s0b0n0:
            \(node(good.values))
                  x0c0s1b0n0:
            \(node(denying.values))
                  x0c0s2b0n0:
            \(node(down.values))

            """.replacingOccurrences(of: ":\n      {", with: ": {")
        // The nodes reach the server at the host side of the first node's link.
        let hostAddress = try #require(good.values["HOST_ADDRESS"])
        let server = try await TestServer(settings: settings, arguments: ["--insecure-no-auth"], builderConfig: "{sleep_seconds: 6}", root: root, listenHost: hostAddress)
        defer { server.terminate() }
        for xname in ["x0c0s0b0n0", "x0c0s1b0n0", "x0c0s2b0n0", "x9c9s9b9n9"] {
            #expect(try await server.post("/v3/remote-build-nodes", ["xname": xname]).status == 201)
        }
        let started = ContinuousClock.now
        let statuses = try await server.get("/v3/remote-build-nodes/status").array
        #expect(started.duration(to: .now) < .seconds(12), "nodes are probed in parallel, each within its timeout")
        let byName = Dictionary(uniqueKeysWithValues: statuses.compactMap { status in (status["xname"] as? String).map { ($0, status) } })
        #expect(byName["x0c0s0b0n0"]?["sshStatus"] as? String == "ok" && byName["x0c0s0b0n0"]?["ableToRunJobs"] as? Bool == true, "\(statuses)")
        #expect(byName["x0c0s0b0n0"]?["nodeArch"] as? String == "x86_64" && (byName["x0c0s0b0n0"]?["podmanStatus"] as? String)?.hasPrefix("ok: ") == true)
        #expect((byName["x0c0s1b0n0"]?["sshStatus"] as? String)?.contains("Permission denied") == true && byName["x0c0s1b0n0"]?["ableToRunJobs"] as? Bool == false)
        #expect((byName["x0c0s2b0n0"]?["sshStatus"] as? String)?.contains("refused") == true && byName["x0c0s2b0n0"]?["ableToRunJobs"] as? Bool == false)
        #expect((byName["x9c9s9b9n9"]?["sshStatus"] as? String)?.contains("not configured") == true)
        let single = try await server.get("/v3/remote-build-nodes/status/x0c0s0b0n0")
        #expect(single.object["sshStatus"] as? String == "ok" && single.object["numCurrentJobs"] as? Int == 0)

        // A job of the node's arch runs there and registers its image.
        let key = try await server.createPublicKey()
        let recipe = try await server.createRecipe()
        let id = try await server.createJob(recipe: recipe, key: key, name: "remote")
        let finished = try await server.waitForJob(id, timeout: .seconds(120))
        #expect(finished["status"] as? String == "success", "\(finished)\n\(server.stderr.suffix(2000))")
        #expect(finished["remote_build_node"] as? String == "x0c0s0b0n0" && finished["executor"] as? String == "remote-build-nodes")
        #expect(finished["host"] as? String != nil, "the runner reported its host")
        // An aarch64 job has no node of its arch: it ends as error, saying so.
        let armRecipe = try await server.createRecipe(name: "arm", arch: "aarch64")
        let armJob = try await server.createJob(recipe: armRecipe, key: key, name: "arm")
        let refused = try await server.waitForJob(armJob, timeout: .seconds(60))
        #expect(((refused["error"] as? [String: Any])?["message"] as? String)?.contains("no registered remote build node of arch aarch64") == true, "\(refused)")

        // DELETE of a running job: its ssh session is stopped and the runner on the node, refused, stops too.
        let slow = try await server.post("/v3/jobs", ["job_type": "create", "artifact_id": recipe, "public_key_id": key, "image_root_archive_name": "slow"])
        let slowID = try #require(slow.object["id"] as? String)
        _ = try await Self.waitFor(server, slowID, timeout: .seconds(60)) { $0["last_report"] is String || ["success", "error"].contains($0["status"] as? String) }
        #expect(try await server.delete("/v3/jobs/\(slowID)").status == 204)
        var alive = true
        for _ in 0..<100 where alive {
            try await Task.sleep(for: .milliseconds(200))
            alive = (try Self.processList()).contains("run-remote \(slowID)")
        }
        #expect(!alive, "the runner on the node stopped after its job was deleted")
    }

    @Test("a refused settings combination: a remote executor over a local store that is not marked shared")
    func localStoreRefused() async throws {
        let root = Self.root()
        try FileManager.default.createDirectory(atPath: root + "/site", withIntermediateDirectories: true)
        try "store: file://\(root)/store\nexecutor: {kind: slurm}\n".write(toFile: root + "/site/ims.yaml", atomically: true, encoding: .utf8)
        let result = try SupportTool.run(TestServer.binary, ["serve", "--listen", "127.0.0.1:0", "--data-dir", root + "/data", "--config-dir", root + "/site"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("cannot reach") && result.stderr.contains("shared_store"), "\(result.stderr)")
    }
}

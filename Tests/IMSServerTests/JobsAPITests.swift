import Foundation
import IMSCatalog
import Testing

/// Jobs and remote build nodes through a real `ims serve`, with the fake builder as the site's build step.
@Suite("jobs API", .timeLimit(.minutes(10)))
struct JobsAPITests {
    @Test("a create job driven only through the API reaches success, and its image is described through the API")
    func createJob() async throws {
        let server = try await TestServer()
        defer { server.terminate() }
        let key = try await server.createPublicKey()
        let recipe = try await server.createRecipe()
        let created = try await server.post("/apis/ims/v3/jobs", [
            "job_type": "create", "artifact_id": recipe, "public_key_id": key, "image_root_archive_name": "api-image",
        ])
        #expect(created.status == 201, "\(created)")
        let job = created.object
        #expect(job["status"] as? String == "creating")
        #expect(job["kernel_file_name"] as? String == "vmlinuz" && job["initrd_file_name"] as? String == "initrd")
        #expect(job["kernel_parameters_file_name"] as? String == "kernel-parameters")
        #expect(job["build_env_size"] as? Int == 60 && job["job_mem_size"] as? Int == 8)
        #expect(job["arch"] as? String == "x86_64" && job["require_dkms"] as? Bool == true)
        #expect((job["ssh_containers"] as? [Any])?.isEmpty == true)
        let id = try #require(job["id"] as? String)
        let finished = try await server.waitForJob(id)
        #expect(finished["status"] as? String == "success", "\(finished)\n\(server.stderr.suffix(3000))")
        let imageID = try #require(finished["resultant_image_id"] as? String)
        let image = try await server.get("/v3/images/\(imageID)")
        #expect(image.status == 200 && image.object["name"] as? String == "api-image")
        #expect((image.object["link"] as? [String: Any])?["path"] as? String != nil)
        let statuses = (finished["status_history"] as? [[String: Any]])?.compactMap { $0["status"] as? String } ?? []
        #expect(statuses.first == "creating" && statuses.contains("building_image") && statuses.last == "success")
        #expect(try await server.get("/v3/jobs").array.map { $0["id"] as? String } == [id])
        #expect(try await server.delete("/v3/jobs/\(id)").status == 204)
        #expect(try await server.get("/v3/jobs/\(id)").status == 404)
    }

    @Test("job creation rules: 400 for a missing artifact or key, an unlinked recipe, ssh_containers on create; aarch64 and DKMS")
    func createRules() async throws {
        let server = try await TestServer(settings: "max_concurrent_jobs: 1\n")
        defer { server.terminate() }
        let key = try await server.createPublicKey()
        let body: (String, String) -> [String: Any] = { artifact, key in
            ["job_type": "create", "artifact_id": artifact, "public_key_id": key, "image_root_archive_name": "x"]
        }
        #expect(try await server.post("/v3/jobs", body(UUID().uuidString, key)).status == 400)
        let recipe = try await server.createRecipe(arch: "aarch64")
        #expect(try await server.post("/v3/jobs", body(recipe, UUID().uuidString)).status == 400)
        let unlinked = try await server.post("/v3/recipes", ["name": "u", "recipe_type": "kiwi-ng", "linux_distribution": "sles15"])
        #expect(try await server.post("/v3/jobs", body(try #require(unlinked.object["id"] as? String), key)).status == 400)
        var withContainers = body(recipe, key)
        withContainers["ssh_containers"] = [["name": "x", "jail": false]]
        #expect(try await server.post("/v3/jobs", withContainers).status == 400)
        var missingKey = body(recipe, key)
        missingKey["public_key_id"] = nil
        #expect(try await server.post("/v3/jobs", missingKey).status == 422)
        var unknown = body(recipe, key)
        unknown["surprise"] = 1
        #expect(try await server.post("/v3/jobs", unknown).status == 422)

        // aarch64: kernel Image and DKMS forced on, whatever was asked.
        var aarch64 = body(recipe, key)
        aarch64["require_dkms"] = false
        aarch64["build_env_size"] = 20
        let job = try await server.post("/v3/jobs", aarch64)
        #expect(job.status == 201, "\(job)")
        #expect(job.object["arch"] as? String == "aarch64" && job.object["kernel_file_name"] as? String == "Image")
        #expect(job.object["require_dkms"] as? Bool == true && job.object["build_env_size"] as? Int == 20)
        let id = try #require(job.object["id"] as? String)
        // Deleting a job stops it first and removes the record.
        #expect(try await server.delete("/v3/jobs/\(id)").status == 204)
        #expect(try await server.get("/v3/jobs/\(id)").status == 404)
    }

    @Test("DELETE /v3/jobs: filters, 400 for bad values, an age that matches nothing deletes nothing")
    func deleteByFilter() async throws {
        let server = try await TestServer()
        defer { server.terminate() }
        let key = try await server.createPublicKey()
        let recipe = try await server.createRecipe()
        var ids: [String] = []
        for name in ["a", "b"] {
            let job = try await server.post("/v3/jobs", ["job_type": "create", "artifact_id": recipe, "public_key_id": key, "image_root_archive_name": name])
            ids.append(try #require(job.object["id"] as? String))
        }
        for id in ids { _ = try await server.waitForJob(id) }
        #expect(try await server.delete("/v3/jobs?status=done").status == 400)
        #expect(try await server.delete("/v3/jobs?job_type=build").status == 400)
        #expect(try await server.delete("/v3/jobs?age=soon").status == 400)
        #expect(try await server.delete("/v3/jobs?age=1d6").status == 400)
        // Found by schemathesis: an age this long crashed the server (timestamp overflow); now capped at 100 years,
        // so it deletes nothing, and the server stays up. Text over 64 characters is a 400.
        #expect(try await server.delete("/v3/jobs?age=" + String(repeating: "0", count: 64) + "d").status == 400)
        #expect(try await server.get("/healthz/live").status == 200)
        #expect(try await server.get("/v3/jobs").array.count == 2, "refused filters delete nothing")
        #expect(try await server.delete("/v3/jobs?age=99999999999w").status == 204)
        #expect(try await server.get("/v3/jobs").array.count == 2, "an age past 100 years selects no job")
        #expect(try await server.delete("/v3/jobs?age=1d6h").status == 204)
        #expect(try await server.get("/v3/jobs").array.count == 2, "the jobs are younger than 30 hours")
        #expect(try await server.delete("/v3/jobs?status=error&status=creating").status == 204)
        #expect(try await server.get("/v3/jobs").array.count == 2)
        #expect(try await server.delete("/v3/jobs?status=success&status=error&job_type=create").status == 204)
        #expect(try await server.get("/v3/jobs").array.isEmpty)
    }

    @Test("remote build nodes: records kept, /status routed before {xname}, never 500")
    func remoteBuildNodes() async throws {
        let server = try await TestServer()
        defer { server.terminate() }
        #expect(try await server.get("/v3/remote-build-nodes/status").array.isEmpty)
        let created = try await server.post("/v3/remote-build-nodes", ["xname": "x3000c0s1b0n0"])
        #expect(created.status == 201 && created.object["xname"] as? String == "x3000c0s1b0n0")
        #expect(try await server.post("/v3/remote-build-nodes", ["xname": "x3000c0s1b0n0"]).status == 201, "registering again replaces")
        #expect(try await server.post("/v3/remote-build-nodes", ["xname": ""]).status == 422)
        #expect(try await server.get("/v3/remote-build-nodes").array.count == 1)
        #expect(try await server.get("/v3/remote-build-nodes/x3000c0s1b0n0").object["xname"] as? String == "x3000c0s1b0n0")
        let statuses = try await server.get("/v3/remote-build-nodes/status")
        #expect(statuses.status == 200 && statuses.array.first?["xname"] as? String == "x3000c0s1b0n0")
        #expect(statuses.array.first?["ableToRunJobs"] as? Bool == false)
        #expect(try await server.get("/v3/remote-build-nodes/status/x3000c0s1b0n0").object["numCurrentJobs"] as? Int == -1)
        #expect(try await server.get("/v3/remote-build-nodes/status/x9").status == 404)
        #expect(try await server.delete("/v3/remote-build-nodes/x3000c0s1b0n0").status == 204)
        #expect(try await server.delete("/v3/remote-build-nodes/x3000c0s1b0n0").status == 404)
        _ = try await server.post("/v3/remote-build-nodes", ["xname": "x1"])
        #expect(try await server.delete("/v3/remote-build-nodes").status == 204)
        #expect(try await server.get("/v3/remote-build-nodes").array.isEmpty)
    }

    @Test("jobs beyond max_concurrent_jobs wait in creating and start first come first served")
    func queue() async throws {
        let server = try await TestServer(settings: "max_concurrent_jobs: 1\n", builderConfig: "{sleep_seconds: 2}")
        defer { server.terminate() }
        let key = try await server.createPublicKey()
        let recipe = try await server.createRecipe()
        let first = try await server.createJob(recipe: recipe, key: key, name: "first")
        let second = try await server.createJob(recipe: recipe, key: key, name: "second")
        let third = try await server.createJob(recipe: recipe, key: key, name: "third")
        _ = try await server.waitForJob(first) { $0["status"] as? String != "creating" }
        // While the first job runs, the second waits without a runner.
        let before = try await server.get("/v3/jobs/\(first)").object["status"] as? String
        let waiting = try await server.get("/v3/jobs/\(second)").object
        let after = try await server.get("/v3/jobs/\(first)").object["status"] as? String
        if before == "building_image" && after == "building_image" {
            #expect(waiting["status"] as? String == "creating" && waiting["pid"] is NSNull, "\(waiting)")
        }
        let finished = try await [server.waitForJob(first), server.waitForJob(second), server.waitForJob(third)]
        #expect(finished.map { $0["status"] as? String } == ["success", "success", "success"], "\(finished)")
        // Each started only after the one before it ended.
        func time(_ job: [String: Any], _ status: String) -> String {
            ((job["status_history"] as? [[String: Any]]) ?? []).first { $0["status"] as? String == status }?["time"] as? String ?? ""
        }
        #expect(time(finished[0], "success") <= time(finished[1], "fetching_recipe"))
        #expect(time(finished[1], "success") <= time(finished[2], "fetching_recipe"))
    }

    @Test("DELETE of a running job stops its runner before the record goes")
    func cancelRunning() async throws {
        let server = try await TestServer(builderConfig: "{sleep_seconds: 120}")
        defer { server.terminate() }
        let key = try await server.createPublicKey()
        let recipe = try await server.createRecipe()
        let id = try await server.createJob(recipe: recipe, key: key)
        let running = try await server.waitForJob(id) { $0["status"] as? String == "building_image" }
        let pid = try #require(running["pid"] as? Int32)
        #expect(Catalog.processIsAlive(pid))
        let started = ContinuousClock.now
        #expect(try await server.delete("/v3/jobs/\(id)").status == 204)
        #expect(started.duration(to: .now) < .seconds(15))
        #expect(!Catalog.processIsAlive(pid), "the runner is gone")
        #expect(try await server.get("/v3/jobs/\(id)").status == 404)
        #expect(try await server.get("/v3/jobs").array.isEmpty)
    }

    @Test("a server killed with SIGKILL while a job runs: after a restart the job finishes and a waiting job starts")
    func restart() async throws {
        let server = try await TestServer(settings: "max_concurrent_jobs: 1\n", builderConfig: "{sleep_seconds: 5}")
        let key = try await server.createPublicKey()
        let recipe = try await server.createRecipe()
        let running = try await server.createJob(recipe: recipe, key: key, name: "running")
        let waiting = try await server.createJob(recipe: recipe, key: key, name: "waiting")
        _ = try await server.waitForJob(running) { ["building_image", "packaging_artifacts", "success"].contains($0["status"] as? String ?? "") }
        await server.kill()
        let restarted = try await TestServer(settings: "max_concurrent_jobs: 1\n", builderConfig: "{sleep_seconds: 5}", root: server.root)
        defer { restarted.terminate() }
        let first = try await restarted.waitForJob(running)
        let second = try await restarted.waitForJob(waiting)
        #expect(first["status"] as? String == "success", "\(first)")
        #expect(second["status"] as? String == "success", "\(second)")
    }

    @Test("a job whose runner died is error with the reason")
    func runnerDied() async throws {
        let server = try await TestServer(builderConfig: "{sleep_seconds: 120}")
        defer { server.terminate() }
        let key = try await server.createPublicKey()
        let recipe = try await server.createRecipe()
        let id = try await server.createJob(recipe: recipe, key: key)
        let running = try await server.waitForJob(id) { $0["status"] as? String == "building_image" }
        let pid = try #require(running["pid"] as? Int32)
        kill(pid, SIGKILL)
        let failed = try await server.waitForJob(id, timeout: .seconds(30))
        #expect(failed["status"] as? String == "error")
        #expect((failed["error"] as? [String: Any])?["message"] as? String == Catalog.interruptedReason(pid: pid), "\(failed)")
    }

    @Test("a customize job created through the API serves an SSH session: connection_info in the record, a login with the job's key, touch complete packages a new image")
    func customizeJob() async throws {
        let server = try await TestServer(settings: "customize_ssh: {listen_address: 127.0.0.1, cluster_local_host: ims-build.local}\n")
        defer { server.terminate() }
        let keyPath = server.root + "/id_ed25519"
        try Self.run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", keyPath])
        let registered = try await server.post("/v3/public-keys", ["name": "cfs", "public_key": try String(contentsOfFile: keyPath + ".pub", encoding: .utf8)])
        let key = try #require(registered.object["id"] as? String, "\(registered)")
        let recipe = try await server.createRecipe()
        let build = try await server.waitForJob(try await server.createJob(recipe: recipe, key: key, name: "base"))
        let base = try #require(build["resultant_image_id"] as? String, "\(build)")
        let created = try await server.post("/apis/ims/v3/jobs", [
            "job_type": "customize", "artifact_id": base, "public_key_id": key, "image_root_archive_name": "customized",
        ])
        #expect(created.status == 201, "\(created)")
        let containers = created.object["ssh_containers"] as? [[String: Any]]
        #expect(containers?.count == 1 && containers?.first?["name"] as? String == "customize" && containers?.first?["status"] as? String == "pending")
        let id = try #require(created.object["id"] as? String)
        // The record says where the session is, as IMS's does, once the job's sshd listens.
        let waiting = try await server.waitForJob(id) { job in
            let container = (job["ssh_containers"] as? [[String: Any]])?.first
            return (container?["connection_info"] as? [String: Any])?.isEmpty == false || ["error", "success"].contains(job["status"] as? String ?? "")
        }
        #expect(waiting["status"] as? String == "waiting_on_user", "\(waiting)")
        let info = try #require((waiting["ssh_containers"] as? [[String: Any]])?.first?["connection_info"] as? [String: [String: Any]], "\(waiting)")
        #expect(info["customer_access"]?["host"] as? String == "127.0.0.1")
        #expect(info["cluster.local"]?["host"] as? String == "ims-build.local")
        let port = try #require(info["customer_access"]?["port"] as? Int)
        // The person (or CFS) logs in with the job's key and ends the session as in IMS.
        try Self.run("/usr/bin/ssh", [
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-i", keyPath, "-p", String(port), "root@127.0.0.1", "test -d /mnt/image/image-root && touch /mnt/image/complete",
        ])
        let finished = try await server.waitForJob(id)
        #expect(finished["status"] as? String == "success", "\(finished)")
        #expect((finished["ssh_containers"] as? [[String: Any]])?.first?["status"] as? String == "established", "\(finished)")
        let image = try #require(finished["resultant_image_id"] as? String)
        #expect(image != base)
        #expect(try await server.get("/v3/images/\(image)").object["name"] as? String == "customized")
        // Two customize containers are refused.
        let two = try await server.post("/v3/jobs", [
            "job_type": "customize", "artifact_id": base, "public_key_id": key, "image_root_archive_name": "x",
            "ssh_containers": [["name": "a"], ["name": "b"]],
        ])
        #expect(two.status == 400)
    }

    /// Runs a tool to completion; a non-zero exit fails the test with the tool's output.
    static func run(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "\(tool) \(arguments.joined(separator: " ")): \(text)")
    }
}

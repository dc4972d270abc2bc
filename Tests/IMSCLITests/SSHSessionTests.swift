import Foundation
import Testing

/// Customize and debug sessions over SSH through the CLI: the job's sshd, its connection in the job record and in
/// `ims jobs describe`, a login with the real ssh client, `touch /tmp/complete` to a new image, and a runner killed
/// with SIGKILL mid-session (nothing mounted is left, the next command reports the job as error). The end-to-end
/// suite runs these on the images it builds (``EndToEndTests``).
enum SSHSessionTests {
    static let sshOptions = [
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
        "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10",
    ]

    static var available: Bool {
        ["/usr/sbin/sshd", "/usr/bin/bwrap", "/usr/bin/ssh", "/usr/bin/ssh-keygen"].allSatisfy(FileManager.default.isExecutableFile(atPath:))
    }

    static func ssh(_ key: String, _ port: Int, _ command: String) throws -> CLI.Result {
        try CLI.runTool("/usr/bin/ssh", sshOptions + ["-i", key, "-p", String(port), "root@127.0.0.1", command])
    }

    /// Waits until the job record's ssh_containers[0] has a connection; returns the container.
    static func connection(_ id: String, data: String) async throws -> [String: Any] {
        for _ in 0..<150 {
            let job = try await EndToEndTests.jobStatus(id, data: data)
            if let container = (job["ssh_containers"] as? [[String: Any]])?.first,
               let info = container["connection_info"] as? [String: Any], !info.isEmpty {
                return container
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("job \(id) never showed a connection")
        return [:]
    }

    static func mounts(under path: String) -> [String] {
        let text = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            return fields.count > 4 && fields[4].hasPrefix(path + "/") ? String(fields[4]) : nil
        }
    }

    static func portOpen(_ port: Int) -> Bool {
        (try? CLI.runTool("/usr/bin/bash", ["-c", "exec 3<>/dev/tcp/127.0.0.1/\(port)"]).status) == 0
    }

    /// A jailed session through the CLI on the image `baseID` of `data`: the connection in the record and in describe,
    /// a login with the job's key, `touch /tmp/complete` to a new image; then a runner killed with SIGKILL mid-session
    /// leaves nothing behind. Called from ``EndToEndTests/customizeSession()``, which has built the image (one build
    /// for both keeps the suite fast).
    static func jailedSession(data: String, site: String, baseID: String) async throws {
        guard available else { return }
        let settings = (try? String(contentsOfFile: site + "/ims.yaml", encoding: .utf8)) ?? ""
        try (settings + "customize_ssh: {listen_address: 127.0.0.1, cluster_local_host: ims-build.local}\n").write(toFile: site + "/ims.yaml", atomically: true, encoding: .utf8)
        let key = data + "/job-key"
        #expect(try CLI.runTool("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]).status == 0)
        let registered = try await CLI.run(["public-keys", "create", "--name", "ssh-admin", "--public-key", key + ".pub", "--data-dir", data, "--json"])
        let keyID = try #require(try CLI.json(registered.stdout)["id"] as? String, "\(registered.stderr)")

        func start(_ name: String) async throws -> String {
            let result = try await CLI.run(["jobs", "create", "--job-type", "customize", "--artifact-id", baseID, "--image-root-archive-name", name,
                                            "--public-key-id", keyID, "--jail", "--detach", "--json", "--data-dir", data, "--config-dir", site])
            #expect(result.status == 0, "\(result.stderr)")
            return try #require(try CLI.json(result.stdout)["id"] as? String)
        }

        let jobID = try await start("ssh-custom")
        let pending = try await Self.connection(jobID, data: data)
        let info = try #require(pending["connection_info"] as? [String: [String: Any]])
        let port = try #require(info["customer_access"]?["port"] as? Int)
        #expect(info["customer_access"]?["host"] as? String == "127.0.0.1")
        #expect(info["cluster.local"]?["host"] as? String == "ims-build.local" && info["cluster.local"]?["port"] as? Int == port)
        #expect(pending["status"] as? String == "pending" && pending["jail"] as? Bool == true)
        let described = try await CLI.run(["jobs", "describe", jobID, "--data-dir", data])
        #expect(described.stdout.contains("customer_access: ssh -i <private key of public key \(keyID)> -p \(port) root@127.0.0.1"), "\(described.stdout)")
        #expect(described.stdout.contains("touch /tmp/complete"))

        let login = try Self.ssh(key, port, "echo \"by $IMS_JOB_ID\" > /etc/ims-ssh; test -r /proc/self/status && echo dkms-proc")
        #expect(login.status == 0 && login.stdout.contains("dkms-proc"), "\(login.stderr)")
        var status = ""
        for _ in 0..<50 where status != "established" {
            status = (try await Self.connection(jobID, data: data))["status"] as? String ?? ""
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(status == "established")
        #expect(try Self.ssh(key, port, "touch /tmp/complete").status == 0)
        #expect(try await EndToEndTests.waitForStatus(jobID, "success", data: data) == "success")
        let newID = try #require(await EndToEndTests.jobStatus(jobID, data: data)["resultant_image_id"] as? String)
        let root = try EndToEndTests.unsquash(newID, data: data, into: "ssh-custom")
        #expect(try String(contentsOfFile: root + "/etc/ims-ssh", encoding: .utf8) == "by \(jobID)\n")
        #expect(!Self.portOpen(port), "the job's sshd outlived the job")

        // SIGKILL to the runner mid-session: the plugin sees its host gone and stops sshd; nothing stays mounted;
        // the next ims command reports the job as error.
        let killed = try await start("ssh-killed")
        let killedInfo = try #require((try await Self.connection(killed, data: data))["connection_info"] as? [String: [String: Any]])
        let killedPort = try #require(killedInfo["customer_access"]?["port"] as? Int)
        #expect(try Self.ssh(key, killedPort, "test -r /proc/self/status").status == 0)
        let job = try await EndToEndTests.jobStatus(killed, data: data)
        let pid = try #require(job["pid"] as? Int)
        let workspace = try #require(job["workspace"] as? String)
        #expect(kill(pid_t(pid), SIGKILL) == 0)
        var open = true
        for _ in 0..<100 where open {
            try await Task.sleep(for: .milliseconds(100))
            open = Self.portOpen(killedPort)
        }
        #expect(!open, "sshd outlived the killed runner")
        #expect(Self.mounts(under: workspace).isEmpty)
        let after = try await EndToEndTests.jobStatus(killed, data: data)
        #expect(after["status"] as? String == "error")
        #expect((after["error"] as? [String: Any])?["code"] as? String == "ims.job.interrupted")
    }
}

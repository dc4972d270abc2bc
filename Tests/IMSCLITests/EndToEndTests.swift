import Foundation
import Testing

/// The test package repository (real RPMs, rpm-md metadata) served over HTTPS on 127.0.0.1 with a
/// throwaway CA, built and started with the scripts in Tests/Support.
final class TestRepository: @unchecked Sendable {
    let directory: String
    let url: String
    let ca: String

    /// - Parameter arch: `aarch64` for the repository of aarch64 shell and kernel packages (build-test-repo --arch).
    init(arch: String? = nil) throws {
        directory = NSTemporaryDirectory() + "ims-e2e-repo-" + UUID().uuidString.prefix(8)
        _ = try Self.script("build-test-repo", [directory] + (arch.map { ["--arch", $0] } ?? []))
        let started = try Self.script("serve-test-repo", [directory, "--until-pid", String(getpid())])
        func value(_ key: String) -> String? {
            started.split(separator: "\n").first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
        }
        guard let url = value("URL"), let ca = value("CA") else { throw CocoaError(.fileReadCorruptFile) }
        self.url = url
        self.ca = ca
    }

    func stop() {
        _ = try? Self.script("serve-test-repo", ["--stop", directory])
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    @discardableResult
    static func script(_ name: String, _ arguments: [String]) throws -> String {
        let result = try CLI.runTool(CLI.repositoryRoot + "/Tests/Support/" + name, arguments)
        guard result.status == 0 else { throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "\(name) failed: \(result.stderr)"]) }
        return result.stdout
    }
}

/// Both families build the example recipes from the HTTPS repository through the real engine and the real
/// zypper/dnf builders; the tests then look inside the packaged image.
@Suite("End to end: examples built from an HTTPS repository", .serialized, .timeLimit(.minutes(5)))
struct EndToEndTests {
    struct Build {
        var data: String
        var result: CLI.Result
        var summary: [String: Any]
    }

    static func copyExample(_ name: String, edit: ((String) -> String)? = nil, configSh: String? = nil) throws -> String {
        let target = NSTemporaryDirectory() + "ims-e2e-recipe-" + UUID().uuidString.prefix(8)
        try FileManager.default.copyItem(atPath: CLI.repositoryRoot + "/examples/" + name, toPath: target)
        if let edit {
            let path = target + "/config.xml"
            try edit(try String(contentsOfFile: path, encoding: .utf8)).write(toFile: path, atomically: true, encoding: .utf8)
        }
        if let configSh { try configSh.write(toFile: target + "/config.sh", atomically: true, encoding: .utf8) }
        return target
    }

    func build(_ recipe: String, repository: TestRepository, ca: Bool = true, extra: [String] = [], siteYAML: String? = nil, data: String? = nil) async throws -> Build {
        let data = data ?? NSTemporaryDirectory() + "ims-e2e-data-" + UUID().uuidString.prefix(8)
        let site = data + "-site"
        try FileManager.default.createDirectory(atPath: site, withIntermediateDirectories: true)
        try (siteYAML ?? "repository_timeout_seconds: 5\nrepository_poll_seconds: 1\n").write(toFile: site + "/ims.yaml", atomically: true, encoding: .utf8)
        var arguments = ["build", recipe, "--template-dictionary", "REPO_URL=\(repository.url)", "--dns-nameserver", "10.92.100.225",
                         "--data-dir", data, "--config-dir", site, "--json"] + extra
        if ca { arguments += ["--ca-cert", repository.ca] }
        let result = try await CLI.run(arguments)
        let last = result.stdout.split(separator: "\n").last.map(String.init) ?? "{}"
        let summary = (try? CLI.json(last)) ?? [:]
        return Build(data: data, result: result, summary: summary)
    }

    static func unsquash(_ image: String, data: String) throws -> String {
        let target = data + "/unsquashed"
        let result = try CLI.runTool("/usr/bin/unsquashfs", ["-no-progress", "-d", target, data + "/store/boot-images/" + image + "/rootfs"])
        #expect(result.status == 0, "\(result.stderr)")
        return target
    }

    static func installedPackages(_ root: String) throws -> [String] {
        let result = try CLI.runTool("/usr/bin/rpm", ["--root", root, "--dbpath", "/usr/lib/sysimage/rpm", "-qa", "--qf", "%{NAME}\\n"])
        return result.stdout.split(separator: "\n").map(String.init).filter { $0 != "gpg-pubkey" }.sorted()
    }

    @Test("SUSE (zypper) and RHEL (dnf) examples build into registered images with the right content", arguments: ["sles15", "rhel9"])
    func example(_ name: String) async throws {
        let repository = try TestRepository()
        let recipe = try Self.copyExample(name)
        // An overlay file's own time reaches the image (the recipe is packed keeping times, not zeroing them).
        let overlayTime: TimeInterval = 1_600_000_000
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: overlayTime)], ofItemAtPath: recipe + "/root/etc/motd")
        let outcome = try await build(recipe, repository: repository, extra: ["--name", "e2e-\(name)"])
        #expect(outcome.result.status == 0, "\(outcome.result.stderr)\n\(outcome.result.stdout.suffix(3000))")
        #expect(outcome.summary["status"] as? String == "success")
        let image = try #require(outcome.summary["image"] as? [String: Any])
        let imageID = try #require(image["id"] as? String)

        // The manifest lists rootfs, kernel, initrd, boot parameters and the SBOM, each matching the stored object.
        let manifest = try #require(outcome.summary["manifest"] as? [String: Any])
        #expect(manifest["version"] as? String == "1.0")
        let artifacts = try #require(manifest["artifacts"] as? [[String: Any]])
        #expect(Set(artifacts.compactMap { $0["type"] as? String }) == [
            "application/vnd.cray.image.rootfs.squashfs", "application/vnd.cray.image.kernel",
            "application/vnd.cray.image.initrd", "application/vnd.cray.image.parameters.boot", "application/spdx+json",
        ])
        for artifact in artifacts {
            let link = try #require(artifact["link"] as? [String: Any])
            let path = try #require((link["path"] as? String)?.replacingOccurrences(of: "file://", with: ""))
            let md5 = try CLI.runTool("/usr/bin/md5sum", [path]).stdout.prefix(32)
            #expect(String(md5) == artifact["md5"] as? String)
            #expect(link["etag"] as? String == artifact["md5"] as? String)
        }

        // Inside the image: packages, overlay, config.sh, users, the trusted CA, resolv.conf.
        let root = try Self.unsquash(imageID, data: outcome.data)
        let packages = try Self.installedPackages(root)
        for package in ["ims-test-app", "ims-test-lib", "ims-test-kernel", "ims-test-filesystem", "ims-test-shell", "ims-test-ca-certificates", "ims-test-release"] {
            #expect(packages.contains(package), "\(package) missing from \(packages)")
        }
        #expect(try String(contentsOfFile: root + "/etc/motd", encoding: .utf8).contains("ims example image (\(name))"))
        func modified(_ path: String) throws -> TimeInterval? {
            (try FileManager.default.attributesOfItem(atPath: root + path)[.modificationDate] as? Date)?.timeIntervalSince1970
        }
        #expect(try modified("/etc/motd") == overlayTime, "the overlay file keeps its time")
        for directory in ["/etc", "/boot"] {
            #expect(try (modified(directory) ?? 0) > 1_000_000_000, "\(directory) is not dated 1970")
        }
        #expect(try String(contentsOfFile: root + "/etc/ims-configured", encoding: .utf8).contains("ims-example-\(name) 1.0.0"))
        let passwd = try String(contentsOfFile: root + "/etc/passwd", encoding: .utf8)
        #expect(passwd.contains("\nims:x:1001:") || passwd.hasPrefix("ims:x:1001:"))
        let caText = try String(contentsOfFile: repository.ca, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let bundle = name == "sles15" ? "/var/lib/ca-certificates/ca-bundle.pem" : "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"
        #expect(try String(contentsOfFile: root + bundle, encoding: .utf8).contains(caText), "the site CA is in \(bundle)")
        #expect(try String(contentsOfFile: root + "/etc/resolv.conf", encoding: .utf8).contains("nameserver 10.92.100.225"))
        #expect(FileManager.default.fileExists(atPath: root + "/boot/vmlinuz-6.1.0-ims"))

        // The job record went through IMS's statuses in order.
        let jobID = try #require(outcome.summary["job_id"] as? String)
        let job = try CLI.json(try await CLI.run(["jobs", "describe", jobID, "--data-dir", outcome.data, "--json"]).stdout)
        let history = (job["status_history"] as? [[String: Any]])?.compactMap { $0["status"] as? String }
        #expect(history == ["creating", "fetching_recipe", "waiting_for_repos", "building_image", "packaging_artifacts", "success"])
        #expect(job["resultant_image_id"] as? String == imageID)
    }

    @Test("without the site CA the build fails with a TLS error naming the repository")
    func withoutCA() async throws {
        let repository = try TestRepository()
        let outcome = try await build(try Self.copyExample("sles15"), repository: repository, ca: false)
        #expect(outcome.result.status == 1)
        let error = try #require(outcome.summary["error"] as? [String: Any])
        let message = error["message"] as? String ?? ""
        #expect(message.contains("ims-test") && message.contains("TLS"), "\(message)")
        #expect(error["phase"] as? String == "wait-for-repos")
    }

    @Test("an unknown package fails the build naming the package")
    func unknownPackage() async throws {
        let repository = try TestRepository()
        let recipe = try Self.copyExample("rhel9") { $0.replacingOccurrences(of: "<package name=\"ims-test-app\"/>", with: "<package name=\"ims-test-app\"/>\n    <package name=\"no-such-package\"/>") }
        let outcome = try await build(recipe, repository: repository)
        #expect(outcome.result.status == 1)
        let error = try #require(outcome.summary["error"] as? [String: Any])
        #expect(error["code"] as? String == "build-root.package_not_found")
        #expect((error["message"] as? String)?.contains("no-such-package") == true)
    }

    @Test("a config.sh that exits non-zero fails the build naming the script")
    func failingConfigSh() async throws {
        let repository = try TestRepository()
        let recipe = try Self.copyExample("sles15", configSh: "#!/bin/sh\necho 'about to fail' >&2\nexit 3\n")
        let outcome = try await build(recipe, repository: repository)
        #expect(outcome.result.status == 1)
        let error = try #require(outcome.summary["error"] as? [String: Any])
        #expect(error["code"] as? String == "build-root.script_failed")
        #expect((error["message"] as? String)?.contains("config.sh") == true)
    }

    @Test("config.sh gets kiwi's functions; a command the image lacks is a warning in the result (script, line, command), and --strict fails the job")
    func missingCommandInConfigSh() async throws {
        let repository = try TestRepository()
        let script = "#!/bin/bash\ntest -f /.kconfig && . /.kconfig\nbaseSetupBuildDay\nims-no-such-tool\necho configured\n"
        let outcome = try await build(try Self.copyExample("sles15", configSh: script), repository: repository)
        #expect(outcome.result.status == 0, "\(outcome.result.stderr)")
        let warnings = try #require(outcome.summary["warnings"] as? [[String: Any]])
        let missing = warnings.filter { ($0["message"] as? String)?.contains("config.sh line 4: 'ims-no-such-tool' is not a command in the image") == true }
        #expect(missing.count == 1, "\(warnings)")
        #expect(missing.first?["step"] as? String == "build-root")
        #expect(!warnings.contains { ($0["message"] as? String)?.contains("baseSetupBuildDay") == true }, "a kiwi function is found")

        let strict = try await build(try Self.copyExample("sles15", configSh: script), repository: repository, extra: ["--strict"])
        #expect(strict.result.status == 1)
        let error = try #require(strict.summary["error"] as? [String: Any])
        #expect(error["code"] as? String == "build-root.script_command_missing")
        #expect((error["message"] as? String)?.contains("config.sh line 4: 'ims-no-such-tool'") == true)
    }

    @Test("enable_debug: a failed create job holds its root open in waiting_on_user (over SSH with the job's key) until the session ends, then ends as error")
    func debugSession() async throws {
        let repository = try TestRepository()
        let recipe = try Self.copyExample("sles15", configSh: "#!/bin/sh\necho 'about to fail' >&2\nexit 3\n")
        let first = try await build(recipe, repository: repository)  // registers the recipe (with REPO_URL); fails
        #expect(first.result.status == 1)
        let data = first.data, site = first.data + "-site"
        try "repository_timeout_seconds: 5\nrepository_poll_seconds: 1\nca_cert: \(repository.ca)\ncustomize_ssh: {listen_address: 127.0.0.1}\n"
            .write(toFile: site + "/ims.yaml", atomically: true, encoding: .utf8)
        let recipes = try JSONSerialization.jsonObject(with: Data(try await CLI.run(["recipes", "list", "--data-dir", data, "--json"]).stdout.utf8)) as? [[String: Any]]
        let recipeID = try #require(recipes?.first?["id"] as? String)
        // With a public key the debug session is served over SSH (IMS's debug shell: never jailed).
        let key = data + "/debug-key"
        #expect(try CLI.runTool("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]).status == 0)
        let registered = try await CLI.run(["public-keys", "create", "--name", "debug", "--public-key", key + ".pub", "--data-dir", data, "--json"])
        let keyID = try #require(try CLI.json(registered.stdout)["id"] as? String, "\(registered.stderr)")
        let created = try await CLI.run(["jobs", "create", "--job-type", "create", "--artifact-id", recipeID, "--image-root-archive-name", "debugged",
                                   "--enable-debug", "--public-key-id", keyID, "--detach", "--json", "--data-dir", data, "--config-dir", site])
        #expect(created.status == 0, "\(created.stderr)")
        let jobID = try #require(try CLI.json(created.stdout)["id"] as? String)
        #expect(try await Self.waitForStatus(jobID, "waiting_on_user", data: data) == "waiting_on_user")
        let workspace = try #require(await Self.jobStatus(jobID, data: data)["workspace"] as? String)
        #expect(FileManager.default.fileExists(atPath: workspace + "/phases/build-root/out/rootfs/etc/motd"), "the failed root is there to look into")
        var logs = ""
        for _ in 0..<50 where !logs.contains("the failed build's root is") {
            logs = try await CLI.run(["jobs", "logs", jobID, "--data-dir", data]).stdout
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(logs.contains("the failed build's root is"), "the instructions are in the job's logs")
        let session = try await SSHSessionTests.connection(jobID, data: data)
        #expect(session["name"] as? String == "debug" && session["jail"] as? Bool == false)
        let port = try #require((session["connection_info"] as? [String: [String: Any]])?["customer_access"]?["port"] as? Int)
        let look = try SSHSessionTests.ssh(key, port, "cat /mnt/image/image-root/etc/motd >/dev/null && echo failed-root-ok; touch /mnt/image/complete")
        #expect(look.status == 0 && look.stdout.contains("failed-root-ok"), "\(look.stderr)")
        #expect(try await Self.waitForStatus(jobID, "error", data: data) == "error")
        let job = try await Self.jobStatus(jobID, data: data)
        let history = (job["status_history"] as? [[String: Any]])?.compactMap { $0["status"] as? String }
        #expect(history == ["creating", "fetching_recipe", "waiting_for_repos", "building_image", "waiting_on_user", "error"])
        #expect((job["error"] as? [String: Any])?["code"] as? String == "build-root.script_failed")
    }

    @Test("a repository that is down fails in waiting_for_repos naming it, within the timeout")
    func repositoryDown() async throws {
        let repository = try TestRepository()
        repository.stop()
        let started = Date()
        let outcome = try await build(try Self.copyExample("sles15"), repository: repository)
        #expect(Date().timeIntervalSince(started) < 60)
        #expect(outcome.result.status == 1)
        let error = try #require(outcome.summary["error"] as? [String: Any])
        #expect(error["phase"] as? String == "wait-for-repos")
        #expect((error["message"] as? String)?.contains("ims-test") == true)
    }

    /// The zypper builder's case is CacheEndToEndTests.rebuild: its first build and its --no-cache build are two fresh
    /// builds of the same recipe, compared there.
    @Test("with --source-date-epoch the same recipe and packages give a byte-identical rootfs (dnf and kiwi-ng builders)",
          arguments: ["rhel9", "kiwi-bootstrap"])
    func reproducible(_ name: String) async throws {
        let repository = try TestRepository()
        var extra = ["--source-date-epoch", "1700000000"]
        if name == "kiwi-bootstrap" {
            let pipeline = NSTemporaryDirectory() + "ims-e2e-kiwi-pipeline-" + UUID().uuidString.prefix(8) + ".yaml"
            try "extends: create\noverride:\n  build-root: {plugin: org.ims.builder.kiwi}\n".write(toFile: pipeline, atomically: true, encoding: .utf8)
            extra += ["--pipeline", pipeline]
        }
        var digests: [String] = []
        for round in 1...2 {
            let outcome = try await build(try Self.copyExample(name), repository: repository, extra: ["--name", "repro-\(round)"] + extra)
            #expect(outcome.result.status == 0, "\(outcome.result.stderr)")
            let manifest = try #require(outcome.summary["manifest"] as? [String: Any])
            let artifacts = try #require(manifest["artifacts"] as? [[String: Any]])
            let rootfs = artifacts.first { ($0["type"] as? String)?.hasPrefix("application/vnd.cray.image.rootfs") == true }
            digests.append(try #require(rootfs?["md5"] as? String))
            try await Task.sleep(for: .milliseconds(1100))  // a second build in the same second would hide time stamps
        }
        #expect(digests[0] == digests[1], "two builds of \(name) differ: \(digests)")
    }

    // MARK: Customize

    static func jobStatus(_ id: String, data: String) async throws -> [String: Any] {
        try CLI.json(try await CLI.run(["jobs", "describe", id, "--data-dir", data, "--json"]).stdout)
    }

    /// Polls until the job is in `status` (or ended), at most `seconds`.
    static func waitForStatus(_ id: String, _ status: String, data: String, seconds: Double = 60) async throws -> String {
        let until = Date().addingTimeInterval(seconds)
        var current = ""
        while Date() < until {
            current = try await jobStatus(id, data: data)["status"] as? String ?? ""
            if current == status || current == "success" || current == "error" { return current }
            try await Task.sleep(for: .milliseconds(200))
        }
        return current
    }

    static func unsquash(_ image: String, data: String, into name: String) throws -> String {
        let target = data + "/" + name
        let result = try CLI.runTool("/usr/bin/unsquashfs", ["-no-progress", "-d", target, data + "/store/boot-images/" + image + "/rootfs"])
        #expect(result.status == 0, "\(result.stderr)")
        return target
    }

    @Test("customize: a script changes a new image in the image root (the source stays), with IMS's statuses")
    func customizeWithScript() async throws {
        let repository = try TestRepository()
        let base = try await build(try Self.copyExample("sles15"), repository: repository, extra: ["--name", "e2e-base"])
        #expect(base.result.status == 0, "\(base.result.stderr)")
        let baseID = try #require((base.summary["image"] as? [String: Any])?["id"] as? String)
        let data = base.data, site = base.data + "-site"
        let baseRootfs = data + "/store/boot-images/" + baseID + "/rootfs"
        let baseMD5 = try CLI.runTool("/usr/bin/md5sum", [baseRootfs]).stdout.prefix(32)

        let script = site + "/customize.sh"
        try """
            #!/bin/sh
            echo "customized by $IMS_JOB_ID on $IMS_ARCH (dkms $IMS_DKMS_ENABLED)" > /etc/customized
            cat /etc/resolv.conf > /etc/resolv-during-customize
            rm /etc/motd
            echo "script done"
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let run = try await CLI.run(["jobs", "create", "--job-type", "customize", "--artifact-id", baseID, "--image-root-archive-name", "e2e-custom",
                               "--script", script, "--data-dir", data, "--config-dir", site, "--json"])
        #expect(run.status == 0, "\(run.stderr)\n\(run.stdout.suffix(2000))")
        let jobs = try JSONSerialization.jsonObject(with: Data(try await CLI.run(["jobs", "list", "--job-type", "customize", "--data-dir", data, "--json"]).stdout.utf8)) as? [[String: Any]]
        let jobID = try #require(jobs?.first?["id"] as? String)
        let job = try await Self.jobStatus(jobID, data: data)
        let history = (job["status_history"] as? [[String: Any]])?.compactMap { $0["status"] as? String }
        #expect(history == ["creating", "fetching_image", "waiting_on_user", "packaging_artifacts", "success"])
        let newID = try #require(job["resultant_image_id"] as? String)
        #expect(newID != baseID)
        let image = try CLI.json(try await CLI.run(["images", "describe", newID, "--data-dir", data, "--json"]).stdout)
        #expect(image["name"] as? String == "e2e-custom")
        #expect(image["arch"] as? String == "x86_64")

        let root = try Self.unsquash(newID, data: data, into: "customized")
        #expect(try String(contentsOfFile: root + "/etc/customized", encoding: .utf8) == "customized by \(jobID) on x86_64 (dkms true)\n")
        #expect(!FileManager.default.fileExists(atPath: root + "/etc/motd"))
        // DNS was swapped in for the script and the image's own resolv.conf restored afterwards.
        #expect(try String(contentsOfFile: root + "/etc/resolv-during-customize", encoding: .utf8).contains("copied from the build host"))
        #expect(try String(contentsOfFile: root + "/etc/resolv.conf", encoding: .utf8).contains("nameserver 10.92.100.225"))
        #expect(!FileManager.default.fileExists(atPath: root + "/var/lib/ims/configure-dns"))
        #expect(FileManager.default.fileExists(atPath: root + "/boot/vmlinuz-6.1.0-ims"))
        #expect(try Self.installedPackages(root).contains("ims-test-app"))
        // The source image is untouched.
        #expect(try CLI.runTool("/usr/bin/md5sum", [baseRootfs]).stdout.prefix(32) == baseMD5)
        let original = try Self.unsquash(baseID, data: data, into: "original")
        #expect(FileManager.default.fileExists(atPath: original + "/etc/motd"))
        #expect(!FileManager.default.fileExists(atPath: original + "/etc/customized"))

        // A failing script fails the job naming it, and registers nothing.
        try "#!/bin/sh\necho broken on purpose\nexit 3\n".write(toFile: script, atomically: true, encoding: .utf8)
        let failing = try await CLI.run(["jobs", "create", "--job-type", "customize", "--artifact-id", baseID, "--image-root-archive-name", "e2e-broken",
                                   "--script", script, "--data-dir", data, "--config-dir", site])
        #expect(failing.status != 0)
        #expect(failing.stderr.contains("customize.sh exited with status 3"), "\(failing.stderr)")
        let images = try JSONSerialization.jsonObject(with: Data(try await CLI.run(["images", "list", "--data-dir", data, "--json"]).stdout.utf8)) as? [[String: Any]]
        #expect(Set(images?.compactMap { $0["name"] as? String } ?? []) == ["e2e-base", "e2e-custom"])
    }

    @Test("customize: a person's session waits in waiting_on_user until jobs complete (or --failed), also over SSH")
    func customizeSession() async throws {
        let repository = try TestRepository()
        let base = try await build(try Self.copyExample("rhel9"), repository: repository, extra: ["--name", "e2e-session-base"])
        #expect(base.result.status == 0, "\(base.result.stderr)")
        let baseID = try #require((base.summary["image"] as? [String: Any])?["id"] as? String)
        let data = base.data, site = base.data + "-site"

        func start(_ name: String, jail: Bool) async throws -> String {
            let result = try await CLI.run(["jobs", "create", "--job-type", "customize", "--artifact-id", baseID, "--image-root-archive-name", name,
                                      "--detach", "--json", "--data-dir", data, "--config-dir", site] + (jail ? ["--jail"] : []))
            #expect(result.status == 0, "\(result.stderr)")
            return try #require(try CLI.json(result.stdout)["id"] as? String)
        }

        // Aborted: no image.
        let aborted = try await start("e2e-aborted", jail: false)
        #expect(try await Self.waitForStatus(aborted, "waiting_on_user", data: data) == "waiting_on_user")
        let notYet = try await CLI.run(["jobs", "complete", base.summary["job_id"] as? String ?? "", "--data-dir", data])
        #expect(notYet.status != 0 && notYet.stderr.contains("only a job in waiting_on_user"), "\(notYet.stderr)")
        #expect(try await CLI.run(["jobs", "complete", aborted, "--failed", "--data-dir", data]).status == 0)
        #expect(try await Self.waitForStatus(aborted, "error", data: data) == "error")
        let abortedJob = try await Self.jobStatus(aborted, data: data)
        #expect(abortedJob["resultant_image_id"] == nil || abortedJob["resultant_image_id"] is NSNull)

        // Jailed: the person works in the root and touches /tmp/complete inside it.
        let jailed = try await start("e2e-session", jail: true)
        #expect(try await Self.waitForStatus(jailed, "waiting_on_user", data: data) == "waiting_on_user")
        // The plugin's instructions reach the job's logs while it waits (not only when the step ends).
        var logs = ""
        for _ in 0..<50 where !logs.contains("touch /tmp/complete") {
            logs = try await CLI.run(["jobs", "logs", jailed, "--data-dir", data]).stdout
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(logs.contains("touch /tmp/complete"), "the instructions are in the job's logs")
        let rootfs = try #require(await Self.jobStatus(jailed, data: data)["workspace"] as? String) + "/phases/fetch-image/out/rootfs"
        try "edited by a person\n".write(toFile: rootfs + "/etc/edited-by-hand", atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: rootfs + "/tmp/complete", contents: Data())
        #expect(try await Self.waitForStatus(jailed, "success", data: data) == "success")
        let newID = try #require(await Self.jobStatus(jailed, data: data)["resultant_image_id"] as? String)
        let root = try Self.unsquash(newID, data: data, into: "session")
        #expect(try String(contentsOfFile: root + "/etc/edited-by-hand", encoding: .utf8) == "edited by a person\n")
        #expect(!FileManager.default.fileExists(atPath: root + "/tmp/complete"))
        let images = try JSONSerialization.jsonObject(with: Data(try await CLI.run(["images", "list", "--data-dir", data, "--json"]).stdout.utf8)) as? [[String: Any]]
        #expect(Set(images?.compactMap { $0["name"] as? String } ?? []) == ["e2e-session-base", "e2e-session"])

        // Over SSH with the job's key, on the same image (SSHSessionTests).
        try await SSHSessionTests.jailedSession(data: data, site: site, baseID: baseID)
    }
}

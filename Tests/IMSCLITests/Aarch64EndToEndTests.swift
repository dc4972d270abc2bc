import Foundation
import Testing

/// aarch64 images built and customized on this x86_64 host, with real aarch64 programs (Debian's arm64 busybox in
/// the test repository's shell and kernel packages, a %post that runs one) under Debian's qemu-aarch64-static,
/// which ims registers with binfmt_misc for the job and removes afterwards.
@Suite("aarch64 images under qemu-user emulation", .serialized, .timeLimit(.minutes(15)))
struct Aarch64EndToEndTests {
    static let binfmt = "/proc/sys/fs/binfmt_misc"
    static let entry = binfmt + "/ims-qemu-aarch64"

    /// Whether the machine already has an aarch64 interpreter registered (by the site, not by ims).
    static var siteHasAarch64Entry: Bool {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: binfmt)) ?? []
        return names.contains { name in
            guard name != "register", name != "status" else { return false }
            let text = (try? String(contentsOfFile: binfmt + "/" + name, encoding: .utf8)) ?? ""
            return text.contains("magic 7f454c460201010000000000000000000200b700")
        }
    }

    static func site(_ data: String, yaml: String, pipeline: String? = nil) throws {
        let site = data + "-site"
        try FileManager.default.createDirectory(atPath: site + "/pipelines", withIntermediateDirectories: true)
        try yaml.write(toFile: site + "/ims.yaml", atomically: true, encoding: .utf8)
        if let pipeline { try pipeline.write(toFile: site + "/pipelines/create.yaml", atomically: true, encoding: .utf8) }
    }

    static func newData() -> String { NSTemporaryDirectory() + "ims-arm-data-" + UUID().uuidString.prefix(8) }

    static let allowed = "repository_timeout_seconds: 5\nrepository_poll_seconds: 1\nemulation: {register_binfmt: true}\n"

    /// `ims build` of an example for aarch64 from the aarch64 repository.
    static func build(_ example: String, repository: TestRepository, data: String, name: String, configSh: String? = nil) async throws -> EndToEndTests.Build {
        let recipe = try EndToEndTests.copyExample(example, configSh: configSh)
        let result = try await CLI.run([
            "build", recipe, "--arch", "aarch64", "--name", name, "--template-dictionary", "REPO_URL=\(repository.url)",
            "--ca-cert", repository.ca, "--dns-nameserver", "10.92.100.225", "--data-dir", data, "--config-dir", data + "-site", "--json",
        ])
        let last = result.stdout.split(separator: "\n").last.map(String.init) ?? "{}"
        return EndToEndTests.Build(data: data, result: result, summary: (try? CLI.json(last)) ?? [:])
    }

    /// What `file` says about a path inside an image root.
    static func file(_ path: String) throws -> String {
        try CLI.runTool("/usr/bin/file", ["-b", path]).stdout
    }

    /// The checks every aarch64 build shares: aarch64 programs, the %post's and config.sh's effects, the kernel.
    static func checkImage(_ build: EndToEndTests.Build, label: String) throws -> (id: String, root: String) {
        #expect(build.result.status == 0, "\(label): \(build.result.stderr.suffix(3000))")
        let image = try #require(build.summary["image"] as? [String: Any], "\(label): \(build.result.stdout.suffix(2000))")
        let id = try #require(image["id"] as? String)
        #expect(image["arch"] as? String == "aarch64", "\(label)")
        let root = try EndToEndTests.unsquash(id, data: build.data, into: "root-" + label)
        let busybox = try file(root + "/usr/bin/busybox")
        #expect(busybox.contains("ARM aarch64"), "\(label): \(busybox)")
        // The %post of ims-test-shell ran busybox's uname under qemu-aarch64.
        #expect(try String(contentsOfFile: root + "/var/lib/ims-test-post-arch", encoding: .utf8) == "aarch64\n", "\(label)")
        // config.sh ran in the root (aarch64 sh and date).
        #expect(FileManager.default.fileExists(atPath: root + "/etc/ims-configured"), "\(label)")
        #expect(FileManager.default.fileExists(atPath: root + "/var/lib/ims-example/built-year"), "\(label)")
        // The kernel artifact is /boot/Image (IMS's aarch64 kernel name).
        let manifest = try #require(build.summary["manifest"] as? [String: Any])
        let artifacts = try #require(manifest["artifacts"] as? [[String: Any]])
        let kernel = try #require(artifacts.first { $0["type"] as? String == "application/vnd.cray.image.kernel" })
        let imageMD5 = try CLI.runTool("/usr/bin/md5sum", [root + "/boot/Image-6.1.0-ims"]).stdout.prefix(32)
        #expect(kernel["md5"] as? String == String(imageMD5), "\(label): kernel \(kernel)")
        #expect(!FileManager.default.fileExists(atPath: root + "/boot/vmlinuz"))
        // ims's binfmt_misc entry is gone with the job.
        #expect(!FileManager.default.fileExists(atPath: entry), "\(label): \(entry) was left registered")
        return (id, root)
    }

    @Test("an aarch64 job is refused before any build step when no interpreter is registered and ims may not register one")
    func refusedInPreflight() async throws {
        let repository = try TestRepository(arch: "aarch64")
        let data = Self.newData()
        // The machine's own binfmt_misc, unless the site registered an aarch64 interpreter there; then an empty
        // directory stands for a machine without one.
        var yaml = "repository_timeout_seconds: 5\nemulation: {register_binfmt: false}\n"
        if Self.siteHasAarch64Entry {
            let empty = data + "-nobinfmt"
            try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
            yaml = "repository_timeout_seconds: 5\nemulation: {register_binfmt: false, binfmt_misc: \(empty)}\n"
        }
        try Self.site(data, yaml: yaml)
        let build = try await Self.build("sles15", repository: repository, data: data, name: "arm-refused")
        #expect(build.result.status != 0)
        #expect(build.result.stderr.contains("no binfmt_misc interpreter for aarch64 is registered"), "\(build.result.stderr)")
        #expect(build.result.stderr.contains("register_binfmt: true") && build.result.stderr.contains("qemu-user-static"), "\(build.result.stderr)")
        let jobs = try JSONSerialization.jsonObject(with: Data(try await CLI.run(["jobs", "list", "--data-dir", data, "--json"]).stdout.utf8)) as? [[String: Any]]
        let job = try #require(jobs?.first)
        let error = try #require(job["error"] as? [String: Any])
        #expect(error["code"] as? String == "engine.emulation.unavailable" && error["category"] as? String == "environment", "\(error)")
        // Nothing ran: no step started, no image registered.
        let id = try #require(job["id"] as? String)
        let described = try CLI.json(try await CLI.run(["jobs", "describe", id, "--data-dir", data, "--json"]).stdout)
        let steps = (described["steps"] as? [[String: Any]]) ?? []
        #expect(steps.isEmpty, "\(steps)")
        let images = try JSONSerialization.jsonObject(with: Data(try await CLI.run(["images", "list", "--data-dir", data, "--json"]).stdout.utf8)) as? [Any]
        #expect(images?.isEmpty == true)
    }

    @Test("zypper builds an aarch64 image whose scriptlets and config.sh ran aarch64 programs; a customize script and an SSH session there see aarch64")
    func zypperAndCustomize() async throws {
        let repository = try TestRepository(arch: "aarch64")
        let data = Self.newData()
        try Self.site(data, yaml: Self.allowed)
        let mountedBefore = FileManager.default.fileExists(atPath: Self.binfmt + "/register")
        let build = try await Self.build("sles15", repository: repository, data: data, name: "arm-zypper")
        let (imageID, _) = try Self.checkImage(build, label: "zypper")
        #expect(build.result.stdout.contains("registered by ims as the binfmt_misc entry 'ims-qemu-aarch64'") || Self.siteHasAarch64Entry,
                "\(build.result.stdout.suffix(2000))")

        let script = data + "-site/customize.sh"
        try "#!/bin/sh\nuname -m > /etc/arch-seen\necho \"$IMS_ARCH\" > /etc/ims-arch-seen\n".write(toFile: script, atomically: true, encoding: .utf8)
        let run = try await CLI.run([
            "jobs", "create", "--job-type", "customize", "--artifact-id", imageID, "--image-root-archive-name", "arm-custom",
            "--script", script, "--data-dir", data, "--config-dir", data + "-site", "--json",
        ])
        #expect(run.status == 0, "\(run.stderr.suffix(3000))")
        let jobs = try JSONSerialization.jsonObject(with: Data(try await CLI.run(["jobs", "list", "--job-type", "customize", "--data-dir", data, "--json"]).stdout.utf8)) as? [[String: Any]]
        let newID = try #require(jobs?.first?["resultant_image_id"] as? String)
        let root = try EndToEndTests.unsquash(newID, data: data, into: "customized")
        #expect(try String(contentsOfFile: root + "/etc/arch-seen", encoding: .utf8) == "aarch64\n")
        #expect(try String(contentsOfFile: root + "/etc/ims-arch-seen", encoding: .utf8) == "aarch64\n")
        #expect(!FileManager.default.fileExists(atPath: Self.entry), "\(Self.entry) was left registered")

        // A person's SSH session (jailed) on the aarch64 image: the shell and its commands are aarch64 programs.
        let site = data + "-site"
        try (Self.allowed + "customize_ssh: {listen_address: 127.0.0.1}\n").write(toFile: site + "/ims.yaml", atomically: true, encoding: .utf8)
        let key = data + "/job-key"
        #expect(try CLI.runTool("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]).status == 0)
        let registered = try await CLI.run(["public-keys", "create", "--name", "arm-admin", "--public-key", key + ".pub", "--data-dir", data, "--json"])
        let keyID = try #require(try CLI.json(registered.stdout)["id"] as? String, "\(registered.stderr)")
        let started = try await CLI.run([
            "jobs", "create", "--job-type", "customize", "--artifact-id", imageID, "--image-root-archive-name", "arm-ssh",
            "--public-key-id", keyID, "--jail", "--detach", "--json", "--data-dir", data, "--config-dir", site,
        ])
        let sessionID = try #require(try CLI.json(started.stdout)["id"] as? String, "\(started.stderr)")
        let container = try await SSHSessionTests.connection(sessionID, data: data)
        let port = try #require((container["connection_info"] as? [String: [String: Any]])?["customer_access"]?["port"] as? Int)
        #expect(FileManager.default.fileExists(atPath: Self.entry) || Self.siteHasAarch64Entry, "no interpreter while the session runs")
        let login = try SSHSessionTests.ssh(key, port, "uname -m | tee /etc/ssh-arch")
        #expect(login.status == 0 && login.stdout == "aarch64\n", "\(login.stdout) \(login.stderr)")
        #expect(try SSHSessionTests.ssh(key, port, "touch /tmp/complete").status == 0)
        #expect(try await EndToEndTests.waitForStatus(sessionID, "success", data: data) == "success")
        let sessionImage = try #require(await EndToEndTests.jobStatus(sessionID, data: data)["resultant_image_id"] as? String)
        let sessionRoot = try EndToEndTests.unsquash(sessionImage, data: data, into: "ssh-customized")
        #expect(try String(contentsOfFile: sessionRoot + "/etc/ssh-arch", encoding: .utf8) == "aarch64\n")
        #expect(!FileManager.default.fileExists(atPath: Self.entry), "\(Self.entry) was left registered after the session")
        // binfmt_misc is as it was before the jobs (ims unmounts it when it mounted it).
        #expect(FileManager.default.fileExists(atPath: Self.binfmt + "/register") == mountedBefore)
    }

    @Test("dnf (--forcearch) builds an aarch64 image with the same guarantees")
    func dnf() async throws {
        let repository = try TestRepository(arch: "aarch64")
        let data = Self.newData()
        try Self.site(data, yaml: Self.allowed)
        _ = try Self.checkImage(try await Self.build("rhel9", repository: repository, data: data, name: "arm-dnf"), label: "dnf")
    }

    @Test("kiwi-ng (--target-arch) builds an aarch64 image with the same guarantees")
    func kiwi() async throws {
        let repository = try TestRepository(arch: "aarch64")
        let data = Self.newData()
        try Self.site(
            data, yaml: Self.allowed,
            pipeline: "extends: create\noverride:\n  build-root: {plugin: org.ims.builder.kiwi, selectors: {package_manager: [kiwi-ng]}}\n")
        // kiwi-ng adds its package manager to an image section's bootstrap: the bootstrap-only example, with the
        // SUSE example's config.sh (which runs aarch64 mkdir and date).
        let configSh = try String(contentsOfFile: CLI.repositoryRoot + "/examples/sles15/config.sh", encoding: .utf8)
        _ = try Self.checkImage(
            try await Self.build("kiwi-bootstrap", repository: repository, data: data, name: "arm-kiwi", configSh: configSh), label: "kiwi")
    }
}

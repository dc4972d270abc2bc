import Foundation
import IMSPluginHost
import IMSProtocol
import Testing

/// The squashfs packager plugin (Plugins/package-squashfs) with the real mksquashfs and unsquashfs.
@Suite("squashfs packager plugin", .serialized, .timeLimit(.minutes(2)))
struct PackagePluginTests {
    static let pluginDirectory = Fixtures.examplesDirectory + "/package-squashfs"

    /// A small image root with a kernel, an initrd and boot parameters.
    static func makeRoot(kernel: String = "vmlinuz", absoluteLink: Bool = false) throws -> String {
        let root = Fixtures.temporaryDirectory("ims-pkg-root")
        let fileManager = FileManager.default
        for directory in ["boot", "etc", "usr/bin", "var/cache/big"] {
            try fileManager.createDirectory(atPath: root + "/" + directory, withIntermediateDirectories: true)
        }
        try "kernel-bytes".write(toFile: root + "/boot/\(kernel)-6.1.0-ims", atomically: true, encoding: .utf8)
        try fileManager.createSymbolicLink(atPath: root + "/boot/\(kernel)", withDestinationPath: absoluteLink ? "/boot/\(kernel)-6.1.0-ims" : "\(kernel)-6.1.0-ims")
        try "initrd-bytes".write(toFile: root + "/boot/initrd-6.1.0-ims", atomically: true, encoding: .utf8)
        try "console=ttyS0,115200".write(toFile: root + "/boot/kernel-parameters", atomically: true, encoding: .utf8)
        try "welcome\n".write(toFile: root + "/etc/motd", atomically: true, encoding: .utf8)
        try Data(repeating: 7, count: 300_000).write(to: URL(fileURLWithPath: root + "/var/cache/big/blob"))
        return root
    }

    func run(root: String, config: JSONValue) async throws -> InvocationOutcome {
        let plugin = try PluginCatalog.resolve(PluginCatalog.inspect(directory: Self.pluginDirectory, origin: .explicit))
        let workspace = Fixtures.temporaryDirectory("ims-pkg-ws")
        return try await PluginInvoker.invoke(
            plugin, InvocationRequest(phase: "package", config: config, inputs: ["rootfs": ArtifactRef(path: root, kind: .dir)], workspaceRoot: workspace, strict: true))
    }

    static func unsquash(_ squashfs: String) throws -> String {
        let target = Fixtures.temporaryDirectory("ims-unsquash") + "/root"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unsquashfs")
        process.arguments = ["-no-progress", "-d", target, squashfs]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return target
    }

    static func tool(_ path: String, _ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    @Test("a full disk is named as such, with the directory and its free space, as an environment problem")
    func diskFull() async throws {
        let root = try Self.makeRoot()
        // Random bytes: mksquashfs cannot make them fit the 512 KiB the workspace's file system has.
        var random = [UInt8](repeating: 0, count: 2_000_000)
        for index in random.indices { random[index] = UInt8.random(in: 0...255) }
        try Data(random).write(to: URL(fileURLWithPath: root + "/var/cache/big/random"))
        let workspace = Fixtures.temporaryDirectory("ims-pkg-full")
        try #require(try Self.tool("/bin/mount", ["-t", "tmpfs", "-o", "size=512k", "tmpfs", workspace]) == 0, "mount a small tmpfs (needs root)")
        defer { _ = try? Self.tool("/bin/umount", ["-l", workspace]) }
        let plugin = try PluginCatalog.resolve(PluginCatalog.inspect(directory: Self.pluginDirectory, origin: .explicit))
        let outcome = try await PluginInvoker.invoke(
            plugin, InvocationRequest(phase: "package", config: ["arch": "x86_64"], inputs: ["rootfs": ArtifactRef(path: root, kind: .dir)], workspaceRoot: workspace))
        let error = try #require(outcome.error, "the package step succeeded on a full disk")
        #expect(error.code == "package.no_space")
        #expect(error.category == .environment)
        #expect(error.message.contains("the disk is full") && error.message.contains(workspace), "\(error.message)")
        #expect(!error.message.contains("Creating 4.0 filesystem"), "the banner is not the reason: \(error.message)")
    }

    @Test("packages the root with IMS's defaults and extracts kernel, initrd and boot parameters")
    func defaults() async throws {
        let root = try Self.makeRoot()
        let outcome = try await run(root: root, config: ["arch": "x86_64"])
        let result = try #require(outcome.result, "\(outcome.error?.description ?? "")")
        #expect(Set(result.outputs.keys) == ["rootfs", "kernel", "initrd", "boot_parameters"])
        let rootfs = try #require(result.outputs["rootfs"])
        #expect(rootfs.mediaType == "application/vnd.cray.image.rootfs.squashfs")
        let unpacked = try Self.unsquash(rootfs.path)
        #expect(try String(contentsOfFile: unpacked + "/etc/motd", encoding: .utf8) == "welcome\n")
        #expect(FileManager.default.fileExists(atPath: unpacked + "/boot/vmlinuz-6.1.0-ims"), "IMS keeps /boot in the rootfs")
        #expect(try String(contentsOfFile: try #require(result.outputs["kernel"]).path, encoding: .utf8) == "kernel-bytes")
        #expect(try String(contentsOfFile: try #require(result.outputs["initrd"]).path, encoding: .utf8) == "initrd-bytes")
        #expect(result.facts["compressor"]?.stringValue == "gzip")
        #expect(result.facts["block_size"]?.numberValue == 131072)
        let md5 = try #require(result.metadata["md5"]?["kernel"]?.stringValue)
        #expect(md5.count == 32)
        // The digest the plugin reports is the file's real sha256.
        let data = try Data(contentsOf: URL(fileURLWithPath: rootfs.path))
        #expect(rootfs.digest == "sha256:" + SHA256Hex.of(data))
    }

    @Test("reproducible mode gives identical bytes for the same root")
    func reproducible() async throws {
        let root = try Self.makeRoot()
        let first = try #require(try await run(root: root, config: ["reproducible": true, "source_date_epoch": 1_700_000_000]).result)
        // Touch every file: mtimes must not leak into the image.
        let touch = Process()
        touch.executableURL = URL(fileURLWithPath: "/usr/bin/find")
        touch.arguments = [root, "-exec", "touch", "-h", "{}", "+"]
        try touch.run()
        touch.waitUntilExit()
        let second = try #require(try await run(root: root, config: ["reproducible": true, "source_date_epoch": 1_700_000_000]).result)
        #expect(first.outputs["rootfs"]?.digest == second.outputs["rootfs"]?.digest)
    }

    @Test("compressors, block size and excludes", arguments: ["xz", "zstd", "lz4"])
    func options(compressor: String) async throws {
        let root = try Self.makeRoot()
        let outcome = try await run(root: root, config: ["compressor": .string(compressor), "block_size": 262144, "processors": 1, "excludes": ["var/cache/*"]])
        let result = try #require(outcome.result, "\(outcome.error?.description ?? "")")
        let unpacked = try Self.unsquash(try #require(result.outputs["rootfs"]).path)
        #expect(!FileManager.default.fileExists(atPath: unpacked + "/var/cache/big"))
        #expect(FileManager.default.fileExists(atPath: unpacked + "/etc/motd"))
        #expect(result.facts["compressor"]?.stringValue == compressor)
    }

    @Test("aarch64 defaults to Image, and absolute symlinks resolve inside the root")
    func aarch64() async throws {
        let root = try Self.makeRoot(kernel: "Image", absoluteLink: true)
        let outcome = try await run(root: root, config: ["arch": "aarch64"])
        let result = try #require(outcome.result, "\(outcome.error?.description ?? "")")
        #expect(try String(contentsOfFile: try #require(result.outputs["kernel"]).path, encoding: .utf8) == "kernel-bytes")
    }

    @Test("versioned names are found when the plain name is missing")
    func versionedNames() async throws {
        let root = try Self.makeRoot()
        try FileManager.default.removeItem(atPath: root + "/boot/vmlinuz")
        try "newer".write(toFile: root + "/boot/vmlinuz-6.10.0-ims", atomically: true, encoding: .utf8)
        let result = try #require(try await run(root: root, config: [:]).result)
        #expect(try String(contentsOfFile: try #require(result.outputs["kernel"]).path, encoding: .utf8) == "newer")
    }

    @Test("a missing kernel is a clear error that lists /boot")
    func missingKernel() async throws {
        let root = try Self.makeRoot()
        let outcome = try await run(root: root, config: ["kernel_file_name": "bzImage"])
        let error = try #require(outcome.error)
        #expect(error.code == "package.missing_kernel")
        #expect(error.category == .user)
        #expect(error.message.contains("bzImage") && error.message.contains("vmlinuz-6.1.0-ims") && error.message.contains("initrd-6.1.0-ims"))
    }

    @Test("bad config is refused with a pointer to the field")
    func badConfig() async throws {
        let root = try Self.makeRoot()
        let outcome = try await run(root: root, config: ["compressor": "brotli"])
        #expect(outcome.error?.code == "package.invalid_config")
        #expect(outcome.error?.path == "/compressor")
    }
}

@Suite("squashfs packager with SOURCE_DATE_EPOCH", .timeLimit(.minutes(1)))
struct PackagePluginEpochTests {
    @Test("reproducible mode works when the job also sets SOURCE_DATE_EPOCH (mksquashfs refuses both)")
    func epochInEnvironment() async throws {
        let root = try PackagePluginTests.makeRoot()
        let plugin = try PluginCatalog.resolve(PluginCatalog.inspect(directory: PackagePluginTests.pluginDirectory, origin: .explicit))
        let request = InvocationRequest(
            phase: "package", config: ["reproducible": true, "source_date_epoch": 1_700_000_000],
            inputs: ["rootfs": ArtifactRef(path: root, kind: .dir)], workspaceRoot: Fixtures.temporaryDirectory("ims-pkg-ws"),
            sourceDateEpoch: 1_700_000_000)
        let outcome = try await PluginInvoker.invoke(plugin, request)
        #expect(outcome.succeeded, "\(outcome.error?.description ?? "")")
    }
}

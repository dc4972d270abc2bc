import Foundation
import IMSEngine
import IMSProtocol
import Testing

/// The phase cache's rules without a job: how keys are made, what a digest covers, and how entries are stored,
/// restored, evicted and survive concurrent writers and killed processes.
@Suite("Phase cache: keys, digests and entries")
struct PhaseCacheTests {
    static let base = PhaseCacheKey(
        pluginID: "org.ims.builder.zypper", pluginVersion: "1.0.0", pluginDigest: "sha256:aa", tools: ["zypper": "sha256:01"],
        phase: "build-root", arch: "x86_64", config: .object(["releasever": .string("15.6"), "repositories": .array([.string("https://m/x")])]),
        sourceDateEpoch: 1_700_000_000, inputs: ["recipe": "sha256:bb"], files: ["/etc/ims/ca.pem": "sha256:cc"],
        repositories: ["https://m/x": "sha256:dd"])

    @Test("every input of a key changes it", arguments: [
        ("plugin id", { @Sendable (key: inout PhaseCacheKey) in key.pluginID = "org.site.builder" }),
        ("plugin version", { $0.pluginVersion = "1.0.1" }),
        ("plugin files", { $0.pluginDigest = "sha256:ab" }),
        ("a host tool", { $0.tools["zypper"] = "sha256:02" }),
        ("phase", { $0.phase = "inject-ca" }),
        ("arch", { $0.arch = "aarch64" }),
        ("a config value", { $0.config = .object(["releasever": .string("15.7"), "repositories": .array([.string("https://m/x")])]) }),
        ("source date", { $0.sourceDateEpoch = 1_700_000_001 }),
        ("no source date", { $0.sourceDateEpoch = nil }),
        ("an input artifact", { $0.inputs["recipe"] = "sha256:bc" }),
        ("another input", { $0.inputs["description"] = "sha256:bb" }),
        ("a file the config names (site CA)", { $0.files["/etc/ims/ca.pem"] = "sha256:cd" }),
        ("repository metadata", { $0.repositories["https://m/x"] = "sha256:de" }),
    ] as [(String, @Sendable (inout PhaseCacheKey) -> Void)])
    func everyInputChangesTheKey(_ name: String, _ change: @Sendable (inout PhaseCacheKey) -> Void) {
        var changed = Self.base
        change(&changed)
        #expect(changed.digest != Self.base.digest, "changing \(name) kept the key")
        #expect(Self.base.digest.count == 64)
    }

    @Test("the same inputs give the same key, whatever the order they were collected in")
    func stableKeys() {
        let reordered = PhaseCacheKey(
            pluginID: "org.ims.builder.zypper", pluginVersion: "1.0.0", pluginDigest: "sha256:aa", tools: ["zypper": "sha256:01"],
            phase: "build-root", arch: "x86_64", config: .object(["repositories": .array([.string("https://m/x")]), "releasever": .string("15.6")]),
            sourceDateEpoch: 1_700_000_000, inputs: ["recipe": "sha256:bb"], files: ["/etc/ims/ca.pem": "sha256:cc"],
            repositories: ["https://m/x": "sha256:dd"])
        #expect(reordered.digest == Self.base.digest)
    }

    @Test("job-specific paths and ids are replaced by placeholders, longest first")
    func normalisation() {
        let workspace = "/var/lib/ims/jobs/0b6f"
        let config: JSONValue = .object([
            "ca_bundle": .string(workspace + "/site-ca.pem"),
            "list": .array([.string("job 0b6f-1 in " + workspace)]),
            "count": .number(3),
        ])
        let normalised = PhaseCacheKey.normalise(config, replacing: [("0b6f-1", "${job_id}"), (workspace, "${workspace}")])
        #expect(normalised == .object([
            "ca_bundle": .string("${workspace}/site-ca.pem"),
            "list": .array([.string("job ${job_id} in ${workspace}")]),
            "count": .number(3),
        ]))
    }

    @Test("a config names files by absolute path: regular files count, directories and devices do not")
    func referencedPaths() throws {
        let directory = Self.temporary("ims-cache-paths")
        try "pem".write(toFile: directory + "/ca.pem", atomically: true, encoding: .utf8)
        let config: JSONValue = .object([
            "ca_bundle": .string(directory + "/ca.pem"), "root": .string("/"), "device": .string("/dev/zero"),
            "missing": .string(directory + "/none"), "relative": .string("ca.pem"),
        ])
        #expect(PhaseCacheKey.referencedPaths(in: config) == [directory + "/ca.pem"])
    }

    @Test("a tree's digest covers names, content, modes, owners and link targets, not times", arguments: [
        "content", "mode", "new file", "rename", "link target",
    ])
    func treeDigest(_ change: String) throws {
        let root = Self.temporary("ims-cache-tree")
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try "a".write(toFile: root + "/etc/file", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root + "/link", withDestinationPath: "etc/file")
        let before = try ContentDigest.of(path: root)
        // Times alone leave the digest as it was.
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1)], ofItemAtPath: root + "/etc/file")
        #expect(try ContentDigest.of(path: root) == before)
        switch change {
        case "content": try "b".write(toFile: root + "/etc/file", atomically: true, encoding: .utf8)
        case "mode": try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: root + "/etc/file")
        case "new file": FileManager.default.createFile(atPath: root + "/etc/empty", contents: Data())
        case "rename": try FileManager.default.moveItem(atPath: root + "/etc/file", toPath: root + "/etc/file2")
        default:
            try FileManager.default.removeItem(atPath: root + "/link")
            try FileManager.default.createSymbolicLink(atPath: root + "/link", withDestinationPath: "etc/other")
        }
        #expect(try ContentDigest.of(path: root) != before, "\(change) kept the digest")
    }

    // MARK: Entries

    static func temporary(_ label: String) -> String {
        let path = NSTemporaryDirectory() + label + "-" + UUID().uuidString.lowercased().prefix(10)
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A phase result with a directory and a file output, made in a fresh workspace.
    static func result(in workspace: String, text: String = "root") throws -> PhaseResult {
        let out = workspace + "/phases/build-root/out"
        try FileManager.default.createDirectory(atPath: out + "/rootfs/etc", withIntermediateDirectories: true)
        try text.write(toFile: out + "/rootfs/etc/os-release", atomically: true, encoding: .utf8)
        try "[]".write(toFile: out + "/packages.json", atomically: true, encoding: .utf8)
        return PhaseResult(
            outputs: ["rootfs": ArtifactRef(path: out + "/rootfs", kind: .dir), "package_list": ArtifactRef(path: out + "/packages.json", kind: .file)],
            metadata: ["m": .string("v")], facts: ["package_count": .number(0)])
    }

    static func key(_ stamp: String) -> PhaseCacheKey {
        var key = base
        key.inputs["stamp"] = stamp
        return key
    }

    @Test("a stored entry is restored as hard links with the plugin's facts; materialize makes private copies")
    func storeAndRestore() async throws {
        let cache = PhaseCache(directory: Self.temporary("ims-cache"), maxBytes: 1 << 30)
        let workspace = Self.temporary("ims-cache-ws")
        let key = Self.key("a")
        #expect(cache.lookup(key.digest) == nil)
        let stored = try #require(try await cache.store(key: key, result: try Self.result(in: workspace), step: "build-root", seconds: 12.5, workspace: workspace))
        #expect(stored.sizeBytes > 0)
        let entry = try #require(cache.lookup(key.digest))
        #expect(entry.seconds == 12.5 && entry.step == "build-root" && entry.inputs == key)

        let target = Self.temporary("ims-cache-restore")
        let restored = try await cache.restore(entry, into: target)
        #expect(restored.facts == ["package_count": .number(0)] && restored.metadata == ["m": .string("v")])
        let rootfs = try #require(restored.outputs["rootfs"])
        #expect(rootfs.kind == .dir && rootfs.path == target + "/rootfs")
        #expect(try String(contentsOfFile: rootfs.path + "/etc/os-release", encoding: .utf8) == "root")
        #expect(try String(contentsOfFile: try #require(restored.outputs["package_list"]).path, encoding: .utf8) == "[]")
        let links = try #require(try FileManager.default.attributesOfItem(atPath: rootfs.path + "/etc/os-release")[.referenceCount] as? Int)
        #expect(links >= 2, "a restored file is a hard link into the cache")

        try await PhaseCache.materialize(rootfs)
        try "changed".write(toFile: rootfs.path + "/etc/os-release", atomically: false, encoding: .utf8)
        let again = try await cache.restore(try #require(cache.lookup(key.digest)), into: Self.temporary("ims-cache-restore"))
        #expect(try String(contentsOfFile: try #require(again.outputs["rootfs"]).path + "/etc/os-release", encoding: .utf8) == "root",
                "changing a materialized output changed the cache")
    }

    @Test("outputs outside the job's workspace are not stored")
    func outsideWorkspace() async throws {
        let cache = PhaseCache(directory: Self.temporary("ims-cache"), maxBytes: 1 << 30)
        let workspace = Self.temporary("ims-cache-ws")
        let result = try Self.result(in: Self.temporary("ims-cache-elsewhere"))
        #expect(try await cache.store(key: Self.key("a"), result: result, step: "s", seconds: 1, workspace: workspace) == nil)
        #expect(cache.entries().isEmpty)
    }

    @Test("an unfinished entry left by a killed process is never used, and prune removes it once old")
    func killedWriter() async throws {
        let directory = Self.temporary("ims-cache")
        let cache = PhaseCache(directory: directory, maxBytes: 1 << 30)
        let key = Self.key("a")
        // What a writer killed before its rename leaves: a staging directory with outputs and even an entry.json.
        let staging = directory + "/tmp/killed"
        try FileManager.default.createDirectory(atPath: staging + "/outputs", withIntermediateDirectories: true)
        try "{}".write(toFile: staging + "/entry.json", atomically: true, encoding: .utf8)
        #expect(cache.lookup(key.digest) == nil)
        #expect(cache.entries().isEmpty)
        #expect(cache.prune(maxBytes: 1 << 30).removedIncomplete == 0, "a young staging directory may belong to a live writer")
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -7200)], ofItemAtPath: staging)
        #expect(cache.prune(maxBytes: 1 << 30).removedIncomplete == 1)
        #expect(!FileManager.default.fileExists(atPath: staging))
        // An entry whose entry.json does not match its key is not used either.
        let workspace = Self.temporary("ims-cache-ws")
        let stored = try #require(try await cache.store(key: key, result: try Self.result(in: workspace), step: "s", seconds: 1, workspace: workspace))
        let path = directory + "/entries/" + stored.key.prefix(2) + "/" + stored.key + "/entry.json"
        try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: stored.key, with: String(repeating: "0", count: 64))
            .write(toFile: path, atomically: true, encoding: .utf8)
        #expect(cache.lookup(key.digest) == nil)
    }

    @Test("concurrent writers of one key leave one entry, and every restore sees a whole one")
    func concurrentWriters() async throws {
        let cache = PhaseCache(directory: Self.temporary("ims-cache"), maxBytes: 1 << 30)
        let key = Self.key("shared")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<6 {
                group.addTask {
                    let workspace = Self.temporary("ims-cache-ws-\(index)")
                    _ = try await cache.store(key: key, result: try Self.result(in: workspace), step: "s", seconds: 1, workspace: workspace)
                }
            }
            try await group.waitForAll()
        }
        #expect(cache.entries().count == 1)
        let restored = try await cache.restore(try #require(cache.lookup(key.digest)), into: Self.temporary("ims-cache-restore"))
        #expect(restored.outputs.count == 2)
        #expect((try? FileManager.default.contentsOfDirectory(atPath: cache.directory + "/tmp"))?.isEmpty ?? true)
    }

    @Test("over its size the cache removes least recently used entries first, never the one just stored")
    func leastRecentlyUsed() async throws {
        let directory = Self.temporary("ims-cache")
        var cache = PhaseCache(directory: directory, maxBytes: 1 << 30)
        var keys: [PhaseCacheKey] = []
        for index in 0..<3 {
            let workspace = Self.temporary("ims-cache-ws")
            let key = Self.key("k\(index)")
            keys.append(key)
            try await cache.store(key: key, result: try Self.result(in: workspace, text: String(repeating: "x", count: 20_000)), step: "s", seconds: 1, workspace: workspace)
            // Distinct use times, oldest first.
            let path = directory + "/entries/" + key.digest.prefix(2) + "/" + key.digest
            try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: Double(index - 10) * 60)], ofItemAtPath: path)
        }
        // Using the oldest makes it the newest.
        #expect(cache.lookup(keys[0].digest) != nil)
        let sizes = cache.entries().map(\.entry.sizeBytes)
        let report = cache.prune(maxBytes: sizes.reduce(0, +) - 1)
        #expect(report.removedEntries == 1)
        #expect(cache.lookup(keys[1].digest) == nil, "the least recently used entry goes first")
        #expect(cache.lookup(keys[0].digest) != nil && cache.lookup(keys[2].digest) != nil)
        // A store above the limit keeps the entry it just made.
        cache.maxBytes = 0
        let workspace = Self.temporary("ims-cache-ws")
        try await cache.store(key: Self.key("new"), result: try Self.result(in: workspace), step: "s", seconds: 1, workspace: workspace)
        #expect(cache.entries().map(\.entry.key) == [Self.key("new").digest])
        #expect(cache.clear().removedEntries == 1)
        #expect(cache.entries().isEmpty)
    }
}

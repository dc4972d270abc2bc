import Crypto
import Foundation
import IMSPluginHost
import IMSProtocol
import Testing

@Suite("Discovery, manifests and selection")
struct DiscoveryTests {
    static func manifest(id: String, entrypoint: String = "bin/run", phases: String? = nil, extra: String = "") -> String {
        let phaseList = phases ?? #"[{"name":"build-root","payloads":["build-root/v1"],"selectors":{"distro_family":["suse"],"arch":["x86_64"]}}]"#
        return #"{"manifest_version":1,"id":"\#(id)","version":"1.0.0","entrypoint":"\#(entrypoint)","protocol":{"versions":[1]},"phases":\#(phaseList)\#(extra)}"#
    }

    /// Makes a plugin directory with an executable entrypoint.
    @discardableResult
    static func makePlugin(in root: String, name: String, manifest: String, script: String = "#!/bin/sh\nexit 0\n") throws -> String {
        let directory = root + "/" + name
        try FileManager.default.createDirectory(atPath: directory + "/bin", withIntermediateDirectories: true)
        try manifest.write(toFile: directory + "/plugin.json", atomically: true, encoding: .utf8)
        try script.write(toFile: directory + "/bin/run", atomically: true, encoding: .utf8)
        chmod(directory + "/bin/run", 0o755)
        chmod(directory + "/plugin.json", 0o644)
        chmod(directory, 0o755)
        return directory
    }

    func status(_ directory: String) -> DiscoveredPlugin.Status {
        PluginCatalog.inspect(directory: directory, origin: .explicit).status
    }

    @Test("a valid plugin is accepted")
    func valid() throws {
        let root = Fixtures.temporaryDirectory()
        let directory = try Self.makePlugin(in: root, name: "good", manifest: Self.manifest(id: "org.site.good"))
        #expect(status(directory) == .ok)
    }

    @Test("world-writable plugin files are refused, naming the file")
    func worldWritable() throws {
        let root = Fixtures.temporaryDirectory()
        let entry = try Self.makePlugin(in: root, name: "ww-entry", manifest: Self.manifest(id: "org.site.ww1"))
        chmod(entry + "/bin/run", 0o757)
        #expect(status(entry).reason?.contains("world-writable") == true)
        let manifestDir = try Self.makePlugin(in: root, name: "ww-manifest", manifest: Self.manifest(id: "org.site.ww2"))
        chmod(manifestDir + "/plugin.json", 0o646)
        #expect(status(manifestDir).reason?.contains("manifest") == true)
        let dir = try Self.makePlugin(in: root, name: "ww-dir", manifest: Self.manifest(id: "org.site.ww3"))
        chmod(dir, 0o777)
        #expect(status(dir).reason?.contains("directory") == true)
    }

    @Test("an entrypoint outside the plugin directory is refused", arguments: ["../outside", "/bin/sh", "bin/../../x"])
    func entrypointEscapes(entrypoint: String) throws {
        let root = Fixtures.temporaryDirectory()
        let directory = try Self.makePlugin(in: root, name: "escape", manifest: Self.manifest(id: "org.site.escape", entrypoint: entrypoint))
        let reason = status(directory).reason ?? ""
        #expect(reason.contains("entrypoint"), "\(reason)")
    }

    @Test("a symlinked entrypoint that resolves outside is refused")
    func symlinkEscape() throws {
        let root = Fixtures.temporaryDirectory()
        let directory = try Self.makePlugin(in: root, name: "link", manifest: Self.manifest(id: "org.site.link", entrypoint: "bin/tool"))
        try FileManager.default.createSymbolicLink(atPath: directory + "/bin/tool", withDestinationPath: "/bin/true")
        #expect(status(directory).reason?.contains("outside the plugin directory") == true)
    }

    @Test("manifests that fail the schema are refused with every problem", arguments: [
        (#"{"manifest_version":1}"#, "missing required field 'id'"),
        (DiscoveryTests.manifest(id: "Bad ID!"), "'id'"),
        (DiscoveryTests.manifest(id: "org.x", extra: #","surprise":1"#), "unknown field 'surprise'"),
        (DiscoveryTests.manifest(id: "org.x", phases: #"[{"name":"build-root","payloads":["package/v1"]}]"#), "does not belong"),
        (DiscoveryTests.manifest(id: "org.x", phases: "[]"), "'phases' must be a non-empty array"),
        ("not json", "not valid JSON"),
    ])
    func schemaFailures(manifest: String, expected: String) throws {
        let root = Fixtures.temporaryDirectory()
        let directory = try Self.makePlugin(in: root, name: "bad", manifest: manifest)
        let reason = status(directory).reason ?? ""
        #expect(reason.contains("manifest fails its schema") && reason.contains(expected), "\(reason)")
    }

    @Test("x- extension keys are allowed")
    func extensionKeys() throws {
        let root = Fixtures.temporaryDirectory()
        let directory = try Self.makePlugin(in: root, name: "ext", manifest: Self.manifest(id: "org.site.ext", extra: #","x-site":{"owner":"ops"}"#))
        #expect(status(directory) == .ok)
    }

    @Test("entrypoint_sha256 is verified")
    func shaCheck() throws {
        let root = Fixtures.temporaryDirectory()
        let script = "#!/bin/sh\nexit 0\n"
        let digest = SHA256.hash(data: Data(script.utf8)).map { String(format: "%02x", $0) }.joined()
        let good = try Self.makePlugin(in: root, name: "sha-good", manifest: Self.manifest(id: "org.site.sha1", extra: #","entrypoint_sha256":"\#(digest)""#), script: script)
        #expect(status(good) == .ok)
        let wrong = String(repeating: "0", count: 64)
        let bad = try Self.makePlugin(in: root, name: "sha-bad", manifest: Self.manifest(id: "org.site.sha2", extra: #","entrypoint_sha256":"\#(wrong)""#), script: script)
        #expect(status(bad).reason?.contains("sha256") == true)
    }

    @Test("the first plugin with an id wins and later ones are reported as shadowed")
    func shadowing() throws {
        let first = Fixtures.temporaryDirectory()
        let second = Fixtures.temporaryDirectory()
        try Self.makePlugin(in: first, name: "a", manifest: Self.manifest(id: "org.site.same"))
        try Self.makePlugin(in: second, name: "b", manifest: Self.manifest(id: "org.site.same"))
        let catalog = PluginCatalog(searchPath: PluginSearchPath(entries: [.init(directory: first, origin: .environment), .init(directory: second, origin: .site)]))
        #expect(catalog.plugins.count == 2)
        #expect(catalog.plugins[0].status == .ok)
        #expect(catalog.plugins[1].status == .shadowed(by: catalog.plugins[0].directory))
        #expect(try catalog.resolve("ORG.SITE.SAME").directory == catalog.plugins[0].directory)
    }

    @Test("IMS_PLUGIN_PATH comes before the site, vendor and checkout directories")
    func precedence() {
        let path = PluginSearchPath.standard(explicit: ["/cli"], environment: ["IMS_PLUGIN_PATH": "/env1:/env2"], executablePath: Fixtures.repositoryRoot + "/.build/debug/ims")
        #expect(path.entries.map(\.directory) == ["/cli", "/env1", "/env2", "/etc/ims/plugins", "/usr/lib/ims/plugins", Fixtures.repositoryRoot + "/Plugins"])
        #expect(path.entries.map(\.origin) == [.explicit, .environment, .environment, .site, .vendor, .checkout])
    }

    @Test("selection by phase, distro family, package manager and arch")
    func selection() throws {
        let root = Fixtures.temporaryDirectory()
        try Self.makePlugin(in: root, name: "suse", manifest: Self.manifest(id: "org.site.suse", phases: #"[{"name":"build-root","payloads":["build-root/v1"],"selectors":{"distro_family":["suse"],"package_manager":["zypper"]}}]"#))
        try Self.makePlugin(in: root, name: "rhel", manifest: Self.manifest(id: "org.site.rhel", phases: #"[{"name":"build-root","payloads":["build-root/v1"],"selectors":{"distro_family":["rhel"],"arch":["x86_64"]}}]"#))
        try Self.makePlugin(in: root, name: "any", manifest: Self.manifest(id: "org.site.any", phases: #"[{"name":"package","payloads":["package/v1"]}]"#))
        let catalog = PluginCatalog(searchPath: PluginSearchPath(entries: [.init(directory: root, origin: .explicit)]))
        #expect(try PluginSelector.select(phase: "build-root", criteria: .init(distroFamily: "suse", packageManager: "zypper"), in: catalog).id == "org.site.suse")
        #expect(try PluginSelector.select(phase: "build-root", criteria: .init(distroFamily: "rhel", arch: "x86_64"), in: catalog).id == "org.site.rhel")
        #expect(try PluginSelector.select(phase: "package", criteria: .init(distroFamily: "rhel", arch: "aarch64"), in: catalog).id == "org.site.any")
        do {
            _ = try PluginSelector.select(phase: "build-root", criteria: .init(distroFamily: "rhel", arch: "aarch64"), in: catalog)
            Issue.record("expected no match")
        } catch {
            guard case .noMatchingPlugin(_, let criteria, let candidates) = error else { Issue.record("\(error)"); return }
            #expect(criteria.contains("arch=aarch64"))
            #expect(Set(candidates) == ["org.site.suse", "org.site.rhel"])
        }
        do {
            _ = try PluginSelector.select(phase: "build-root", criteria: .init(), in: catalog)
            Issue.record("expected ambiguity")
        } catch {
            guard case .ambiguousPlugins(_, _, let ids) = error else { Issue.record("\(error)"); return }
            #expect(Set(ids) == ["org.site.suse", "org.site.rhel"])
            #expect(error.description.contains("pin one by id"))
        }
        #expect(try PluginSelector.select(phase: "build-root", criteria: .init(), pinned: "org.site.rhel", in: catalog).id == "org.site.rhel")
        // Pinning is the site's explicit choice, even where the plugin's selectors would not match.
        #expect(try PluginSelector.select(phase: "build-root", criteria: .init(distroFamily: "suse"), pinned: "org.site.rhel", in: catalog).id == "org.site.rhel")
        #expect(throws: PluginHostError.self) { try PluginSelector.select(phase: "package", criteria: .init(), pinned: "org.site.rhel", in: catalog) }
    }

    @Test("every bundled example manifest passes the in-process validator")
    func bundledManifests() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Fixtures.examplesDirectory)
        for name in names {
            let path = Fixtures.examplesDirectory + "/" + name + "/plugin.json"
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            #expect(throws: Never.self) { try ManifestValidator.load(data: data, path: path) }
        }
    }

    @Test("refusal messages name the plugin")
    func refusalNamesPlugin() throws {
        let root = Fixtures.temporaryDirectory()
        let directory = try Self.makePlugin(in: root, name: "named", manifest: Self.manifest(id: "org.site.named"))
        chmod(directory + "/bin/run", 0o757)
        let discovered = PluginCatalog.inspect(directory: directory, origin: .explicit)
        do {
            _ = try PluginCatalog.resolve(discovered)
            Issue.record("expected refusal")
        } catch {
            #expect(error.description.contains("org.site.named") && error.description.contains("world-writable"))
        }
    }
}

@Suite("Manifest validator agrees with the JSON Schema")
struct ManifestSchemaParityTests {
    static func files(_ directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("manifest") && $0.hasSuffix(".json") }.sorted().map { directory + "/" + $0 }
    }

    @Test("schema-valid manifests pass the in-process validator")
    func validOnes() throws {
        let files = Self.files(Fixtures.repositoryRoot + "/protocol/examples")
        #expect(files.count >= 3)
        for path in files {
            let data = try #require(FileManager.default.contents(atPath: path))
            #expect(throws: Never.self, "\(path)") { try ManifestValidator.load(data: data, path: path) }
        }
    }

    @Test("schema-invalid manifests fail the in-process validator")
    func invalidOnes() throws {
        let files = Self.files(Fixtures.repositoryRoot + "/protocol/examples/invalid")
        #expect(files.count >= 5)
        for path in files {
            let data = try #require(FileManager.default.contents(atPath: path))
            #expect(throws: PluginHostError.self, "\(path)") { try ManifestValidator.load(data: data, path: path) }
        }
    }
}

import Foundation
import IMSCatalog
import IMSEngine
import IMSPluginHost
import IMSStore
import Logging

enum EngineFixtures {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static func temporaryDirectory(_ label: String) -> String {
        let path = NSTemporaryDirectory() + label + "-" + UUID().uuidString.lowercased().prefix(10)
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A minimal SUSE recipe whose repository is a local directory (no network needed).
    static func makeRecipe(templated: Bool = false, repositorySource: String = "dir:///srv/repos/base") throws -> String {
        let directory = temporaryDirectory("ims-recipe")
        let source = templated ? "https://mirror.example/{{ RELEASE }}/base" : repositorySource
        let xml = """
            <?xml version="1.0" encoding="utf-8"?>
            <image schemaversion="7.4" name="engine-test">
              <description type="system">
                <author>ims tests</author>
                <contact>ims@example.com</contact>
                <specification>engine test image</specification>
              </description>
              <preferences>
                <version>1.0.0</version>
                <packagemanager>zypper</packagemanager>
                <type image="tbz"/>
              </preferences>
              <repository type="rpm-md" alias="base">
                <source path="\(source)"/>
              </repository>
              <packages type="bootstrap">
                <package name="ims-test-filesystem"/>
              </packages>
              <packages type="image">
                <package name="ims-test-app"/>
              </packages>
            </image>
            """
        try xml.write(toFile: directory + "/config.xml", atomically: true, encoding: .utf8)
        if templated {
            try "template_files:\n  - config.xml\n".write(toFile: directory + "/.ims_recipe_template.yaml", atomically: true, encoding: .utf8)
        }
        return directory
    }

    struct Engine {
        var environment: EngineEnvironment
        var dataDirectory: String
        var runner: JobRunner { JobRunner(environment: environment) }
    }

    /// An engine on a fresh data directory. With `runner`, phases go to it (a ``FakePluginRunner``); without,
    /// to real plugin processes: the fixture plugins plus the bundled packager, CA injector and DNS configurator.
    static func engine(settings: SiteSettings = SiteSettings(), siteDirectory: String? = nil, runner: (any PluginRunner)? = nil) throws -> Engine {
        let data = temporaryDirectory("ims-data")
        let catalog = try Catalog(path: data + "/catalog.sqlite")
        let store = try LocalArtifactStore(root: data + "/store")
        // The test plugins, plus the real packager, CA injector, DNS configurator and SBOM writer from Plugins/ (the other
        // bundled builders would make build-root ambiguous with the fake one).
        let bundled = data + "/bundled-plugins"
        try FileManager.default.createDirectory(atPath: bundled, withIntermediateDirectories: true)
        for name in ["package-squashfs", "inject-ca", "configure-dns", "sbom-rpm"] {
            try FileManager.default.createSymbolicLink(atPath: bundled + "/" + name, withDestinationPath: repositoryRoot + "/Plugins/" + name)
        }
        let plugins = PluginCatalog(searchPath: PluginSearchPath(entries: [
            .init(directory: repositoryRoot + "/Tests/Fixtures/engine-plugins", origin: .explicit),
            .init(directory: bundled, origin: .checkout),
        ]))
        let environment = EngineEnvironment(
            catalog: catalog, store: store, plugins: plugins, settings: settings, siteDirectory: siteDirectory,
            jobsDirectory: data + "/jobs", pluginRunner: runner, logger: Logger(label: "ims.engine.test") { _ in SwiftLogNoOpLogHandler() })
        return Engine(environment: environment, dataDirectory: data)
    }
}

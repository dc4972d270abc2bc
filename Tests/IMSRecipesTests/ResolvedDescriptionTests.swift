import Foundation
import IMSKiwi
import IMSRecipes
import Testing

/// description.json as builders receive it: the parts issue #12 added (files, post_bootstrap.sh, the kiwi profile).
@Suite("Resolved description")
struct ResolvedDescriptionTests {
    static func resolve(_ body: String, preferences: String = "", files: [String: String] = [:], profiles: [String]? = []) throws -> ResolvedDescription {
        let directory = NSTemporaryDirectory() + "ims-resolved-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
            <?xml version="1.0" encoding="utf-8"?>
            <image schemaversion="7.4" name="resolved" displayname="Bob's">
              <description type="system"><author>a</author><contact>b</contact><specification>c</specification></description>
              <profiles><profile name="one" description="first"/><profile name="two" description="second"/></profiles>
              <preferences><version>1.0.0</version><packagemanager>zypper</packagemanager><timezone>UTC</timezone><type image="tbz"/></preferences>
              \(preferences)
              <repository type="rpm-md" alias="base"><source path="https://mirror.local/base/"/></repository>
              \(body)
            </image>
            """.write(toFile: directory + "/config.xml", atomically: true, encoding: .utf8)
        for (name, text) in files { try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8) }
        let description = try KiwiLoader.load(directory: directory)
        return ResolvedDescription.resolve(description, profiles: profiles, arch: "x86_64", distroFamily: "suse", recipeDirectory: directory)
    }

    @Test("<file> entries keep their section, target, owner and permissions; a type's section is kept for the builder to choose")
    func fileEntries() throws {
        let resolved = try Self.resolve("""
            <packages type="bootstrap"><package name="filesystem"/><file name="files/a" target="/etc/a" owner="root:root" permissions="0600"/></packages>
            <packages type="image"><file name="files/b"/></packages>
            """)
        #expect(resolved.files.map { [$0.name, $0.section, $0.target, $0.owner, $0.permissions] } == [
            ["files/a", "bootstrap", "/etc/a", "root:root", "0600"],
            ["files/b", "image", nil, nil, nil],
        ])
    }

    @Test("post_bootstrap.sh is named when the recipe has it", arguments: [true, false])
    func postBootstrap(present: Bool) throws {
        let resolved = try Self.resolve("<packages type=\"bootstrap\"><package name=\"filesystem\"/></packages>",
                                        files: present ? ["post_bootstrap.sh": "#!/bin/sh\n"] : [:])
        #expect(resolved.postBootstrapSh == (present ? "post_bootstrap.sh" : nil))
    }

    @Test("profile is kiwi's /.profile set for the selection, and the JSON carries it")
    func profile() throws {
        let resolved = try Self.resolve("<packages type=\"bootstrap\"><package name=\"filesystem\"/></packages>", profiles: ["two"])
        #expect(resolved.profile["kiwi_iname"] == "resolved")
        #expect(resolved.profile["kiwi_displayname"] == "Bob's")
        #expect(resolved.profile["kiwi_profiles"] == "two")
        #expect(resolved.profile["kiwi_type"] == "tbz")
        #expect(resolved.profile["kiwi_timezone"] == "UTC")
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(resolved)) as? [String: Any]
        #expect((json?["profile"] as? [String: String])?["kiwi_iname"] == "resolved")
    }

    @Test("when several selected <preferences> set a value, the last wins, as in kiwi")
    func lastPreferencesWin() throws {
        let resolved = try Self.resolve("<packages type=\"bootstrap\"><package name=\"filesystem\"/></packages>",
                                        preferences: "<preferences profiles=\"one\"><version>2.0.0</version><timezone>Europe/Berlin</timezone></preferences>",
                                        profiles: ["one"])
        #expect(resolved.version == "2.0.0")
        #expect(resolved.preferences.timezone == "Europe/Berlin")
        #expect(resolved.profile["kiwi_iversion"] == "2.0.0")
    }
}

import Foundation
import IMSKiwi
import Testing

/// One file of `Tests/Fixtures/kiwi-profile-env/`: kiwi-ng's `--print-kiwi-env` output for one corpus
/// description, for several profile and type selections.
struct KiwiProfileEnvironmentFixture: Decodable, Sendable, CustomTestStringConvertible {
    struct Case: Decodable, Sendable {
        var profiles: [String]
        var type: String?
        var kiwiEnvironment: [String: String]

        enum CodingKeys: String, CodingKey {
            case profiles, type
            case kiwiEnvironment = "kiwi_env"
        }

        var label: String {
            let profileText = profiles.isEmpty ? "default profiles" : "--profile " + profiles.joined(separator: " --profile ")
            return profileText + (type.map { " --type \($0)" } ?? "")
        }
    }

    var description: String
    var kiwiVersion: String
    var targetArch: String
    var cases: [Case]

    enum CodingKeys: String, CodingKey {
        case description, cases
        case kiwiVersion = "kiwi_version"
        case targetArch = "target_arch"
    }

    var testDescription: String { description }

    static let directory = KiwiFixtures.repositoryRoot + "/Tests/Fixtures/kiwi-profile-env"

    struct Refused: Decodable, Sendable {
        struct Entry: Decodable, Sendable {
            var id: String
            var reason: String
        }

        var refused: [Entry]
    }

    static func loadAll() throws -> [KiwiProfileEnvironmentFixture] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { $0.hasSuffix(".json") && $0 != "refused.json" }.sorted()
        return try names.map { name in
            let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))
            return try JSONDecoder().decode(KiwiProfileEnvironmentFixture.self, from: data)
        }
    }

    static func loadRefused() throws -> Refused {
        let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/refused.json"))
        return try JSONDecoder().decode(Refused.self, from: data)
    }
}

@Suite("kiwi /.profile environment")
struct KiwiProfileEnvironmentTests {
    /// Variables kiwi writes that ims deliberately does not, with the reason (also in
    /// `KiwiProfileEnvironment.variablesNotWritten` and docs/builders.md).
    static let exceptions: [String: String] = [
        "kiwi_revision": "kiwi's own git revision ($Format:%H$ in a release); it describes the kiwi installation, not the image"
    ]

    static func environment(_ xml: String, profiles: [String] = [], buildType: String? = nil) throws -> [String: String] {
        try KiwiFixtures.load(xml).profileEnvironment(profiles: profiles, arch: "x86_64", buildType: buildType)
    }

    // MARK: The oracle

    @Test("every corpus description kiwi accepts has a fixture; the others are listed as refused")
    func fixturesCoverCorpus() throws {
        let facts = try KiwiFacts.load()
        let fixtures = try KiwiProfileEnvironmentFixture.loadAll()
        let refused = try KiwiProfileEnvironmentFixture.loadRefused()
        #expect(Set(fixtures.map(\.description)).isDisjoint(with: refused.refused.map(\.id)))
        #expect(Set(fixtures.map(\.description)).union(refused.refused.map(\.id)) == Set(facts.map(\.id)))
        #expect(fixtures.count >= 20)
        for fixture in fixtures {
            #expect(fixture.kiwiVersion == KiwiProfileEnvironment.kiwiVersion)
            #expect(!fixture.cases.isEmpty)
        }
    }

    @Test("the environment equals kiwi-ng's for every fixture case", arguments: try KiwiProfileEnvironmentFixture.loadAll())
    func matchesKiwi(_ fixture: KiwiProfileEnvironmentFixture) throws {
        let facts = try #require(try KiwiFacts.load().first { $0.id == fixture.description })
        let description = try KiwiLoader.load(file: KiwiFixtures.valid + "/" + facts.file)
        for testCase in fixture.cases {
            var expected = testCase.kiwiEnvironment
            for name in Self.exceptions.keys { expected[name] = nil }
            let actual = description.profileEnvironment(
                profiles: testCase.profiles, arch: fixture.targetArch, buildType: testCase.type)
            let differences = Set(expected.keys).union(actual.keys).sorted().compactMap { name -> String? in
                expected[name] == actual[name]
                    ? nil : "\(name): kiwi \(expected[name].map { "'\($0)'" } ?? "unset"), ims \(actual[name].map { "'\($0)'" } ?? "unset")"
            }
            #expect(differences.isEmpty, "\(fixture.description) (\(testCase.label)):\n\(differences.joined(separator: "\n"))")
        }
    }

    @Test("the listed exceptions are the only variables ims leaves out")
    func exceptionsAreExplicit() throws {
        #expect(Set(KiwiProfileEnvironment.variablesNotWritten.keys) == Set(Self.exceptions.keys))
        let fixtures = try KiwiProfileEnvironmentFixture.loadAll()
        for name in Self.exceptions.keys {
            #expect(fixtures.allSatisfy { $0.cases.allSatisfy { $0.kiwiEnvironment[name] != nil } }, "kiwi writes \(name)")
        }
    }

    // MARK: Rules

    @Test("profiles: kiwi's default is the imported ones; requests keep their order, with requirements after each")
    func profilesJoinedWithCommas() throws {
        let xml = KiwiFixtures.description(
            schema: "8.5",
            body: """
                <profiles>
                    <profile name="zeta" description="z" import="true"/>
                    <profile name="alpha" description="a"><requires profile="beta"/></profile>
                    <profile name="beta" description="b"/>
                </profiles>
                """)
        #expect(try Self.environment(xml)["kiwi_profiles"] == "zeta")
        #expect(try Self.environment(xml, profiles: ["alpha", "zeta"])["kiwi_profiles"] == "alpha,beta,zeta")
        #expect(try Self.environment(xml, profiles: ["zeta", "alpha"])["kiwi_profiles"] == "zeta,alpha,beta")
        #expect(try Self.environment(KiwiFixtures.description(schema: "8.5"))["kiwi_profiles"] == "")
    }

    @Test("kiwi_delete: the delete packages of the selection and architecture, unique and sorted")
    func deleteList() throws {
        let xml = KiwiFixtures.description(
            schema: "8.5",
            body: """
                <profiles><profile name="A" description="a"/></profiles>
                <packages type="delete">
                    <package name="zsh"/><package name="acl"/><package name="zsh"/>
                    <package name="arm-only" arch="aarch64"/><package name="x86-only" arch="x86_64"/>
                </packages>
                <packages type="delete" profiles="A"><package name="bash"/></packages>
                <packages type="uninstall"><package name="vim"/></packages>
                """)
        #expect(try Self.environment(xml)["kiwi_delete"] == "acl x86-only zsh")
        #expect(try Self.environment(xml, profiles: ["A"])["kiwi_delete"] == "acl bash x86-only zsh")
    }

    @Test("strip lists are space-separated in document order; drivers comma-separated; file arch is not filtered")
    func stripAndDrivers() throws {
        let xml = KiwiFixtures.description(
            schema: "8.5",
            body: """
                <profiles><profile name="A" description="a"/></profiles>
                <strip type="delete"><file name="/z"/><file name="/a"/><file name="/a"/><file name="/arm" arch="aarch64"/></strip>
                <strip type="delete" profiles="A"><file name="/pa"/></strip>
                <strip type="tools"><file name="t1"/><file name="t2"/></strip>
                <strip type="libs"><file name="libx"/></strip>
                <drivers><file name="zz"/><file name="drivers/aa"/></drivers>
                <drivers profiles="A"><file name="pa"/></drivers>
                """)
        let plain = try Self.environment(xml)
        #expect(plain["kiwi_strip_delete"] == "/z /a /a /arm")
        #expect(plain["kiwi_strip_tools"] == "t1 t2")
        #expect(plain["kiwi_strip_libs"] == "libx")
        #expect(plain["kiwi_drivers"] == "zz,drivers/aa")
        let withA = try Self.environment(xml, profiles: ["A"])
        #expect(withA["kiwi_strip_delete"] == "/z /a /a /arm /pa")
        #expect(withA["kiwi_drivers"] == "zz,drivers/aa,pa")
        let none = try Self.environment(KiwiFixtures.description(schema: "8.5"))
        #expect(["kiwi_strip_delete", "kiwi_strip_tools", "kiwi_strip_libs", "kiwi_drivers"].allSatisfy { none[$0] == "" })
    }

    @Test(
        "type attributes map to variables, booleans written as true/false",
        arguments: [
            (#"ramonly="1""#, "kiwi_ramonly", "true"),
            (#"ramonly="false""#, "kiwi_ramonly", "false"),
            ("", "kiwi_ramonly", ""),
            (#"target_removable="true""#, "kiwi_target_removable", "true"),
            (#"gpt_hybrid_mbr="0""#, "kiwi_gpt_hybrid_mbr", "false"),
            (#"kernelcmdline="a='b c' d""#, "kiwi_cmdline", "a='b c' d"),
            (#"firmware="uefi""#, "kiwi_firmware", "uefi"),
            (#"devicepersistency="by-label""#, "kiwi_devicepersistency", "by-label"),
            (#"bootkernel="std""#, "kiwi_bootkernel", "std"),
            (#"fsmountoptions="noatime""#, "kiwi_fsmountoptions", "noatime"),
            (#"wwid_wait_timeout="7""#, "kiwi_wwid_wait_timeout", "7"),
            (#"target_blocksize="4096""#, "kiwi_target_blocksize", "4096"),
            ("", "kiwi_target_blocksize", "512"),
            (#"disk_start_sector="4096""#, "kiwi_startsector", "4096"),
            ("", "kiwi_startsector", "2048"),
            (#"luks="""#, "kiwi_luks_empty_passphrase", "true"),
            (#"luks="secret""#, "kiwi_luks_empty_passphrase", "false"),
            ("", "kiwi_luks_empty_passphrase", "false"),
            (#"initrd_system="kiwi""#, "kiwi_initrd_system", "kiwi"),
            ("", "kiwi_initrd_system", "dracut"),
            (#"volid="MYVOL""#, "kiwi_install_volid", "MYVOL"),
            ("", "kiwi_install_volid", "INSTALL"),
            (#"xen_server="true""#, "kiwi_xendomain", "dom0"),
            ("", "kiwi_rootpartuuid", ""),
        ])
    func typeAttributes(attribute: String, variable: String, value: String) throws {
        let xml = KiwiFixtures.description(schema: "8.5", types: #"<type image="oem" filesystem="ext4" \#(attribute)/>"#)
        #expect(try Self.environment(xml)[variable] == value)
    }

    @Test("btrfs_root_is_snapper_snapshot sets both snapshot variables; xen_server false sets no domain")
    func typeSpecialCases() throws {
        let snapper = try Self.environment(
            KiwiFixtures.description(schema: "8.5", types: #"<type image="oem" filesystem="btrfs" btrfs_root_is_snapper_snapshot="true"/>"#))
        #expect(snapper["kiwi_btrfs_root_is_snapper_snapshot"] == "true")
        #expect(snapper["kiwi_btrfs_root_is_snapshot"] == "true")
        let noXen = try Self.environment(
            KiwiFixtures.description(schema: "8.5", types: #"<type image="oem" filesystem="ext4" xen_server="false"/>"#))
        #expect(noXen["kiwi_xendomain"] == nil)
    }

    @Test(
        "the initrd system and volume ids depend on the image type",
        arguments: [
            ("tbz", "none", [String: String]()), ("iso", "dracut", ["kiwi_live_volid": "CDROM"]),
            ("pxe", "kiwi", [:]), ("kis", "dracut", [:]), ("cpio", "none", ["kiwi_cpio_name": "test"]),
            ("oci", "none", [:]),
        ])
    func imageTypeDefaults(image: String, initrd: String, extra: [String: String]) throws {
        let environment = try Self.environment(KiwiFixtures.description(schema: "8.5", types: #"<type image="\#(image)"/>"#))
        #expect(environment["kiwi_type"] == image)
        #expect(environment["kiwi_initrd_system"] == initrd)
        for (name, value) in extra { #expect(environment[name] == value) }
        for name in ["kiwi_live_volid", "kiwi_cpio_name", "kiwi_install_volid"] where extra[name] == nil {
            #expect(environment[name] == nil)
        }
    }

    @Test(
        "the bootloader console is output:input, an unset input following the output",
        arguments: [
            ("", "default:default"),
            (#"output_console="serial""#, "serial:serial"),
            (#"input_console="serial""#, "default:serial"),
            (#"output_console="gfxterm serial" input_console="console serial""#, "gfxterm serial:console serial"),
        ])
    func bootloaderConsole(attributes: String, console: String) throws {
        let xml = KiwiFixtures.description(
            schema: "8.5", types: #"<type image="oem" filesystem="ext4"><bootloader name="grub2" \#(attributes)/></type>"#)
        #expect(try Self.environment(xml)["kiwi_bootloader_console"] == console)
    }

    @Test("bootloader name, timeout and video mode, with kiwi's defaults")
    func bootloaderAttributes() throws {
        let set = try Self.environment(
            KiwiFixtures.description(
                schema: "8.5",
                types: #"<type image="oem" filesystem="ext4"><bootloader name="systemd_boot" timeout="3" video_mode="1024x768"/></type>"#))
        #expect(set["kiwi_bootloader"] == "systemd_boot")
        #expect(set["kiwi_boot_timeout"] == "3")
        #expect(set["kiwi_vga"] == "1024x768")
        let unset = try Self.environment(KiwiFixtures.description(schema: "8.5"))
        #expect(unset["kiwi_bootloader"] == "grub2")
        #expect(unset["kiwi_boot_timeout"] == "")
        #expect(unset["kiwi_vga"] == "auto")
    }

    @Test("the build type: --type takes the first of that image; otherwise the first primary, else the first")
    func buildTypeSelection() throws {
        let xml = """
            <?xml version="1.0" encoding="utf-8"?>
            <image schemaversion="8.5" name="m1">
                <description type="system"><author>T</author><contact>t@e</contact><specification>s</specification></description>
                <profiles><profile name="A" description="a"/><profile name="B" description="b"/><profile name="C" description="c"/></profiles>
                <preferences>
                    <version>1.0.0</version>
                    <packagemanager>zypper</packagemanager>
                    <locale>en_US</locale>
                    <type image="tbz"/>
                    <type image="xfs"/>
                </preferences>
                <preferences profiles="A">
                    <version>2.0.0</version>
                    <locale>de_DE</locale>
                    <timezone>Europe/A</timezone>
                    <type image="oem" filesystem="ext4" kernelcmdline="A1"/>
                    <type image="oem" filesystem="ext4" kernelcmdline="A2" primary="true"/>
                </preferences>
                <preferences profiles="B">
                    <timezone>Europe/B</timezone>
                    <keytable>b</keytable>
                    <type image="iso" primary="true" kernelcmdline="B"/>
                </preferences>
                <preferences profiles="C">
                    <type image="oem" filesystem="ext4" kernelcmdline="C"/>
                </preferences>
            </image>
            """
        // Each row is kiwi-ng 11.1.6's answer for the same description.
        let rows: [(profiles: [String], type: String?, expected: [String: String?])] = [
            ([], nil, ["kiwi_iversion": "1.0.0", "kiwi_language": "en_US", "kiwi_timezone": nil, "kiwi_type": "tbz", "kiwi_cmdline": ""]),
            (["A"], nil, ["kiwi_iversion": "2.0.0", "kiwi_language": "de_DE", "kiwi_timezone": "Europe/A", "kiwi_type": "oem", "kiwi_cmdline": "A2"]),
            (["B"], nil, ["kiwi_iversion": "1.0.0", "kiwi_timezone": "Europe/B", "kiwi_keytable": "b", "kiwi_type": "iso", "kiwi_cmdline": "B"]),
            (["B", "A"], nil, ["kiwi_iversion": "2.0.0", "kiwi_timezone": "Europe/B", "kiwi_type": "oem", "kiwi_cmdline": "A2", "kiwi_profiles": "B,A"]),
            (["C"], nil, ["kiwi_type": "tbz", "kiwi_cmdline": ""]),
            (["A"], "oem", ["kiwi_cmdline": "A1"]),
            (["C", "A"], "oem", ["kiwi_cmdline": "A1", "kiwi_timezone": "Europe/A"]),
            ([], "xfs", ["kiwi_type": "xfs"]),
        ]
        let description = try KiwiFixtures.load(xml)
        for row in rows {
            let environment = description.profileEnvironment(profiles: row.profiles, arch: "x86_64", buildType: row.type)
            for (name, value) in row.expected {
                #expect(environment[name] == value, "\(row.profiles) \(row.type ?? "-"): \(name)")
            }
        }
        #expect(description.profileEnvironment(profiles: [], arch: "x86_64", buildType: "vmx")["kiwi_type"] == nil)
    }

    @Test("oemconfig: every kiwi_oem* variable when the type has one, none otherwise")
    func oemconfig() throws {
        let oem = try Self.environment(
            KiwiFixtures.description(
                schema: "8.5",
                types: """
                    <type image="oem" filesystem="ext4"><oemconfig>
                        <oem-boot-title>  spaced  </oem-boot-title><oem-swap>true</oem-swap><oem-swapsize>555</oem-swapsize>
                        <oem-systemsize>0</oem-systemsize><oem-recovery>1</oem-recovery><oem-inplace-recovery>true</oem-inplace-recovery>
                        <oem-kiwi-initrd>true</oem-kiwi-initrd><oem-resize>false</oem-resize>
                    </oemconfig></type>
                    """))
        #expect(oem["kiwi_oemtitle"] == "  spaced  ")
        #expect(oem["kiwi_oemswapMB"] == "555")
        #expect(oem["kiwi_oemrootMB"] == "0")
        #expect(oem["kiwi_oemrecovery"] == "true")
        #expect(oem["kiwi_oemrecoveryInPlace"] == "true")
        #expect(oem["kiwi_oemkboot"] == "true")
        #expect(oem["kiwi_oemskipverify"] == "")
        #expect(oem.keys.filter { $0.hasPrefix("kiwi_oem") }.count == 26)
        let plain = try Self.environment(KiwiFixtures.description(schema: "8.5", types: #"<type image="oem" filesystem="ext4"/>"#))
        #expect(plain.keys.filter { $0.hasPrefix("kiwi_oem") }.isEmpty)
    }

    @Test(
        "systemdisk volumes: name|size|mountpoint, LVM unless btrfs without preferlvm, swap only with LVM",
        arguments: [
            (
                #"filesystem="ext3""#,
                #"<systemdisk><volume name="usr/lib" size="1G"/><volume name="@root" freespace="500M"/><volume name="etc_volume" mountpoint="etc"/><volume name="bin_volume" size="all" mountpoint="/usr/bin"/><volume name="usr/bin"/></systemdisk><oemconfig><oem-swap>true</oem-swap></oemconfig>"#,
                [
                    "kiwi_lvm": "true", "kiwi_lvmgroup": "systemVG",
                    "kiwi_Volume_1": "usr_lib|size:1024|usr/lib", "kiwi_Volume_2": "etc_volume|freespace:30|etc",
                    "kiwi_Volume_3": "bin_volume|size:all|/usr/bin", "kiwi_Volume_4": "usr_bin|freespace:30|usr/bin",
                    "kiwi_Volume_5": "LVSwap|size:128|", "kiwi_Volume_Root": "LVRoot|freespace:500|",
                ]
            ),
            (
                #"filesystem="xfs""#,
                #"<systemdisk name="myVG"><volume name="x"/><volume name="srv" arch="aarch64"/></systemdisk><oemconfig><oem-swap>true</oem-swap><oem-swapsize>77</oem-swapsize><oem-swapname>sw</oem-swapname></oemconfig>"#,
                [
                    "kiwi_lvm": "true", "kiwi_lvmgroup": "myVG", "kiwi_Volume_1": "x|freespace:300|x",
                    "kiwi_Volume_2": "sw|size:77|", "kiwi_Volume_Root": "LVRoot|size:all|",
                ]
            ),
            (
                #"filesystem="btrfs""#,
                #"<systemdisk><volume name="/usr/local"/><volume name="home/x" mountpoint="/srv/y"/></systemdisk><oemconfig><oem-swap>true</oem-swap></oemconfig>"#,
                [
                    "kiwi_Volume_1": "usr_local|freespace:120|/usr/local", "kiwi_Volume_2": "home/x|freespace:120|/srv/y",
                    "kiwi_Volume_Root": "|size:all|",
                ]
            ),
            (
                #"filesystem="btrfs""#,
                #"<systemdisk name="vg"><volume name="@root=root"/><volume name="home"/></systemdisk>"#,
                ["kiwi_Volume_1": "home|freespace:120|home", "kiwi_Volume_Root": "root|freespace:120|"]
            ),
            (
                #"filesystem="btrfs""#,
                #"<systemdisk preferlvm="true"><volume name="@root" size="5G"/></systemdisk>"#,
                ["kiwi_lvm": "true", "kiwi_lvmgroup": "systemVG", "kiwi_Volume_Root": "LVRoot|size:5120|"]
            ),
        ])
    func systemdisk(filesystem: String, children: String, expected: [String: String]) throws {
        let environment = try Self.environment(
            KiwiFixtures.description(schema: "8.5", types: #"<type image="oem" \#(filesystem)>\#(children)</type>"#))
        let volumeAndLVM = environment.filter { $0.key.hasPrefix("kiwi_Volume") || $0.key.hasPrefix("kiwi_lvm") }
        #expect(volumeAndLVM == expected)
    }

    @Test("preferences: the last selected section that sets a value wins; showlicense kept as written")
    func preferences() throws {
        let xml = KiwiFixtures.description(
            schema: "8.5", packageManager: "zypper",
            types: #"<type image="tbz"/><locale>en_US</locale><keytable>us.map.gz</keytable><bootsplash-theme>bs</bootsplash-theme><bootloader-theme>bl</bootloader-theme><showlicense>s1</showlicense>"#,
            body: #"<preferences><timezone>UTC</timezone><showlicense> s2 </showlicense></preferences>"#)
        let environment = try Self.environment(xml)
        #expect(environment["kiwi_language"] == "en_US")
        #expect(environment["kiwi_keytable"] == "us.map.gz")
        #expect(environment["kiwi_timezone"] == "UTC")
        #expect(environment["kiwi_splash_theme"] == "bs")
        #expect(environment["kiwi_loader_theme"] == "bl")
        #expect(environment["kiwi_showlicense"] == " s2 ")
        let none = try Self.environment(KiwiFixtures.description(schema: "8.5"))
        #expect(none["kiwi_language"] == nil && none["kiwi_timezone"] == nil && none["kiwi_showlicense"] == "")
    }

    @Test("names: displayname falls back to the image name; kiwi's runtime defaults are always there")
    func namesAndDefaults() throws {
        let environment = try Self.environment(KiwiFixtures.description(name: "LimeJeOS", schema: "8.5"))
        #expect(environment["kiwi_iname"] == "LimeJeOS")
        #expect(environment["kiwi_displayname"] == "LimeJeOS")
        #expect(environment["kiwi_iversion"] == "1.0.0")
        #expect(environment["kiwi_align"] == "1048576")
        #expect(environment["kiwi_sectorsize"] == "512")
        #expect(environment["kiwi_shasum_suffix"] == ".sha256")
        #expect(environment["kiwi_revision"] == nil)
    }

    @Test("descriptions kiwi refuses (schema before 7.4) still get the description's variables")
    func legacyDescriptions() throws {
        let refused = try KiwiProfileEnvironmentFixture.loadRefused().refused.map(\.id)
        let facts = try KiwiFacts.load().filter { refused.contains($0.id) && !$0.template }
        #expect(!facts.isEmpty)
        for sample in facts {
            let description = try KiwiLoader.load(file: KiwiFixtures.valid + "/" + sample.file)
            let environment = description.profileEnvironment(profiles: [], arch: "x86_64")
            #expect(environment["kiwi_iname"] == sample.imageName, "\(sample.id)")
            #expect(environment["kiwi_type"] != nil, "\(sample.id)")
        }
    }

    @Test("a legacy console attribute sets both bootloader consoles")
    func legacyConsole() throws {
        let xml = KiwiFixtures.description(
            types: #"<type image="oem" filesystem="ext4"><bootloader name="grub2" console="serial" timeout="0"/></type>"#)
        #expect(try Self.environment(xml)["kiwi_bootloader_console"] == "serial:serial")
    }

    @Test("the selection overload lists profiles in declaration order")
    func selectionOverload() throws {
        let description = try KiwiFixtures.load(
            KiwiFixtures.description(
                schema: "8.5",
                body: #"<profiles><profile name="b" description="b"/><profile name="a" description="a"/></profiles>"#))
        let environment = description.profileEnvironment(selection: KiwiSelection(profiles: ["a", "b"], arch: "x86_64"))
        #expect(environment["kiwi_profiles"] == "b,a")
    }

    // MARK: The file

    @Test("the .profile text: sorted name='value' lines, empty values written, quotes escaped")
    func render() {
        let text = KiwiProfileEnvironment.render([
            "kiwi_type": "oem", "kiwi_delete": "", "kiwi_Volume_1": "usr_lib|size:1024|usr/lib",
            "kiwi_displayname": "it's $HOME `x` \"q\"",
        ])
        #expect(
            text == """
                kiwi_Volume_1='usr_lib|size:1024|usr/lib'
                kiwi_delete=''
                kiwi_displayname='it'\\''s $HOME `x` "q"'
                kiwi_type='oem'

                """)
        #expect(KiwiProfileEnvironment.render([:]) == "")
    }

    @Test("a rendered .profile gives back every value when a shell sources it")
    func renderRoundTrip() throws {
        let environment = [
            "kiwi_a": "it's", "kiwi_b": "", "kiwi_c": "line1\nline2\ttab \\n back\\slash", "kiwi_d": "$(echo no) `no` \"q\"",
            "kiwi_e": "schäfer",
        ]
        let text = KiwiProfileEnvironment.render(environment)
        let output = try KiwiFixtures.withTemporaryDirectory { directory -> String in
            try KiwiFixtures.write(text, to: ".profile", in: directory)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            let script = environment.keys.sorted().map { #"printf '%s\0' "$\#($0)""# }.joined(separator: "; ")
            process.arguments = ["-c", ". \"$1\"; \(script)", "sh", directory + "/.profile"]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return String(decoding: data, as: UTF8.self)
        }
        let values = output.split(separator: "\0", omittingEmptySubsequences: false).dropLast().map(String.init)
        #expect(values == environment.keys.sorted().map { environment[$0] ?? "" })
    }

    @Test("the rendered text for the dot-profile sample is kiwi's own .profile file")
    func renderMatchesKiwiFile() throws {
        let description = try KiwiLoader.load(directory: KiwiFixtures.valid + "/kiwi-td-dot-profile")
        var environment = description.profileEnvironment(profiles: [], arch: "x86_64")
        environment["kiwi_revision"] = "$Format:%H$"
        let expected = try String(
            contentsOfFile: KiwiProfileEnvironmentFixture.directory + "/kiwi-td-dot-profile.profile", encoding: .utf8)
        #expect(KiwiProfileEnvironment.render(environment) == expected)
    }
}

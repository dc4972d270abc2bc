/// kiwi's `/.profile`: the `kiwi_*` shell variables that kiwi-ng writes into the image root before
/// `config.sh` and `images.sh` run, derived from the description, the profile selection, the target
/// architecture and the build type.
///
/// The rules were learned from kiwi-ng 11.1.6's own output (`kiwi-ng image info --print-kiwi-env`,
/// which is what `kiwi-ng system prepare` writes into `/.profile`) and are checked against it for every
/// corpus description in `Tests/Fixtures/kiwi-profile-env/`. docs/builders.md, "The /.profile
/// variables", lists every variable and where it comes from.
public enum KiwiProfileEnvironment {
    /// The kiwi-ng release whose `/.profile` these functions reproduce.
    public static let kiwiVersion = "11.1.6"

    /// Variables kiwi writes that ims does not, with the reason. `kiwi_revision` is the git commit of
    /// the kiwi installation itself (`$Format:%H$` in a release tarball): it describes kiwi, not the
    /// image, and ims is not kiwi.
    public static let variablesNotWritten: [String: String] = [
        "kiwi_revision": "the source revision of the kiwi-ng installation, not a property of the description"
    ]

    /// The text of a `/.profile` file for `environment`, written the way kiwi writes it: one
    /// `name='value'` line per variable, sorted by name (byte order), every variable written even when
    /// its value is empty, each value single-quoted with `'` written as `'\''`.
    ///
    /// For values without a newline or a backslash the text is byte for byte kiwi's. kiwi quotes line
    /// by line and drops backslashes, so a value with a newline (only possible in element text such as
    /// `<oem-boot-title>`) becomes a broken file there; here every value is quoted whole, so sourcing
    /// the file always yields the value exactly.
    public static func render(_ environment: [String: String]) -> String {
        environment.keys.sorted(by: byteOrder).map { name in
            "\(name)=\(shellQuoted(environment[name] ?? ""))\n"
        }.joined()
    }

    /// `value` in single quotes for a POSIX shell (`it's` → `'it'\''s'`).
    public static func shellQuoted(_ value: String) -> String {
        var quoted = "'"
        for character in value {
            if character == "'" { quoted += #"'\''"# } else { quoted.append(character) }
        }
        return quoted + "'"
    }

    /// Python's string order (by code point), which kiwi uses when it sorts.
    static func byteOrder(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }
}

extension KiwiDescription {
    /// The `kiwi_*` variables kiwi-ng 11 writes into `/.profile` for this description, name → value.
    ///
    /// - Parameters:
    ///   - requested: the requested profiles as kiwi's repeatable `--profile` (`[]` is kiwi's default:
    ///     the `import="true"` profiles; nil takes every declared profile in document order). They are
    ///     resolved with `resolveProfiles`, so `<requires>` count, and `kiwi_profiles` lists them in that
    ///     order, as kiwi does.
    ///   - arch: the target architecture (`uname -m` spelling, e.g. `x86_64`).
    ///   - buildType: kiwi's `--type`: the first type with this `image` among the selected preferences;
    ///     nil for kiwi's default, the first `primary="true"` type, else the first type.
    /// - Returns: every variable kiwi writes except those in `KiwiProfileEnvironment.variablesNotWritten`.
    ///   When no type matches (kiwi refuses such a build) the type-derived variables are left out.
    public func profileEnvironment(profiles requested: [String]?, arch: String, buildType: String? = nil) -> [String: String] {
        let resolved = requested.map { resolveProfiles($0, arch: arch).profiles } ?? profileNames.uniqued()
        let selection = KiwiSelection(profiles: Set(resolved), arch: arch)
        return ProfileEnvironmentBuilder(description: self, selection: selection, profileOrder: resolved, buildType: buildType)
            .environment()
    }

    /// The `/.profile` variables for a selection that is already resolved.
    ///
    /// A `KiwiSelection` keeps no order, so `kiwi_profiles` lists the selected profiles in declaration
    /// order here (kiwi lists them in request order); prefer `profileEnvironment(profiles:arch:buildType:)`.
    /// A selection without an architecture filters nothing by architecture.
    public func profileEnvironment(selection: KiwiSelection, buildType: String? = nil) -> [String: String] {
        let ordered = selection.profiles.map { selected in profileNames.uniqued().filter(selected.contains) }
            ?? profileNames.uniqued()
        let effective = KiwiSelection(profiles: Set(ordered), arch: selection.arch)
        return ProfileEnvironmentBuilder(description: self, selection: effective, profileOrder: ordered, buildType: buildType)
            .environment()
    }

    /// The build type kiwi selects: with `buildType`, the first selected type with that `image`;
    /// otherwise the first `primary="true"` type, else the first type; nil when there is none.
    public func selectedBuildType(selection: KiwiSelection, buildType: String? = nil) -> KiwiImageType? {
        let types = preferences.filter { selection.includes($0) }.flatMap(\.types)
        if let buildType { return types.first { $0.image == buildType } }
        return types.first(where: \.isPrimary) ?? types.first
    }
}

/// Computes one environment; every rule is a small function so the docs and tests can name it.
struct ProfileEnvironmentBuilder {
    let description: KiwiDescription
    let selection: KiwiSelection
    let profileOrder: [String]
    let buildType: String?

    /// kiwi's runtime defaults that it adds to every profile (`Defaults.to_profile`).
    static let runtimeDefaults: [String: String] = [
        "kiwi_align": "1048576",
        "kiwi_sectorsize": "512",
        "kiwi_shasum_suffix": ".sha256",
    ]

    func environment() -> [String: String] {
        var environment = Self.runtimeDefaults
        environment["kiwi_iname"] = description.name ?? ""
        environment["kiwi_displayname"] = description.displayName ?? description.name ?? ""
        environment["kiwi_iversion"] = lastSetting("version") ?? ""
        environment["kiwi_profiles"] = profileOrder.joined(separator: ",")
        environment["kiwi_delete"] = packagesMarkedForDeletion().joined(separator: " ")
        for (name, value) in preferenceVariables() { environment[name] = value }
        for (name, value) in stripVariables() { environment[name] = value }
        environment["kiwi_drivers"] = driverFiles().joined(separator: ",")
        if let type = description.selectedBuildType(selection: selection, buildType: buildType) {
            for (name, value) in Self.typeVariables(type, imageName: description.name ?? "") { environment[name] = value }
            if let oemconfig = type.children.first(where: { $0.name == "oemconfig" }) {
                for (name, value) in Self.oemVariables(oemconfig) { environment[name] = value }
            }
            if let systemdisk = type.children.first(where: { $0.name == "systemdisk" }) {
                for (name, value) in Self.systemdiskVariables(
                    systemdisk, type: type, oemconfig: type.children.first { $0.name == "oemconfig" }, selection: selection)
                {
                    environment[name] = value
                }
            }
        }
        return environment
    }

    // MARK: Preferences

    private var selectedPreferences: [KiwiPreferences] { description.preferences.filter { selection.includes($0) } }

    /// A preference set in several selected sections takes the last one in document order.
    private func lastSettingElement(_ name: String) -> KiwiElement? {
        selectedPreferences.reversed().lazy.compactMap { $0.settings.first { $0.name == name } }.first
    }

    private func lastSetting(_ name: String) -> String? { lastSettingElement(name)?.trimmedText }

    /// `kiwi_language`, `kiwi_keytable`, `kiwi_timezone`, `kiwi_splash_theme`, `kiwi_loader_theme`
    /// (only when set) and `kiwi_showlicense` (always; the text as written).
    func preferenceVariables() -> [String: String] {
        var variables: [String: String] = [:]
        let mapping = [
            ("locale", "kiwi_language"), ("keytable", "kiwi_keytable"), ("timezone", "kiwi_timezone"),
            ("bootsplash-theme", "kiwi_splash_theme"), ("bootloader-theme", "kiwi_loader_theme"),
        ]
        for (element, variable) in mapping {
            if let value = lastSetting(element) { variables[variable] = value }
        }
        variables["kiwi_showlicense"] = lastSettingElement("showlicense")?.text ?? ""
        return variables
    }

    // MARK: Packages, strip, drivers

    /// The `<package>` names of the selected `<packages type="delete">` sections for the architecture,
    /// unique and sorted.
    func packagesMarkedForDeletion() -> [String] {
        let names = description.packageSections
            .filter { $0.type == "delete" && selection.includes($0) }
            .flatMap(\.packages)
            .filter { selection.matches(arch: $0.arch) }
            .map(\.name)
        return Set(names).sorted(by: KiwiProfileEnvironment.byteOrder)
    }

    /// `kiwi_strip_delete`, `kiwi_strip_tools`, `kiwi_strip_libs`: the `<file name>` entries of the
    /// selected `<strip>` sections of each type, in document order (repeats kept), space-separated.
    func stripVariables() -> [String: String] {
        var variables: [String: String] = [:]
        for kind in ["delete", "tools", "libs"] {
            let files = description.stripSections
                .filter { $0[attribute: "type"] == kind && selection.includes($0) }
                .flatMap { $0.children(named: "file") }
                .compactMap { $0[attribute: "name"] }
            variables["kiwi_strip_\(kind)"] = files.joined(separator: " ")
        }
        return variables
    }

    /// The `<file name>` entries of the selected `<drivers>` sections in document order.
    func driverFiles() -> [String] {
        description.driverSections.filter { selection.includes($0) }
            .flatMap { $0.children(named: "file") }
            .compactMap { $0[attribute: "name"] }
    }

    // MARK: The build type

    /// A boolean as kiwi writes it: `true`/`1` → `true`, `false`/`0` → `false`, absent → empty.
    static func kiwiBoolean(_ written: String?) -> String {
        switch written?.kiwiTrimmed.lowercased() {
        case "true", "1": "true"
        case "false", "0": "false"
        default: ""
        }
    }

    /// The type attributes kiwi copies as written, empty when absent.
    static let typeAttributesAsWritten: [(attribute: String, variable: String)] = [
        ("image", "kiwi_type"), ("bootkernel", "kiwi_bootkernel"), ("bootprofile", "kiwi_bootprofile"),
        ("kernelcmdline", "kiwi_cmdline"), ("devicepersistency", "kiwi_devicepersistency"),
        ("firmware", "kiwi_firmware"), ("fsmountoptions", "kiwi_fsmountoptions"),
        ("hybridpersistent_filesystem", "kiwi_hybridpersistent_filesystem"), ("installboot", "kiwi_installboot"),
        ("wwid_wait_timeout", "kiwi_wwid_wait_timeout"),
    ]

    /// The boolean type attributes, written as `kiwiBoolean`.
    static let typeBooleanAttributes: [(attribute: String, variable: String)] = [
        ("compressed", "kiwi_compressed"), ("gpt_hybrid_mbr", "kiwi_gpt_hybrid_mbr"),
        ("hybridpersistent", "kiwi_hybridpersistent"), ("ramonly", "kiwi_ramonly"),
        ("target_removable", "kiwi_target_removable"),
        ("btrfs_root_is_snapper_snapshot", "kiwi_btrfs_root_is_snapper_snapshot"),
        ("btrfs_root_is_snapper_snapshot", "kiwi_btrfs_root_is_snapshot"),
    ]

    /// kiwi's initrd system when `initrd_system` is absent: dracut for the bootable disk and live
    /// types, kiwi's own for pxe, none otherwise.
    static func defaultInitrdSystem(image: String?) -> String {
        switch image {
        case "oem", "iso", "kis": "dracut"
        case "pxe": "kiwi"
        default: "none"
        }
    }

    /// The variables of the `<type>` element and its `<bootloader>`.
    static func typeVariables(_ type: KiwiImageType, imageName: String) -> [String: String] {
        var variables: [String: String] = [:]
        for (attribute, variable) in typeAttributesAsWritten { variables[variable] = type[attribute: attribute] ?? "" }
        for (attribute, variable) in typeBooleanAttributes { variables[variable] = kiwiBoolean(type[attribute: attribute]) }
        variables["kiwi_initrd_system"] = type.initrdSystem ?? defaultInitrdSystem(image: type.image)
        variables["kiwi_target_blocksize"] = type[attribute: "target_blocksize"] ?? "512"
        variables["kiwi_startsector"] = type[attribute: "disk_start_sector"] ?? "2048"
        variables["kiwi_luks_empty_passphrase"] = type[attribute: "luks"] == "" ? "true" : "false"
        variables["kiwi_rootpartuuid"] = ""
        if type[attribute: "xen_server"].map(kiwiBoolean) == "true" { variables["kiwi_xendomain"] = "dom0" }
        switch type.image {
        case "oem": variables["kiwi_install_volid"] = type[attribute: "volid"] ?? "INSTALL"
        case "iso": variables["kiwi_live_volid"] = type[attribute: "volid"] ?? "CDROM"
        case "cpio": variables["kiwi_cpio_name"] = imageName
        default: break
        }
        let bootloader = type.children.first { $0.name == "bootloader" }
        variables["kiwi_bootloader"] = bootloader?[attribute: "name"] ?? "grub2"
        variables["kiwi_boot_timeout"] = bootloader?[attribute: "timeout"] ?? ""
        variables["kiwi_vga"] = bootloader?[attribute: "video_mode"] ?? "auto"
        variables["kiwi_bootloader_console"] = bootloaderConsole(bootloader)
        return variables
    }

    /// `output:input`; each `default` when unset, except that an unset input follows the output. The
    /// legacy `console` attribute (schema 7.x) sets both.
    static func bootloaderConsole(_ bootloader: KiwiElement?) -> String {
        let legacy = bootloader?[attribute: "console"]
        let output = bootloader?[attribute: "output_console"] ?? legacy
        let input = bootloader?[attribute: "input_console"] ?? legacy ?? output
        return "\(output ?? "default"):\(input ?? "default")"
    }

    // MARK: oemconfig

    /// `<oemconfig>` children kiwi copies as written (text), by variable.
    static let oemTextElements: [(element: String, variable: String)] = [
        ("oem-boot-title", "kiwi_oemtitle"), ("oem-device-filter", "kiwi_oemdevicefilter"),
        ("oem-nic-filter", "kiwi_oemnicfilter"), ("oem-unattended-id", "kiwi_oemunattended_id"),
        ("oem-vmcp-parmfile", "kiwi_oemvmcp_parmfile"),
    ]

    /// `<oemconfig>` children that are numbers, trimmed.
    static let oemNumberElements: [(element: String, variable: String)] = [
        ("oem-ramdisk-size", "kiwi_oemramdisksize"), ("oem-recoveryID", "kiwi_oemrecoveryID"),
        ("oem-recovery-part-size", "kiwi_oemrecoveryPartSize"), ("oem-systemsize", "kiwi_oemrootMB"),
        ("oem-swapsize", "kiwi_oemswapMB"),
    ]

    /// `<oemconfig>` children that are booleans, written as `kiwiBoolean`.
    static let oemBooleanElements: [(element: String, variable: String)] = [
        ("oem-bootwait", "kiwi_oembootwait"), ("oem-kiwi-initrd", "kiwi_oemkboot"),
        ("oem-multipath-scan", "kiwi_oemmultipath_scan"), ("oem-partition-install", "kiwi_oempartition_install"),
        ("oem-reboot", "kiwi_oemreboot"), ("oem-reboot-interactive", "kiwi_oemrebootinteractive"),
        ("oem-recovery", "kiwi_oemrecovery"), ("oem-inplace-recovery", "kiwi_oemrecoveryInPlace"),
        ("oem-resize-once", "kiwi_oemresizeonce"), ("oem-shutdown", "kiwi_oemshutdown"),
        ("oem-shutdown-interactive", "kiwi_oemshutdowninteractive"), ("oem-silent-boot", "kiwi_oemsilentboot"),
        ("oem-silent-install", "kiwi_oemsilentinstall"), ("oem-silent-verify", "kiwi_oemsilentverify"),
        ("oem-skip-verify", "kiwi_oemskipverify"), ("oem-unattended", "kiwi_oemunattended"),
    ]

    /// Every `kiwi_oem*` variable (empty when its element is absent); only written when the build type
    /// has an `<oemconfig>`. `oem-resize`, `oem-swap` and `oem-swapname` have no variable of their own.
    static func oemVariables(_ oemconfig: KiwiElement) -> [String: String] {
        var variables: [String: String] = [:]
        for (element, variable) in oemTextElements { variables[variable] = oemconfig.firstChild(named: element)?.text ?? "" }
        for (element, variable) in oemNumberElements {
            variables[variable] = oemconfig.firstChild(named: element)?.trimmedText ?? ""
        }
        for (element, variable) in oemBooleanElements {
            variables[variable] = kiwiBoolean(oemconfig.firstChild(named: element)?.text)
        }
        return variables
    }

    // MARK: systemdisk

    /// The size kiwi gives a volume without `size` or `freespace`, in MB, by filesystem.
    static func defaultVolumeMegabytes(filesystem: String?) -> Int {
        switch filesystem {
        case "xfs": 300
        case "btrfs": 120
        default: 30
        }
    }

    /// A `size`/`freespace` value in MB: `1G` → 1024, `500M` and `500` → 500; nil when unreadable.
    static func megabytes(_ written: String) -> Int? {
        let text = written.kiwiTrimmed
        if let value = Int(text) { return value }
        guard let unit = text.last, let value = Int(text.dropLast()) else { return nil }
        switch unit {
        case "M", "m": return value
        case "G", "g": return value * 1024
        default: return nil
        }
    }

    /// `size:N`, `size:all` or `freespace:N` for a volume element (or nil for none).
    static func volumeSize(_ volume: KiwiElement?, filesystem: String?, whenUnset: String) -> String {
        guard let volume else { return whenUnset }
        if let size = volume[attribute: "size"] {
            if size.kiwiTrimmed == "all" { return "size:all" }
            return "size:\(megabytes(size).map(String.init) ?? size)"
        }
        if let freespace = volume[attribute: "freespace"] {
            if freespace.kiwiTrimmed == "all" { return "freespace:all" }
            return "freespace:\(megabytes(freespace).map(String.init) ?? freespace)"
        }
        return "freespace:\(defaultVolumeMegabytes(filesystem: filesystem))"
    }

    /// `@root`, or `@root=NAME` naming the root volume.
    static func isRootVolume(_ volume: KiwiElement) -> Bool {
        let name = volume[attribute: "name"] ?? ""
        return name == "@root" || name.hasPrefix("@root=")
    }

    /// The NAME of `@root=NAME`, nil for a plain `@root`.
    static func rootVolumeName(_ volume: KiwiElement) -> String? {
        let name = volume[attribute: "name"] ?? ""
        guard name.hasPrefix("@root="), name.count > 6 else { return nil }
        return String(name.dropFirst(6))
    }

    /// `kiwi_lvm`/`kiwi_lvmgroup` (LVM: any filesystem but btrfs, or `preferlvm="true"`),
    /// `kiwi_Volume_N` = `name|size|mountpoint` for each volume but `@root` (for the architecture), the
    /// swap volume of `<oem-swap>` with LVM, and `kiwi_Volume_Root`.
    static func systemdiskVariables(
        _ systemdisk: KiwiElement, type: KiwiImageType, oemconfig: KiwiElement?, selection: KiwiSelection
    ) -> [String: String] {
        var variables: [String: String] = [:]
        let filesystem = type.filesystem
        let usesLVM = filesystem != "btrfs" || kiwiBoolean(systemdisk[attribute: "preferlvm"]) == "true"
        if usesLVM {
            variables["kiwi_lvm"] = "true"
            variables["kiwi_lvmgroup"] = systemdisk[attribute: "name"] ?? "systemVG"
        }
        let volumes = systemdisk.children(named: "volume").filter { selection.matches(arch: $0.arch) }
        let root = volumes.first { isRootVolume($0) }
        var number = 0
        for volume in volumes where !isRootVolume(volume) {
            let written = volume[attribute: "name"] ?? ""
            let name: String
            let mountpoint: String
            if let explicit = volume[attribute: "mountpoint"] {
                name = written
                mountpoint = explicit
            } else {
                name = String(written.drop { $0 == "/" }.map { $0 == "/" ? "_" : $0 })
                mountpoint = written
            }
            number += 1
            variables["kiwi_Volume_\(number)"] =
                "\(name)|\(volumeSize(volume, filesystem: filesystem, whenUnset: "size:all"))|\(mountpoint)"
        }
        if usesLVM, let oemconfig, kiwiBoolean(oemconfig.firstChild(named: "oem-swap")?.text) == "true" {
            let swapName = oemconfig.firstChild(named: "oem-swapname")?.trimmedText ?? "LVSwap"
            let swapSize = oemconfig.firstChild(named: "oem-swapsize")?.trimmedText ?? "128"
            number += 1
            variables["kiwi_Volume_\(number)"] = "\(swapName)|size:\(swapSize)|"
        }
        let rootName = root.flatMap(rootVolumeName) ?? (root != nil || usesLVM ? "LVRoot" : "")
        variables["kiwi_Volume_Root"] = "\(rootName)|\(volumeSize(root, filesystem: filesystem, whenUnset: "size:all"))|"
        return variables
    }
}

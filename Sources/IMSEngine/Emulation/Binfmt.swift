import Foundation

/// An ELF architecture as binfmt_misc recognises it: the header bytes (magic) and the mask applied before comparing,
/// as in qemu's `qemu-binfmt-conf.sh` and Debian's `qemu-user-static` (`/usr/lib/binfmt.d/qemu-<arch>-static.conf`).
public struct ELFArchitecture: Sendable, Hashable {
    /// ims's name (`aarch64`, `x86_64`), as in records' `arch`.
    public var name: String
    /// qemu's name for the user-mode emulator (`qemu-aarch64-static`).
    public var qemuName: String
    public var magic: [UInt8]
    public var mask: [UInt8]

    /// 64-bit little-endian ARM (`EM_AARCH64`, 0xb7).
    public static let aarch64 = ELFArchitecture(
        name: "aarch64", qemuName: "qemu-aarch64",
        magic: [0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x00, 0xb7, 0x00],
        mask: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff])

    /// 64-bit x86 (`EM_X86_64`, 0x3e).
    public static let x86_64 = ELFArchitecture(
        name: "x86_64", qemuName: "qemu-x86_64",
        magic: [0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x00, 0x3e, 0x00],
        mask: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff])

    /// The architectures ims builds for.
    public static let known: [ELFArchitecture] = [.aarch64, .x86_64]

    public static func named(_ name: String) -> ELFArchitecture? { known.first { $0.name == name } }

    /// The name of the entry ims registers (`ims-qemu-aarch64`); ims removes only entries of this name, and only
    /// those it registered.
    public var entryName: String { "ims-" + qemuName }

    /// The line written to binfmt_misc's `register` file for `interpreter`, with the flags Debian's qemu-user-static
    /// registers: `F` (the kernel opens the interpreter at registration, so programs in a chroot run without a copy
    /// of it in the root, as IMS does) and `P` (the program's own argv[0] is kept: a multi-call binary such as
    /// busybox re-executing itself as an applet through /proc/self/exe otherwise runs the wrong program).
    public func registration(interpreter: String) -> String {
        func escaped(_ bytes: [UInt8]) -> String { bytes.map { String(format: "\\x%02x", $0) }.joined() }
        return ":\(entryName):M::\(escaped(magic)):\(escaped(mask)):\(interpreter):PF"
    }
}

/// One entry of binfmt_misc (`/proc/sys/fs/binfmt_misc/<name>`), as the kernel shows it:
///
///     enabled
///     interpreter /usr/bin/qemu-aarch64-static
///     flags: F
///     offset 0
///     magic 7f454c460201010000000000000000000200b700
///     mask ffffffffffffff00fffffffffffffffffeffffff
public struct BinfmtEntry: Sendable, Hashable {
    public var name: String
    public var enabled: Bool
    public var interpreter: String
    public var flags: String
    public var offset: Int
    public var magic: [UInt8]
    public var mask: [UInt8]

    /// Parses an entry file's text; nil for text that is not an entry (`register`, `status`, an extension entry).
    public init?(name: String, text: String) {
        var enabled: Bool?
        var interpreter: String?
        var flags = ""
        var offset = 0
        var magic: [UInt8]?
        var mask: [UInt8] = []
        for line in text.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if line == "enabled" { enabled = true }
            else if line == "disabled" { enabled = false }
            else if line.hasPrefix("interpreter ") { interpreter = String(line.dropFirst("interpreter ".count)) }
            else if line.hasPrefix("flags:") { flags = line.dropFirst("flags:".count).trimmingCharacters(in: .whitespaces) }
            else if line.hasPrefix("offset ") { offset = Int(line.dropFirst("offset ".count)) ?? 0 }
            else if line.hasPrefix("magic ") { magic = Self.hex(String(line.dropFirst("magic ".count))) }
            else if line.hasPrefix("mask ") { mask = Self.hex(String(line.dropFirst("mask ".count))) ?? [] }
        }
        guard let enabled, let interpreter, let magic else { return nil }
        self.name = name
        self.enabled = enabled
        self.interpreter = interpreter
        self.flags = flags
        self.offset = offset
        self.magic = magic
        self.mask = mask
    }

    static func hex(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = 0
        while index < digits.count {
            guard let byte = UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
            index += 2
        }
        return bytes
    }

    /// Whether the kernel would hand `architecture`'s ELF programs to this entry: it compares the same header
    /// bytes, through its own mask, and reaches the machine field.
    public func matches(_ architecture: ELFArchitecture) -> Bool {
        guard offset == 0, magic.count >= 20 else { return false }
        for index in 0..<min(magic.count, architecture.magic.count) {
            let entryMask = index < mask.count ? mask[index] : 0xff
            if magic[index] & entryMask != architecture.magic[index] & entryMask { return false }
        }
        return true
    }

    /// Whether the `F` flag is set: the interpreter was opened at registration, so it works inside a chroot.
    public var fixesBinary: Bool { flags.contains("F") }
}

/// What a job for `arch` needs before it may run on this host: the decision, without touching the machine.
public enum EmulationDecision: Sendable, Hashable {
    /// The host runs the architecture natively.
    case native
    /// A registered, enabled entry with the `F` flag runs it (its name).
    case available(entry: String)
    /// ims registers its own entry for the interpreter (the site allows it).
    case register(ELFArchitecture, interpreter: String)
    /// The job cannot run here; the reason says what to install or allow.
    case refuse(String)

    /// Decides from the host's architecture, binfmt_misc's entries (nil: not mounted), whether the interpreter file
    /// exists, and whether the site lets ims register.
    public static func decide(
        jobArch: String, hostArch: String, entries: [BinfmtEntry]?, settings: EmulationSettings, interpreterExists: (String) -> Bool
    ) -> EmulationDecision {
        guard jobArch != hostArch else { return .native }
        guard let architecture = ELFArchitecture.named(jobArch) else {
            return .refuse("ims does not know how to run \(jobArch) programs on a \(hostArch) host")
        }
        let matching = (entries ?? []).filter { $0.enabled && $0.matches(architecture) }
        if let usable = matching.first(where: { $0.fixesBinary && interpreterExists($0.interpreter) }) {
            return .available(entry: usable.name)
        }
        let interpreter = settings.interpreters + "/" + architecture.qemuName + "-static"
        let what = "this job builds \(jobArch) on a \(hostArch) host, so its package scriptlets and scripts run under qemu-user emulation"
        if let unusable = matching.first {
            let problem = unusable.fixesBinary
                ? "its interpreter \(unusable.interpreter) does not exist"
                : "it lacks the F (fix-binary) flag, so programs in the image root's chroot cannot find \(unusable.interpreter)"
            return .refuse("\(what); the registered binfmt_misc entry '\(unusable.name)' cannot serve: \(problem). Register it with the F flag (Debian: apt-get install qemu-user-static, whose /usr/lib/binfmt.d/\(architecture.qemuName)-static.conf has it)")
        }
        guard settings.mayRegister else {
            return .refuse("\(what), and no binfmt_misc interpreter for \(jobArch) is registered\(entries == nil ? " (\(settings.binfmtMiscPath) is not mounted)" : ""). Either register one (apt-get install qemu-user-static, then systemd-binfmt or update-binfmts), or let ims register Debian's \(architecture.qemuName)-static itself while such jobs run: 'emulation: {register_binfmt: true}' in ims.yaml")
        }
        guard interpreterExists(interpreter) else {
            return .refuse("\(what); ims may register an interpreter (emulation.register_binfmt) but \(interpreter) does not exist: apt-get install qemu-user-static")
        }
        return .register(architecture, interpreter: interpreter)
    }
}

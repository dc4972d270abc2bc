import Foundation
import IMSEngine
import Testing

/// Jobs for another architecture: reading binfmt_misc's entries and deciding, without touching the machine, whether
/// a job may run, runs under an entry the site registered, or needs ims to register Debian's qemu-user-static.
@Suite("Emulation for other architectures")
struct EmulationTests {
    /// Debian's qemu-user-static entry as the kernel shows it (flags OCF from /usr/lib/binfmt.d).
    static let debianEntry = """
        enabled
        interpreter /usr/bin/qemu-aarch64-static
        flags: OCF
        offset 0
        magic 7f454c460201010000000000000000000200b700
        mask ffffffffffffff00fffffffffffffffffeffffff
        """

    static func entry(_ text: String = debianEntry, name: String = "qemu-aarch64") throws -> BinfmtEntry {
        try #require(BinfmtEntry(name: name, text: text))
    }

    @Test("an entry file is read: state, interpreter, flags, magic and mask")
    func parsesEntry() throws {
        let entry = try Self.entry()
        #expect(entry.enabled && entry.interpreter == "/usr/bin/qemu-aarch64-static" && entry.fixesBinary)
        #expect(entry.magic.count == 20 && entry.magic[18] == 0xb7 && entry.mask[7] == 0x00)
        #expect(entry.matches(.aarch64) && !entry.matches(.x86_64))
        #expect(BinfmtEntry(name: "status", text: "enabled") == nil)
        #expect(BinfmtEntry(name: "python", text: "enabled\ninterpreter /usr/bin/python3\nflags: \nextension .py") == nil)
    }

    @Test("the registration line is Debian's entry under ims's name, with its P and F flags")
    func registrationLine() {
        let line = ELFArchitecture.aarch64.registration(interpreter: "/usr/bin/qemu-aarch64-static")
        #expect(line.hasPrefix(":ims-qemu-aarch64:M::\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00"))
        #expect(line.hasSuffix(":/usr/bin/qemu-aarch64-static:PF"))
        #expect(line.contains("\\x02\\x00\\xb7\\x00:"))
    }

    static let allow = EmulationSettings(registerBinfmt: true, interpreterDirectory: "/usr/bin")
    static let forbid = EmulationSettings(registerBinfmt: false, interpreterDirectory: "/usr/bin")

    /// Rows: job arch, the entries (nil: binfmt_misc not mounted), the settings, which interpreters exist, and the
    /// decision expected (`native`, `available:<entry>`, `register`, or `refuse:<words the reason contains>`).
    static let decisions: [(label: String, arch: String, entries: [BinfmtEntry]?, settings: EmulationSettings, interpreters: Set<String>, expected: String)] = [
        ("the host's own architecture", "x86_64", nil, forbid, [], "native"),
        ("a site entry with F", "aarch64", [try! entry()], forbid, ["/usr/bin/qemu-aarch64-static"], "available:qemu-aarch64"),
        ("a site entry without F", "aarch64", [try! entry(debianEntry.replacingOccurrences(of: "flags: OCF", with: "flags: OC"))], allow,
         ["/usr/bin/qemu-aarch64-static"], "refuse:F (fix-binary) flag"),
        ("a disabled site entry, registering allowed", "aarch64", [try! entry(debianEntry.replacingOccurrences(of: "enabled", with: "disabled"))], allow,
         ["/usr/bin/qemu-aarch64-static"], "register"),
        ("a site entry whose interpreter is gone", "aarch64", [try! entry()], forbid, [], "refuse:does not exist"),
        ("an x86_64 entry only", "aarch64", [try! entry(debianEntry.replacingOccurrences(of: "b700", with: "3e00"), name: "qemu-x86_64")], forbid,
         ["/usr/bin/qemu-aarch64-static"], "refuse:register_binfmt: true"),
        ("nothing registered, not allowed", "aarch64", [], forbid, ["/usr/bin/qemu-aarch64-static"], "refuse:apt-get install qemu-user-static"),
        ("not mounted, not allowed", "aarch64", nil, forbid, [], "refuse:is not mounted"),
        ("nothing registered, allowed, no qemu", "aarch64", [], allow, [], "refuse:/usr/bin/qemu-aarch64-static does not exist"),
        ("nothing registered, allowed", "aarch64", [], allow, ["/usr/bin/qemu-aarch64-static"], "register"),
        ("not mounted, allowed", "aarch64", nil, allow, ["/usr/bin/qemu-aarch64-static"], "register"),
        ("an architecture ims does not know", "riscv64", [], allow, [], "refuse:does not know"),
    ]

    @Test("what a job needs before it may run here", arguments: 0..<EmulationTests.decisions.count)
    func decision(_ row: Int) {
        let entry = Self.decisions[row]
        let decision = EmulationDecision.decide(
            jobArch: entry.arch, hostArch: "x86_64", entries: entry.entries, settings: entry.settings,
            interpreterExists: { entry.interpreters.contains($0) })
        switch decision {
        case .native: #expect(entry.expected == "native", "\(entry.label)")
        case .available(let name): #expect(entry.expected == "available:\(name)", "\(entry.label)")
        case .register(let architecture, let interpreter):
            #expect(entry.expected == "register", "\(entry.label)")
            #expect(architecture == .aarch64 && interpreter == "/usr/bin/qemu-aarch64-static")
        case .refuse(let reason):
            #expect(entry.expected.hasPrefix("refuse:"), "\(entry.label): \(reason)")
            #expect(reason.contains(entry.expected.dropFirst("refuse:".count)), "\(entry.label): \(reason)")
        }
    }

    @Test("a job refused here fails with the reason, and leaves no holder behind")
    func refusedLease() throws {
        let state = NSTemporaryDirectory() + "ims-emulation-" + UUID().uuidString.prefix(8)
        let empty = NSTemporaryDirectory() + "ims-binfmt-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        defer { for path in [state, empty] { try? FileManager.default.removeItem(atPath: path) } }
        let settings = EmulationSettings(registerBinfmt: false, binfmtMisc: empty, stateDirectory: state)
        #expect {
            try EmulationLease.acquire(jobArch: "aarch64", jobID: "j1", settings: settings, hostArch: "x86_64")
        } throws: { error in
            guard let error = error as? EngineError else { return false }
            return error.code == .emulation && error.category == .environment && error.message.contains("register_binfmt")
        }
        #expect(try EmulationLease.acquire(jobArch: "x86_64", jobID: "j2", settings: settings, hostArch: "x86_64") == nil)
        let left = (try? FileManager.default.contentsOfDirectory(atPath: state)) ?? []
        #expect(left.allSatisfy { $0 == "lock" }, "\(left)")
    }
}

import Foundation

/// Running programs of another architecture (`emulation:` in ims.yaml): how a job whose `arch` is not the host's
/// gets a binfmt_misc interpreter.
///
///     emulation:
///       register_binfmt: true                  # ims may register Debian's qemu-user-static interpreter itself
///                                              # (default false: the site registers one, or the job is refused)
///       interpreter_directory: /usr/bin        # where qemu-<arch>-static is (default /usr/bin)
///       binfmt_misc: /proc/sys/fs/binfmt_misc  # the binfmt_misc file system (default; mounted when missing)
///       state_directory: /run/ims/emulation    # which jobs use an interpreter ims registered (default)
public struct EmulationSettings: Sendable, Hashable, Codable {
    public var registerBinfmt: Bool?
    public var interpreterDirectory: String?
    public var binfmtMisc: String?
    public var stateDirectory: String?

    enum CodingKeys: String, CodingKey {
        case registerBinfmt = "register_binfmt"
        case interpreterDirectory = "interpreter_directory"
        case binfmtMisc = "binfmt_misc"
        case stateDirectory = "state_directory"
    }

    public init(registerBinfmt: Bool? = nil, interpreterDirectory: String? = nil, binfmtMisc: String? = nil, stateDirectory: String? = nil) {
        self.registerBinfmt = registerBinfmt
        self.interpreterDirectory = interpreterDirectory
        self.binfmtMisc = binfmtMisc
        self.stateDirectory = stateDirectory
    }

    static let settingNames = ["binfmt_misc", "interpreter_directory", "register_binfmt", "state_directory"]

    public var mayRegister: Bool { registerBinfmt ?? false }
    public var interpreters: String { interpreterDirectory ?? "/usr/bin" }
    public var binfmtMiscPath: String { binfmtMisc ?? "/proc/sys/fs/binfmt_misc" }
    public var state: String { stateDirectory ?? "/run/ims/emulation" }

    func check(source: String) throws(EngineError) {
        for (name, value) in [("interpreter_directory", interpreterDirectory), ("binfmt_misc", binfmtMisc), ("state_directory", stateDirectory)] {
            if let value, !value.hasPrefix("/") {
                throw EngineError(.settings, "\(source): emulation.\(name) must be an absolute path")
            }
        }
    }
}

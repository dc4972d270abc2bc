import Foundation
import IMSCatalog

#if canImport(Glibc)
    import Glibc
#endif

/// A job's hold on an interpreter for another architecture, taken in preflight and released when the job ends.
///
/// When ims registered the binfmt_misc entry itself (``EmulationDecision/register(_:interpreter:)``), it is
/// removed when the last job holding it releases it; an entry the site registered is never touched. Holders are
/// files in the state directory (one per job, named by the runner's process id), changed under a lock, so jobs in
/// several processes share one registration; a holder whose process has ended (a killed runner) no longer counts.
public final class EmulationLease: Sendable {
    /// How the job runs its architecture's programs (for its events and the console).
    public let summary: String
    let architecture: ELFArchitecture?
    let holder: String?
    let settings: EmulationSettings

    init(summary: String, architecture: ELFArchitecture?, holder: String?, settings: EmulationSettings) {
        self.summary = summary
        self.architecture = architecture
        self.holder = holder
        self.settings = settings
    }

    /// Takes what a job for `jobArch` needs on this host, or throws the reason it cannot run here.
    ///
    /// - Returns: nil when the host runs the architecture natively.
    public static func acquire(jobArch: String, jobID: String, settings: EmulationSettings, hostArch: String = EmulationLease.hostArchitecture) throws(EngineError) -> EmulationLease? {
        guard jobArch != hostArch else { return nil }
        let binfmt = BinfmtMisc(path: settings.binfmtMiscPath)
        let decision = EmulationDecision.decide(
            jobArch: jobArch, hostArch: hostArch, entries: binfmt.entries(), settings: settings,
            interpreterExists: { FileManager.default.isExecutableFile(atPath: $0) })
        switch decision {
        case .native:
            return nil
        case .refuse(let reason):
            throw EngineError(.emulation, reason)
        case .available(let entry):
            return EmulationLease(summary: "\(jobArch) programs run under the binfmt_misc entry '\(entry)' the site registered", architecture: nil, holder: nil, settings: settings)
        case .register(let architecture, let interpreter):
            let holder = "\(architecture.entryName).\(getpid()).\(jobID)"
            try withStateLock(settings) { () throws(EngineError) in
                try binfmt.mountIfNeeded(state: settings.state)
                guard FileManager.default.createFile(atPath: settings.state + "/" + holder, contents: Data("\(getpid())\n".utf8)) else {
                    throw EngineError(.emulation, "cannot write \(settings.state)/\(holder) (emulation.state_directory)")
                }
                if !binfmt.exists(architecture.entryName) {
                    let marker = settings.state + "/" + architecture.entryName + ".registered"
                    _ = FileManager.default.createFile(atPath: marker, contents: Data())
                    do throws(EngineError) {
                        try binfmt.register(architecture.registration(interpreter: interpreter))
                    } catch {
                        try? FileManager.default.removeItem(atPath: marker)
                        try? FileManager.default.removeItem(atPath: settings.state + "/" + holder)
                        binfmt.unmountIfIMSMounted(state: settings.state)
                        throw error
                    }
                }
            }
            return EmulationLease(
                summary: "\(jobArch) programs run under \(interpreter), registered by ims as the binfmt_misc entry '\(architecture.entryName)' while jobs need it",
                architecture: architecture, holder: holder, settings: settings)
        }
    }

    /// Gives the hold back; removes ims's entry when no other live job holds it. Never throws: a failure is logged
    /// by the caller from the returned message.
    @discardableResult
    public func release() -> String? {
        guard let architecture, let holder else { return nil }
        do {
            return try Self.withStateLock(settings) { () throws(EngineError) -> String? in
                try? FileManager.default.removeItem(atPath: settings.state + "/" + holder)
                guard Self.liveHolders(of: architecture, in: settings.state).isEmpty else { return nil }
                let marker = settings.state + "/" + architecture.entryName + ".registered"
                guard FileManager.default.fileExists(atPath: marker) else { return nil }
                let binfmt = BinfmtMisc(path: settings.binfmtMiscPath)
                if binfmt.exists(architecture.entryName) { try binfmt.remove(architecture.entryName) }
                try? FileManager.default.removeItem(atPath: marker)
                binfmt.unmountIfIMSMounted(state: settings.state)
                return "removed the binfmt_misc entry '\(architecture.entryName)' (no job needs it any more)"
            }
        } catch {
            return "could not release the binfmt_misc entry '\(architecture.entryName)': \(error.description)"
        }
    }

    /// The holders of `architecture`'s entry whose processes are alive (others are removed).
    static func liveHolders(of architecture: ELFArchitecture, in state: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: state)) ?? []
        return names.filter { name in
            guard name.hasPrefix(architecture.entryName + "."), !name.hasSuffix(".registered") else { return false }
            let parts = name.split(separator: ".")
            guard parts.count >= 3, let pid = Int32(parts[1]), Catalog.processIsAlive(pid) else {
                try? FileManager.default.removeItem(atPath: state + "/" + name)
                return false
            }
            return true
        }
    }

    static func withStateLock<T>(_ settings: EmulationSettings, _ body: () throws(EngineError) -> T) throws(EngineError) -> T {
        do {
            try FileManager.default.createDirectory(atPath: settings.state, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw EngineError(.emulation, "cannot create \(settings.state) (emulation.state_directory): \(error.localizedDescription)")
        }
        let lock: FileLock?
        do {
            lock = try FileLock.acquire(path: settings.state + "/lock", mode: .exclusive, wait: true)
        } catch {
            throw EngineError(.emulation, error.message)
        }
        defer { withExtendedLifetime(lock) {} }
        return try body()
    }

    /// The host's architecture (`uname -m`).
    public static var hostArchitecture: String {
        var name = utsname()
        uname(&name)
        return withUnsafeBytes(of: &name.machine) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }
}

/// The binfmt_misc file system at `path`.
struct BinfmtMisc {
    let path: String

    /// The entries, or nil when binfmt_misc is not mounted there (no `register` file).
    func entries() -> [BinfmtEntry]? {
        guard FileManager.default.fileExists(atPath: path + "/register") else { return nil }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.sorted().compactMap { name in
            guard name != "register", name != "status", let text = try? String(contentsOfFile: path + "/" + name, encoding: .utf8) else { return nil }
            return BinfmtEntry(name: name, text: text)
        }
    }

    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: path + "/" + name) }

    /// Mounts binfmt_misc when it is not (and records that ims did, to unmount it when ims's last entry goes).
    func mountIfNeeded(state: String) throws(EngineError) {
        guard !FileManager.default.fileExists(atPath: path + "/register") else { return }
        guard mount("binfmt_misc", path, "binfmt_misc", 0, nil) == 0 else {
            throw EngineError(.emulation, "cannot mount binfmt_misc on \(path) to register an interpreter: \(String(cString: strerror(errno))) (ims must run as root, or the site must register the interpreter)")
        }
        _ = FileManager.default.createFile(atPath: state + "/binfmt_misc.mounted", contents: Data())
    }

    func unmountIfIMSMounted(state: String) {
        let marker = state + "/binfmt_misc.mounted"
        guard FileManager.default.fileExists(atPath: marker), (entries() ?? []).isEmpty else { return }
        if umount(path) == 0 { try? FileManager.default.removeItem(atPath: marker) }
    }

    func register(_ line: String) throws(EngineError) {
        try write(line, to: path + "/register", doing: "register an interpreter")
    }

    func remove(_ name: String) throws(EngineError) {
        try write("-1", to: path + "/" + name, doing: "remove the entry \(name)")
    }

    private func write(_ text: String, to file: String, doing what: String) throws(EngineError) {
        let descriptor = open(file, O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw EngineError(.emulation, "cannot \(what) (\(file)): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw EngineError(.emulation, "cannot \(what) (\(file)): \(String(cString: strerror(errno)))") }
    }
}

import Foundation
@testable import IMSStore

func makeTemporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "ims-store-tests-" + UUID().uuidString.prefix(8).lowercased()
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// A fresh local store in a temporary directory, plus a scratch directory for input files.
struct StoreFixture {
    let directory: String
    let store: LocalArtifactStore
    var scratch: String { directory + "/scratch" }

    init() throws {
        directory = try makeTemporaryDirectory()
        store = try LocalArtifactStore(root: directory + "/store")
        try FileManager.default.createDirectory(atPath: directory + "/scratch", withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }

    /// Writes `size` pseudo-random bytes to a scratch file.
    func file(_ name: String, size: Int, seed: UInt64 = 1) throws -> String {
        var generator = SplitMix(state: seed)
        var bytes = [UInt8](repeating: 0, count: size)
        for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: generator.next()) }
        let path = scratch + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Every file under the store root (relative paths), sidecars and temporaries included.
    func allFiles() -> [String] {
        var files: [String] = []
        let enumerator = FileManager.default.enumerator(atPath: store.root)
        while let path = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: store.root + "/" + path, isDirectory: &isDirectory), !isDirectory.boolValue {
                files.append(path)
            }
        }
        return files.sorted()
    }
}

struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Runs a command and returns its standard output.
func run(_ executable: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}

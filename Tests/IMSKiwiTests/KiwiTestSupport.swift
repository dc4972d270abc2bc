import Foundation
import IMSKiwi
import Testing

#if canImport(Glibc)
    import Glibc
#endif

enum KiwiFixtures {
    /// The repository root, from this file's path (`<repo>/Tests/IMSKiwiTests/…`).
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// `<repo>/Tests/Fixtures/kiwi-corpus`: the KIWI corpus kept with the tests (origins and licences in its
    /// README.md and kiwi/SOURCES.md). Tests that need it fail (not skip) when it is missing.
    static let corpus = repositoryRoot + "/Tests/Fixtures/kiwi-corpus"
    static let valid = corpus + "/kiwi"
    static let invalid = corpus + "/kiwi-invalid"

    static func requireCorpus() throws {
        var isDirectory: ObjCBool = false
        try #require(
            FileManager.default.fileExists(atPath: valid + "/facts.json")
                && FileManager.default.fileExists(atPath: invalid, isDirectory: &isDirectory) && isDirectory.boolValue,
            "the KIWI corpus is missing: expected \(valid)/facts.json and \(invalid)/")
    }

    /// A fresh temporary directory, removed after `body`.
    static func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
        let path = NSTemporaryDirectory() + "ims-kiwi-" + UUID().uuidString.lowercased().prefix(12)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try body(path)
    }

    /// Writes `text` to `directory/name`, creating intermediate directories.
    static func write(_ text: String, to name: String, in directory: String) throws {
        let path = directory + "/" + name
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// Copies a corpus sample into `directory/<id>` and returns the copy's path.
    static func copySample(_ id: String, into directory: String) throws -> String {
        let destination = directory + "/" + id
        try FileManager.default.copyItem(atPath: valid + "/" + id, toPath: destination)
        return destination
    }

    /// A small valid description; `body` goes inside `<image>` after the preferences.
    static func description(
        name: String = "test", schema: String = "7.4", packageManager: String = "zypper",
        types: String = #"<type image="tbz"/>"#, body: String = ""
    ) -> String {
        """
        <?xml version="1.0" encoding="utf-8"?>
        <image schemaversion="\(schema)" name="\(name)">
            <description type="system">
                <author>Test</author>
                <contact>test@example.com</contact>
                <specification>test</specification>
            </description>
            <preferences>
                <version>1.0.0</version>
                <packagemanager>\(packageManager)</packagemanager>
                \(types)
            </preferences>
            <repository type="rpm-md" alias="base">
                <source path="https://download.opensuse.org/distribution/leap/15.6/repo/oss/"/>
            </repository>
            <packages type="bootstrap">
                <package name="filesystem"/>
            </packages>
        \(body)
        </image>
        """
    }

    /// Loads a description written into a temporary directory.
    static func load(_ xml: String, options: KiwiLoadOptions = .init()) throws -> KiwiDescription {
        try withTemporaryDirectory { directory in
            try write(xml, to: "config.xml", in: directory)
            return try KiwiLoader.load(directory: directory, options: options)
        }
    }

    /// Validates a description written into a temporary directory.
    static func validate(_ xml: String, extraFiles: [String: String] = [:]) throws -> [KiwiDiagnostic] {
        try withTemporaryDirectory { directory in
            try write(xml, to: "config.xml", in: directory)
            for (name, text) in extraFiles { try write(text, to: name, in: directory) }
            return KiwiValidator.validate(directory: directory)
        }
    }

    /// The error thrown by `body`, or nil.
    static func kiwiError(_ body: () throws -> Void) -> KiwiError? {
        do {
            try body()
            return nil
        } catch let error as KiwiError {
            return error
        } catch {
            Issue.record("unexpected error type: \(error)")
            return nil
        }
    }
}

extension [KiwiDiagnostic] {
    func with(_ code: KiwiDiagnosticCode) -> [KiwiDiagnostic] { filter { $0.code == code } }
}

import Foundation
import Testing

/// Enum-valued options: an unknown value is a usage error listing the allowed ones (in process).
@Suite("ims enum options", .timeLimit(.minutes(2)))
struct OptionsTests {
    static let id = UUID().uuidString.lowercased()

    /// Commands ending with an unknown enum value (or a malformed age), and values the error must list.
    static let unknownValues: [(arguments: [String], allowed: [String])] = [
        (["jobs", "list", "--status", "bogus"], ["waiting_on_user", "success", "error"]),
        (["jobs", "delete", "--status", "bogus"], ["building_image", "success"]),
        (["jobs", "list", "--job-type", "bogus"], ["create", "customize"]),
        (["jobs", "create", "--artifact-id", id, "--image-root-archive-name", "x", "--job-type", "bogus"], ["create", "customize"]),
        (["build", "recipe", "--linux-distribution", "bogus"], ["sles15", "rocky9"]),
        (["build", "recipe", "--arch", "bogus"], ["x86_64", "aarch64"]),
        (["build", "recipe", "--undefined", "bogus"], ["error", "render-empty"]),
        (["recipes", "create", "--name", "x", "--linux-distribution", "bogus"], ["sles15", "rocky9"]),
        (["recipes", "render", "recipe", "--set", "A=b", "-o", "out", "--undefined", "bogus"], ["error", "render-empty"]),
        (["recipes", "inspect", "recipe", "--distro-family", "bogus"], ["suse", "rhel", "debian"]),
        (["recipes", "pack", "recipe", "-o", "out.tgz", "--format", "bogus"], ["tar.gz", "zip"]),
        (["images", "create", "--name", "x", "--arch", "bogus"], ["x86_64", "aarch64"]),
        (["plugins", "run", "p", "--phase", "hello", "--request", "r.json", "--verb", "bogus"], ["run", "cleanup"]),
        (["store", "ls", "s3://b/", "--addressing-style", "bogus"], ["path", "virtual"]),
        (["jobs", "list", "--older-than", "soon"], []),
    ]

    @Test("an unknown enum value is a usage error: exit 64, naming the option and listing the allowed values",
          arguments: unknownValues)
    func unknownEnumValue(_ arguments: [String], allowed: [String]) async throws {
        let data = NSTemporaryDirectory() + "ims-enum-" + UUID().uuidString.prefix(8)
        // Commands that open a data directory get a fresh one, which must still not exist afterwards.
        let takesDataDir = ["jobs", "build", "images"].contains(arguments[0]) || arguments.starts(with: ["recipes", "create"])
        let dataArguments = takesDataDir ? ["--data-dir", data] : []
        let result = try await CLI.ims(arguments + dataArguments)
        #expect(result.status == 64, "\(arguments): \(result.stderr)")
        #expect(result.stderr.contains(arguments[arguments.count - 2]), "\(result.stderr)")
        for value in allowed { #expect(result.stderr.contains(value), "\(arguments): \(value) not listed in \(result.stderr)") }
        #expect(!FileManager.default.fileExists(atPath: data), "nothing ran")
    }

    @Test("with --json, an unknown enum value is also reported as {code, message, exit_code} on stdout")
    func unknownEnumValueJSON() async throws {
        let result = try await CLI.ims(["jobs", "list", "--status", "bogus", "--json", "--data-dir", NSTemporaryDirectory() + "ims-enum-" + UUID().uuidString.prefix(8)])
        #expect(result.status == 64)
        let report = try ErrorEdgeTests.report(result)
        #expect(report.code == "ims.usage" && report.exitCode == 64 && report.message.contains("success"))
    }
}

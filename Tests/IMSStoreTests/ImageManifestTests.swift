import Foundation
import Testing
@testable import IMSStore

@Suite("Image manifests")
struct ImageManifestTests {
    /// Written by Python: json.dumps(manifest, indent=4, sort_keys=True).
    static let golden = """
        {
            "artifacts": [
                {
                    "link": {
                        "etag": "e1",
                        "path": "s3://boot-images/8c2e/rootfs",
                        "type": "s3"
                    },
                    "md5": "m1",
                    "type": "application/vnd.cray.image.rootfs.squashfs"
                },
                {
                    "link": {
                        "etag": "",
                        "path": "s3://boot-images/8c2e/kernel",
                        "type": "s3"
                    },
                    "md5": "m2",
                    "type": "application/vnd.cray.image.kernel"
                }
            ],
            "created": "2025-01-01 12:00:00.123456",
            "version": "1.0"
        }
        """

    @Test("a manifest round-trips byte for byte in Python's json.dump(indent=4, sort_keys=True) format")
    func goldenRoundTrip() throws {
        let manifest = try ImageManifest.parse(Data(Self.golden.utf8))
        #expect(manifest.artifacts.count == 2 && manifest.rootfs?.md5 == "m1" && manifest.created == "2025-01-01 12:00:00.123456")
        #expect(manifest.encodedString() == Self.golden)
        #expect(manifest.encoded() == Data(Self.golden.utf8))
        let built = ImageManifest(created: "2025-01-01 12:00:00.123456", artifacts: [
            .init(link: ManifestLink(etag: "e1", path: "s3://boot-images/8c2e/rootfs", type: "s3"), md5: "m1", type: ImageArtifactType.rootfs.mediaType),
            .init(link: ManifestLink(etag: "", path: "s3://boot-images/8c2e/kernel", type: "s3"), md5: "m2", type: ImageArtifactType.kernel.mediaType),
        ])
        #expect(built.encodedString() == Self.golden)
    }

    @Test("strings are escaped as Python's ensure_ascii does")
    func escaping() {
        let value = PythonJSON.object(["a": .string("é/😀\u{7f}\"\\\n")])
        #expect(value.serialized() == "{\n    \"a\": \"\\u00e9/\\ud83d\\ude00\\u007f\\\"\\\\\\n\"\n}")
        #expect(PythonJSON.object(["artifacts": .array([]), "b": .object([:])]).serialized() == "{\n    \"artifacts\": [],\n    \"b\": {}\n}")
    }

    @Test("created is Python's str(datetime) in UTC")
    func timestamps() {
        let date = Date(timeIntervalSince1970: 1_735_732_800.123456)
        #expect(ImageManifest.timestamp(date) == "2025-01-01 12:00:00.123456")
        #expect(ImageManifest.timestamp(Date(timeIntervalSince1970: 1_735_732_800)) == "2025-01-01 12:00:00")
        #expect(ImageManifest.timestamp(date, fraction: false) == "2025-01-01 12:00:00")
    }

    static func manifest(_ artifacts: String, version: String = #""version": "1.0""#) -> Data {
        Data(#"{"artifacts": \#(artifacts), "created": "x", \#(version)}"#.utf8)
    }

    static let rootfs = #"{"link": {"path": "s3://b/k", "type": "s3"}, "type": "application/vnd.cray.image.rootfs.squashfs"}"#

    @Test("every structural rule of IMS §6.3 has its own error")
    func structuralProblems() throws {
        func problem(_ data: Data) -> ManifestProblem? {
            do {
                _ = try ImageManifest.parse(data)
                return nil
            } catch {
                return error
            }
        }
        #expect(problem(Self.manifest("[\(Self.rootfs)]")) == nil)
        #expect(problem(Data(repeating: 0x20, count: 1 << 20)) == .tooLarge(size: 1 << 20, limit: 1 << 20))
        #expect(problem(Data([0x7B, 0xFF, 0xFE, 0x7D])) == .notUTF8)
        if case .notJSON = problem(Data("{not json".utf8)) {} else { Issue.record("expected notJSON") }
        #expect(problem(Data("[1, 2]".utf8)) == .notAnObject)
        #expect(problem(Data(#"{"artifacts": []}"#.utf8)) == .missingVersion)
        #expect(problem(Self.manifest("[\(Self.rootfs)]", version: #""version": "2.0""#)) == .unsupportedVersion("2.0"))
        #expect(problem(Self.manifest(#""rootfs""#)) == .artifactsNotAList)
        #expect(problem(Self.manifest("[\(Self.rootfs), 5]")) == .artifactNotAnObject(index: 1))
        #expect(problem(Self.manifest(#"[{"type": "application/vnd.cray.image.kernel"}]"#)) == .linkMissing(index: 0))
        #expect(problem(Self.manifest(#"[{"link": {"path": "http://x", "type": "http"}, "type": "t"}]"#))
            == .linkTypeNotAllowed(index: 0, type: "http", allowed: ["s3", "file"]))
        #expect(problem(Self.manifest(#"[{"link": {"type": "s3"}, "type": "t"}]"#)) == .linkPathMissing(index: 0))
        #expect(problem(Self.manifest(#"[{"link": {"path": "s3://b/k", "type": "s3"}}]"#)) == .artifactTypeMissing(index: 0))
        #expect(problem(Self.manifest("[]")) == .noRootfs)
        #expect(problem(Self.manifest("[\(Self.rootfs), \(Self.rootfs)]")) == .multipleRootfs(count: 2))
        for item in [ManifestProblem.noRootfs, .multipleRootfs(count: 2), .notUTF8, .linkMissing(index: 3)] {
            #expect(!item.description.isEmpty)
        }
    }
}

import Foundation
import IMSEngine
import Testing

/// Reading the SBOM documents the sbom phase writes, and comparing two images' packages.
@Suite("Image SBOMs: reading SPDX documents and comparing images")
struct ImageSBOMTests {
    static func document(_ packages: [(name: String, version: String, arch: String, digest: String?)], repository: String? = "https://mirror/repo") -> Data {
        var entries: [[String: Any]] = [[
            "SPDXID": "SPDXRef-Image", "name": "compute", "downloadLocation": "NOASSERTION", "primaryPackagePurpose": "OPERATING-SYSTEM",
        ]]
        for package in packages {
            var purl = "pkg:rpm/ims/\(package.name)@\(package.version)?arch=\(package.arch)"
            if let repository { purl += "&repository_url=" + (repository.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? repository) }
            var entry: [String: Any] = [
                "SPDXID": "SPDXRef-Package-rpm-\(package.name)", "name": package.name, "versionInfo": package.version,
                "supplier": "Organization: ims tests", "downloadLocation": "NOASSERTION", "licenseDeclared": "MIT",
                "externalRefs": [["referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl]],
            ]
            if let digest = package.digest { entry["checksums"] = [["algorithm": "SHA256", "checksumValue": digest]] }
            entries.append(entry)
        }
        let object: [String: Any] = [
            "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT", "name": "compute",
            "creationInfo": ["created": "2023-11-14T22:13:20Z", "creators": ["Tool: test"]], "packages": entries,
            "relationships": [["spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "SPDXRef-Image"]],
        ]
        return try! JSONSerialization.data(withJSONObject: object)
    }

    @Test("the image's own package is left out; arch, repository and digest come from the purl and checksums")
    func parse() throws {
        let sbom = try ImageSBOM.parse(Self.document([("zlib", "1.2.13-1", "x86_64", "ab12"), ("bash", "1:5.2-3", "x86_64", nil)]))
        #expect(sbom.documentName == "compute" && sbom.created == "2023-11-14T22:13:20Z")
        #expect(sbom.packages.map(\.name) == ["bash", "zlib"], "sorted, without SPDXRef-Image")
        let zlib = try #require(sbom.packages.last)
        #expect(zlib.version == "1.2.13-1" && zlib.arch == "x86_64" && zlib.supplier == "ims tests" && zlib.license == "MIT")
        #expect(zlib.repository == "https://mirror/repo")
        #expect(zlib.digest == "SHA256:ab12")
        #expect(sbom.packages.first?.digest == nil)
    }

    @Test("NOASSERTION is no value, never a repository")
    func noAssertion() throws {
        let sbom = try ImageSBOM.parse(Self.document([("zlib", "1.2.13-1", "x86_64", nil)], repository: nil))
        #expect(sbom.packages.first?.repository == nil)
    }

    @Test("what is not an SPDX 2 document is refused with the reason", arguments: [
        (#"[1, 2]"#, "not a JSON object"),
        (#"{"spdxVersion": "SPDX-3.0"}"#, "SPDX-3.0"),
        (#"{"bomFormat": "CycloneDX"}"#, "missing"),
    ])
    func refused(_ text: String, _ reason: String) {
        #expect {
            try ImageSBOM.parse(Data(text.utf8))
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    @Test("two images differ by added, removed and changed packages (a new version, or the same version from another file)")
    func difference() throws {
        let old = try ImageSBOM.parse(Self.document([
            ("app", "2.1-3", "noarch", "aa"), ("lib", "1.0-1", "x86_64", "bb"), ("gone", "1-1", "noarch", nil), ("same", "1-1", "noarch", "cc"),
            ("rebuilt", "1-1", "x86_64", "dd"),
        ]))
        let new = try ImageSBOM.parse(Self.document([
            ("app", "2.1-4", "noarch", "ee"), ("lib", "1.0-1", "x86_64", "bb"), ("new", "3-1", "noarch", nil), ("same", "1-1", "noarch", "cc"),
            ("rebuilt", "1-1", "x86_64", "ff"),
        ]))
        let difference = old.difference(to: new)
        #expect(difference.added.map(\.name) == ["new"])
        #expect(difference.removed.map(\.name) == ["gone"])
        #expect(difference.changed.map(\.name) == ["app", "rebuilt"])
        #expect(difference.changed.first?.from == "2.1-3" && difference.changed.first?.to == "2.1-4")
        #expect(difference.unchanged == 2)
        #expect(old.difference(to: old).isEmpty)
    }
}

import Foundation

/// The packages of an image as its SPDX 2.3 document lists them (written by the sbom phase, e.g.
/// `org.ims.sbom.rpm`), and the difference between two images.
public struct ImageSBOM: Sendable, Hashable {
    /// One installed package.
    public struct Package: Sendable, Hashable, Codable {
        public var name: String
        /// `[epoch:]version-release`.
        public var version: String
        public var arch: String?
        public var supplier: String?
        public var license: String?
        /// The repository the package came from, when the SBOM knows it.
        public var repository: String?
        /// `SHA256:<hex>` of the package file, when the SBOM knows it.
        public var digest: String?

        enum CodingKeys: String, CodingKey {
            case name, version, arch, supplier, license, repository, digest
        }

        /// Name and arch: what identifies a package across two images.
        var identity: String { name + "." + (arch ?? "") }
    }

    public var documentName: String
    public var created: String?
    public var packages: [Package]

    /// Reads an SPDX 2.3 JSON document; the image's own package (the one the document describes) is left out.
    public static func parse(_ data: Data) throws(EngineError) -> ImageSBOM {
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw EngineError(.artifact, "the SBOM is not a JSON object")
        }
        guard let version = object["spdxVersion"] as? String, version.hasPrefix("SPDX-2.") else {
            throw EngineError(.artifact, "the SBOM is not an SPDX 2.x document (spdxVersion \(object["spdxVersion"].map { "\($0)" } ?? "missing"))")
        }
        let described = Set((object["documentDescribes"] as? [String]) ?? [])
        var describedIDs = described
        for relationship in object["relationships"] as? [[String: Any]] ?? []
        where relationship["spdxElementId"] as? String == "SPDXRef-DOCUMENT" && relationship["relationshipType"] as? String == "DESCRIBES" {
            if let target = relationship["relatedSpdxElement"] as? String { describedIDs.insert(target) }
        }
        var packages: [Package] = []
        for entry in object["packages"] as? [[String: Any]] ?? [] {
            guard let name = entry["name"] as? String, !describedIDs.contains(entry["SPDXID"] as? String ?? "") else { continue }
            let purl = (entry["externalRefs"] as? [[String: Any]] ?? []).first { $0["referenceType"] as? String == "purl" }?["referenceLocator"] as? String
            let qualifiers = purl.map(Self.qualifiers) ?? [:]
            func known(_ value: Any?) -> String? {
                guard let text = value as? String, !text.isEmpty, text != "NOASSERTION", text != "NONE" else { return nil }
                return text
            }
            let checksum = (entry["checksums"] as? [[String: Any]] ?? []).first { $0["algorithm"] as? String == "SHA256" }
            packages.append(Package(
                name: name, version: entry["versionInfo"] as? String ?? "", arch: qualifiers["arch"],
                supplier: known(entry["supplier"]).map { $0.hasPrefix("Organization: ") ? String($0.dropFirst(14)) : $0 },
                license: known(entry["licenseDeclared"]),
                repository: qualifiers["repository_url"] ?? known(entry["downloadLocation"]),
                digest: (checksum?["checksumValue"] as? String).map { "SHA256:" + $0 }))
        }
        packages.sort { ($0.name, $0.arch ?? "", $0.version) < ($1.name, $1.arch ?? "", $1.version) }
        let creation = object["creationInfo"] as? [String: Any]
        return ImageSBOM(documentName: object["name"] as? String ?? "", created: creation?["created"] as? String, packages: packages)
    }

    /// A purl's qualifiers (`?arch=x86_64&epoch=1`), percent-decoded.
    static func qualifiers(_ purl: String) -> [String: String] {
        guard let query = purl.split(separator: "?", maxSplits: 1).dropFirst().first else { return [:] }
        var result: [String: String] = [:]
        for pair in query.split(separator: "#").first?.split(separator: "&") ?? [] {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            result[String(parts[0])] = String(parts[1]).removingPercentEncoding ?? String(parts[1])
        }
        return result
    }

    /// What changed from one image to another.
    public struct Difference: Sendable, Hashable, Codable {
        public struct Change: Sendable, Hashable, Codable {
            public var name: String
            public var arch: String?
            public var from: String
            public var to: String
        }

        public var added: [Package]
        public var removed: [Package]
        /// Same name and arch, another version (or, with the same version, another package file).
        public var changed: [Change]
        public var unchanged: Int

        public var isEmpty: Bool { added.isEmpty && removed.isEmpty && changed.isEmpty }
    }

    /// The packages `other` has that this image does not, the ones it lacks, and the ones whose version differs.
    public func difference(to other: ImageSBOM) -> Difference {
        let before = Dictionary(packages.map { ($0.identity, $0) }, uniquingKeysWith: { first, _ in first })
        let after = Dictionary(other.packages.map { ($0.identity, $0) }, uniquingKeysWith: { first, _ in first })
        var difference = Difference(added: [], removed: [], changed: [], unchanged: 0)
        for package in other.packages where before[package.identity] == nil { difference.added.append(package) }
        for package in packages {
            guard let next = after[package.identity] else {
                difference.removed.append(package)
                continue
            }
            if next.version != package.version {
                difference.changed.append(.init(name: package.name, arch: package.arch, from: package.version, to: next.version))
            } else if let old = package.digest, let new = next.digest, old != new {
                difference.changed.append(.init(name: package.name, arch: package.arch, from: package.version + " (" + old.prefix(19) + "…)", to: next.version + " (" + new.prefix(19) + "…)"))
            } else {
                difference.unchanged += 1
            }
        }
        return difference
    }
}

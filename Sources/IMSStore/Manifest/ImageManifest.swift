import Foundation

/// An image's manifest.json, exactly as IMS reads and ims-python-helper writes it (IMS §6.1):
///
/// ```json
/// {
///     "artifacts": [
///         {
///             "link": {
///                 "etag": "…",
///                 "path": "s3://boot-images/<image-id>/rootfs",
///                 "type": "s3"
///             },
///             "md5": "…",
///             "type": "application/vnd.cray.image.rootfs.squashfs"
///         }
///     ],
///     "created": "2025-01-01 12:00:00.123456",
///     "version": "1.0"
/// }
/// ```
///
/// ``encoded()`` writes sorted keys with four-space indentation, like Python's
/// `json.dump(indent=4, sort_keys=True)`. Links into the local store have type `file` and a `file://` path;
/// manifests of S3 stores keep IMS's `s3` links unchanged, so IMS tooling reads them as before.
public struct ImageManifest: Hashable, Sendable {
    /// Always `"1.0"` (the only version IMS accepts).
    public var version: String
    /// Python's `str(datetime.now())`: `YYYY-MM-DD HH:MM:SS.ffffff` (no fraction when it is zero).
    public var created: String
    /// The artifacts, in upload order.
    public var artifacts: [Artifact]

    /// The only accepted manifest version.
    public static let supportedVersion = "1.0"
    /// Link types accepted inside manifests: IMS's `s3`, and `file` for the local store.
    public static let allowedLinkTypes = ["s3", "file"]

    /// One entry of `artifacts`.
    public struct Artifact: Hashable, Sendable {
        /// Where the artifact is.
        public var link: ManifestLink
        /// Hex md5 of the artifact; absent for the manifest entry of a deleted manifest.
        public var md5: String?
        /// The media type (``ImageArtifactType/mediaType``).
        public var type: String

        public init(link: ManifestLink, md5: String?, type: String) {
            self.link = link
            self.md5 = md5
            self.type = type
        }
    }

    public init(version: String = ImageManifest.supportedVersion, created: String, artifacts: [Artifact]) {
        self.version = version
        self.created = created
        self.artifacts = artifacts
    }

    /// The rootfs artifact, when there is exactly one.
    public var rootfs: Artifact? {
        let matches = artifacts.filter { ImageArtifactType(mediaType: $0.type) == .rootfs }
        return matches.count == 1 ? matches[0] : nil
    }

    /// The manifest as Python's `json.dump(indent=4, sort_keys=True)` writes it (no trailing newline).
    public func encoded() -> Data {
        Data(encodedString().utf8)
    }

    /// ``encoded()`` as text.
    public func encodedString() -> String {
        let items: [PythonJSON] = artifacts.map { artifact in
            var members: [String: PythonJSON] = [
                "link": .object([
                    "etag": .string(artifact.link.etag), "path": .string(artifact.link.path), "type": .string(artifact.link.type),
                ]),
                "type": .string(artifact.type),
            ]
            if let md5 = artifact.md5 { members["md5"] = .string(md5) }
            return .object(members)
        }
        return PythonJSON.object(["artifacts": .array(items), "created": .string(created), "version": .string(version)]).serialized()
    }

    /// Parses and checks a manifest's structure (IMS §6.3 steps 3–6, without looking at the objects).
    ///
    /// - Parameters:
    ///   - data: the manifest's bytes.
    ///   - requireOneRootfs: IMS's rule for image manifests (off for `deleted_manifest.json`).
    ///   - limit: the size limit (IMS `MAX_IMAGE_MANIFEST_SIZE_BYTES`, 1 MiB); the size must be below it.
    /// - Throws: the first ``ManifestProblem`` found.
    public static func parse(_ data: Data, requireOneRootfs: Bool = true, limit: Int64 = ImageArtifacts.maxManifestSize) throws(ManifestProblem) -> ImageManifest {
        guard Int64(data.count) < limit else { throw ManifestProblem.tooLarge(size: Int64(data.count), limit: limit) }
        guard String(data: data, encoding: .utf8) != nil else { throw ManifestProblem.notUTF8 }
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw ManifestProblem.notJSON(detail: (error as NSError).localizedDescription)
        }
        guard let object = root as? [String: Any] else { throw ManifestProblem.notAnObject }
        guard let versionValue = object["version"] else { throw ManifestProblem.missingVersion }
        guard let version = versionValue as? String, version == supportedVersion else {
            throw ManifestProblem.unsupportedVersion((versionValue as? String) ?? String(describing: versionValue))
        }
        guard let list = object["artifacts"] as? [Any] else { throw ManifestProblem.artifactsNotAList }
        var artifacts: [Artifact] = []
        for (index, item) in list.enumerated() {
            guard let entry = item as? [String: Any] else { throw ManifestProblem.artifactNotAnObject(index: index) }
            guard let link = entry["link"] as? [String: Any] else { throw ManifestProblem.linkMissing(index: index) }
            let linkType = link["type"] as? String ?? ""
            guard allowedLinkTypes.contains(linkType) else {
                throw ManifestProblem.linkTypeNotAllowed(index: index, type: linkType, allowed: allowedLinkTypes)
            }
            guard let path = link["path"] as? String, !path.isEmpty else { throw ManifestProblem.linkPathMissing(index: index) }
            guard let type = entry["type"] as? String else { throw ManifestProblem.artifactTypeMissing(index: index) }
            artifacts.append(
                Artifact(link: ManifestLink(etag: link["etag"] as? String ?? "", path: path, type: linkType), md5: entry["md5"] as? String, type: type))
        }
        if requireOneRootfs {
            let count = artifacts.filter { ImageArtifactType(mediaType: $0.type) == .rootfs }.count
            if count == 0 { throw ManifestProblem.noRootfs }
            if count > 1 { throw ManifestProblem.multipleRootfs(count: count) }
        }
        let created = object["created"] as? String ?? ""
        return ImageManifest(version: version, created: created, artifacts: artifacts)
    }

    /// Python's `str(datetime)` of a UTC time: `YYYY-MM-DD HH:MM:SS.ffffff`, without the fraction when it is
    /// zero or when `fraction` is false (IMS's deleted manifests use `%Y-%m-%d %H:%M:%S`).
    public static func timestamp(_ date: Date, fraction: Bool = true) -> String {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        var seconds = time_t(micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000)
        let fractionPart = micros - Int64(seconds) * 1_000_000
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        var text = "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2)) "
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))"
        if fraction && fractionPart != 0 { text += "." + pad(Int32(fractionPart), 6) }
        return text
    }
}

/// The artifacts of an image, with their media types (IMS §6.2) and key names (IMS §7.1).
public enum ImageArtifactType: String, CaseIterable, Sendable, Codable {
    case rootfs
    case kernel
    case initrd
    case bootParameters = "boot_parameters"
    case debugKernel = "debug_kernel"
    /// ims's addition: the image's packages as an SPDX 2.3 JSON document. IMS's consumers select artifacts by their
    /// own types, and IMS's manifest validation accepts any other type, so they are unaffected.
    case sbom

    /// The media type written into manifests (`application/vnd.cray.image.rootfs.squashfs`, …).
    public var mediaType: String {
        switch self {
        case .rootfs: "application/vnd.cray.image.rootfs.squashfs"
        case .kernel: "application/vnd.cray.image.kernel"
        case .initrd: "application/vnd.cray.image.initrd"
        case .bootParameters: "application/vnd.cray.image.parameters.boot"
        case .debugKernel: "application/vnd.cray.image.debug.kernel"
        case .sbom: "application/spdx+json"
        }
    }

    /// The last component of the artifact's key, `boot-images/<image-id>/<keyName>`.
    public var keyName: String { self == .sbom ? "sbom.spdx.json" : rawValue }

    /// The media type of the manifest entry inside `deleted_manifest.json`.
    public static let manifestMediaType = "application/vnd.cray.image.manifest"

    /// The type whose media type is `mediaType` (IMS matches the rootfs by prefix, so suffixes such as
    /// `+squashfs` variants still count as rootfs).
    public init?(mediaType: String) {
        if mediaType.hasPrefix(ImageArtifactType.rootfs.mediaType) {
            self = .rootfs
            return
        }
        guard let match = ImageArtifactType.allCases.first(where: { $0.mediaType == mediaType }) else { return nil }
        self = match
    }
}

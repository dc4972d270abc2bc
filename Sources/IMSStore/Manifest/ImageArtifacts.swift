import Foundation

/// An image's artifacts in any ``ArtifactStore``: upload with a manifest, validation of a manifest link (IMS
/// §6.3), soft delete, undelete and hard delete (IMS §7.4).
public struct ImageArtifacts: Sendable {
    /// The store holding the artifacts.
    public let store: any ArtifactStore

    /// Manifests must be smaller than this (IMS `MAX_IMAGE_MANIFEST_SIZE_BYTES`, 1 MiB).
    public static let maxManifestSize: Int64 = 1 << 20

    public init(store: any ArtifactStore) {
        self.store = store
    }

    /// A file to upload as one artifact of an image.
    public struct ArtifactFile: Sendable, Hashable {
        public var type: ImageArtifactType
        public var path: String
        /// Digests the producer (the packager) reported; the store verifies the bytes against them and need not
        /// compute them again before uploading.
        public var md5: String?
        public var sha256: String?

        public init(type: ImageArtifactType, path: String, md5: String? = nil, sha256: String? = nil) {
            self.type = type
            self.path = path
            self.md5 = md5
            self.sha256 = sha256
        }
    }

    /// What ``upload(imageID:artifacts:imageName:jobID:created:)`` stored.
    public struct Upload: Sendable, Hashable {
        /// The manifest written.
        public var manifest: ImageManifest
        /// The manifest object (`boot-images/<id>/manifest.json`).
        public var manifestObject: StoredObject
        /// The artifact objects, in the order given.
        public var artifacts: [StoredObject]
        /// The link to set on the image record.
        public var link: ManifestLink
    }

    /// A manifest that passed validation.
    public struct Validation: Sendable, Hashable {
        public var manifest: ImageManifest
        /// The manifest object.
        public var manifestObject: StoredObject
        /// The rootfs entry and its object (its md5 is the expected download checksum).
        public var rootfs: ImageManifest.Artifact
        public var rootfsObject: StoredObject
        /// ETag mismatches: IMS only logs these.
        public var warnings: [String]
    }

    /// What a soft delete or undelete moved.
    public struct Relocation: Sendable, Hashable {
        /// The record's new link: the deleted manifest after a soft delete, the original manifest after undelete.
        public var link: ManifestLink
        /// URLs of the objects moved, at their new place.
        public var moved: [String]
        /// URLs listed but absent (skipped, as IMS does).
        public var missing: [String]
    }

    // MARK: - Upload

    /// Stores an image's artifacts under `boot-images/<image-id>/` and writes its manifest (IMS §7.2).
    ///
    /// Each artifact gets the metadata `md5sum`, `x-shasta-ims-image-id` and, when given,
    /// `x-shasta-ims-image-name` and `x-shasta-ims-job-id`; the manifest gets `md5sum`. When anything fails,
    /// every object already stored for this upload is deleted again.
    ///
    /// - Parameters:
    ///   - artifacts: the files; exactly one must be the rootfs.
    /// - Returns: the manifest, the stored objects and the link for the image record.
    public func upload(
        imageID: UUID, artifacts: [ArtifactFile], imageName: String? = nil, jobID: UUID? = nil, created: Date = Date()
    ) async throws(StoreError) -> Upload {
        let manifestURL = store.url(for: .imageManifest(imageID))
        let rootfsCount = artifacts.filter { $0.type == .rootfs }.count
        guard rootfsCount == 1 else {
            throw StoreError.invalidManifest(url: manifestURL, problem: rootfsCount == 0 ? .noRootfs : .multipleRootfs(count: rootfsCount))
        }
        var metadata = ["x-shasta-ims-image-id": imageID.uuidString.lowercased()]
        if let imageName { metadata["x-shasta-ims-image-name"] = imageName }
        if let jobID { metadata["x-shasta-ims-job-id"] = jobID.uuidString.lowercased() }
        var stored: [StoredObject] = []
        do {
            for artifact in artifacts {
                var objectMetadata = metadata
                if let md5 = artifact.md5 { objectMetadata["md5sum"] = md5 }
                if let sha256 = artifact.sha256 { objectMetadata["sha256sum"] = sha256 }
                stored.append(try await store.put(file: artifact.path, key: .imageArtifact(imageID, artifact.type), metadata: objectMetadata))
            }
            let entries = zip(artifacts, stored).map { ($0.type, $1) }
            let (manifest, manifestObject) = try await writeManifest(imageID: imageID, artifacts: entries, created: created)
            return Upload(manifest: manifest, manifestObject: manifestObject, artifacts: stored, link: store.link(for: manifestObject))
        } catch {
            for object in stored { try? await store.delete(object.key) }
            try? await store.delete(.imageManifest(imageID))
            throw error
        }
    }

    /// Writes `boot-images/<image-id>/manifest.json` for artifacts already stored.
    ///
    /// - Returns: the manifest and its stored object.
    public func writeManifest(
        imageID: UUID, artifacts: [(ImageArtifactType, StoredObject)], created: Date = Date()
    ) async throws(StoreError) -> (ImageManifest, StoredObject) {
        let manifest = ImageManifest(
            created: ImageManifest.timestamp(created),
            artifacts: artifacts.map { type, object in
                ImageManifest.Artifact(link: store.link(for: object), md5: object.md5, type: type.mediaType)
            })
        let object = try await store.put(data: manifest.encoded(), key: .imageManifest(imageID))
        return (manifest, object)
    }

    // MARK: - Reading and validation

    /// Reads and parses a manifest (or a deleted manifest) without checking its objects.
    public func readManifest(url: String, requireOneRootfs: Bool = true) async throws(StoreError) -> (ImageManifest, StoredObject) {
        let key = try store.requireKey(for: url)
        guard let object = try await store.head(key) else { throw StoreError.notFound(url: url) }
        guard object.size < Self.maxManifestSize else {
            throw StoreError.invalidManifest(url: url, problem: .tooLarge(size: object.size, limit: Self.maxManifestSize))
        }
        let data = try await store.read(key, limit: Self.maxManifestSize)
        do {
            return (try ImageManifest.parse(data, requireOneRootfs: requireOneRootfs), object)
        } catch {
            throw StoreError.invalidManifest(url: url, problem: error)
        }
    }

    /// Validates a manifest before it becomes an image's link (IMS §6.3): the manifest exists in this store and
    /// is below 1 MiB, is UTF-8 JSON with version "1.0", every artifact has a link of an allowed type with a
    /// path and exists, and exactly one artifact is the rootfs. (Uniqueness of the link among images is the
    /// catalog's check.)
    ///
    /// - Parameters:
    ///   - manifestURL: the link's path.
    ///   - etag: the link's ETag; a mismatch is only a warning.
    /// - Throws: ``StoreError/notInStore(url:store:)``, ``StoreError/notFound(url:)`` or
    ///   ``StoreError/invalidManifest(url:problem:)``.
    public func validate(manifestURL: String, etag: String? = nil) async throws(StoreError) -> Validation {
        let (manifest, manifestObject) = try await readManifest(url: manifestURL)
        var warnings: [String] = []
        if let etag, !etag.isEmpty, etag != manifestObject.etag {
            warnings.append("the link's etag \(etag) differs from the manifest's \(manifestObject.etag)")
        }
        var rootfsObject: StoredObject?
        for (index, artifact) in manifest.artifacts.enumerated() {
            guard let key = store.key(for: artifact.link.path) else {
                throw StoreError.invalidManifest(url: manifestURL, problem: .artifactNotInStore(index: index, path: artifact.link.path))
            }
            guard let object = try await store.head(key) else {
                throw StoreError.invalidManifest(url: manifestURL, problem: .artifactMissing(index: index, path: artifact.link.path))
            }
            if !artifact.link.etag.isEmpty && artifact.link.etag != object.etag {
                warnings.append("artifacts[\(index)] (\(artifact.link.path)): etag \(artifact.link.etag) differs from the stored \(object.etag)")
            }
            if ImageArtifactType(mediaType: artifact.type) == .rootfs { rootfsObject = object }
        }
        guard let rootfs = manifest.rootfs, let rootfsObject else {
            throw StoreError.invalidManifest(url: manifestURL, problem: .noRootfs)
        }
        return Validation(manifest: manifest, manifestObject: manifestObject, rootfs: rootfs, rootfsObject: rootfsObject, warnings: warnings)
    }

    // MARK: - Soft delete, undelete, hard delete

    /// The URL of an image's deleted manifest, `…/boot-images/deleted/<image-id>/deleted_manifest.json`.
    public func deletedManifestURL(imageID: UUID) -> String {
        store.url(for: .deletedImageManifest(imageID))
    }

    /// Soft-deletes an image's objects (IMS §7.4): moves every artifact listed in the manifest and the manifest
    /// itself under `deleted/`, then writes `deleted/<image-id>/deleted_manifest.json` listing the moved
    /// artifacts and, last, the moved manifest (type `application/vnd.cray.image.manifest`). Missing
    /// artifacts are skipped. If a move fails, the objects already moved are moved back.
    ///
    /// - Returns: the link to the deleted manifest (the deleted record's link) and what moved.
    public func softDelete(imageID: UUID, manifestURL: String, at time: Date = Date()) async throws(StoreError) -> Relocation {
        let manifestKey = try store.requireKey(for: manifestURL)
        var manifest: ImageManifest?
        if try await store.head(manifestKey) != nil {
            manifest = try await readManifest(url: manifestURL, requireOneRootfs: false).0
        }
        var plan: [(ImageManifest.Artifact?, ObjectKey)] = []
        for artifact in manifest?.artifacts ?? [] {
            plan.append((artifact, try store.requireKey(for: artifact.link.path)))
        }
        plan.append((nil, manifestKey))

        var moved: [(from: ObjectKey, to: ObjectKey)] = []
        var entries: [ImageManifest.Artifact] = []
        var missing: [String] = []
        do {
            for (artifact, key) in plan {
                let target = key.deleted
                guard try await store.head(key) != nil else {
                    missing.append(store.url(for: key))
                    continue
                }
                let object = try await store.move(key, to: target)
                moved.append((key, target))
                if let artifact {
                    entries.append(ImageManifest.Artifact(link: store.link(for: object), md5: artifact.md5 ?? object.md5, type: artifact.type))
                } else {
                    entries.append(ImageManifest.Artifact(link: store.link(for: object), md5: nil, type: ImageArtifactType.manifestMediaType))
                }
            }
            let deletedManifest = ImageManifest(created: ImageManifest.timestamp(time, fraction: false), artifacts: entries)
            let object = try await store.put(data: deletedManifest.encoded(), key: .deletedImageManifest(imageID))
            return Relocation(link: store.link(for: object), moved: moved.map { store.url(for: $0.to) }, missing: missing)
        } catch {
            for step in moved.reversed() { _ = try? await store.move(step.to, to: step.from) }
            throw error
        }
    }

    /// The manifest URL an image gets back on undelete: the manifest entry of its deleted manifest, outside
    /// `deleted/`.
    public func originalManifestURL(deletedManifestURL: String) async throws(StoreError) -> String {
        let (manifest, _) = try await readManifest(url: deletedManifestURL, requireOneRootfs: false)
        guard let entry = manifest.artifacts.last(where: { $0.type == ImageArtifactType.manifestMediaType }) else {
            throw StoreError.invalidManifest(url: deletedManifestURL, problem: .linkMissing(index: manifest.artifacts.count))
        }
        return try store.restoredURL(for: entry.link.path)
    }

    /// Undoes a soft delete (IMS §7.4): every object listed in the deleted manifest (each key must start with
    /// `deleted/`) moves back, then the deleted manifest is removed. Missing objects are skipped. If a move
    /// fails, the objects already moved go back under `deleted/`.
    ///
    /// - Returns: the link to the restored manifest (the record's link again) and what moved.
    public func undelete(deletedManifestURL: String) async throws(StoreError) -> Relocation {
        let (manifest, _) = try await readManifest(url: deletedManifestURL, requireOneRootfs: false)
        var plan: [(key: ObjectKey, isManifest: Bool)] = []
        for artifact in manifest.artifacts {
            let key = try store.requireKey(for: artifact.link.path)
            guard key.isDeleted else { throw StoreError.notDeleted(url: artifact.link.path) }
            plan.append((key, artifact.type == ImageArtifactType.manifestMediaType))
        }
        guard let manifestEntry = plan.last(where: { $0.isManifest }) else {
            throw StoreError.invalidManifest(url: deletedManifestURL, problem: .linkMissing(index: manifest.artifacts.count))
        }
        var moved: [(from: ObjectKey, to: ObjectKey)] = []
        var missing: [String] = []
        do throws(StoreError) {
            for step in plan {
                let target = try step.key.restored()
                guard try await store.head(step.key) != nil else {
                    missing.append(store.url(for: step.key))
                    continue
                }
                try await store.move(step.key, to: target)
                moved.append((step.key, target))
            }
            let restoredManifestKey = try manifestEntry.key.restored()
            guard let manifestObject = try await store.head(restoredManifestKey) else {
                throw StoreError.notFound(url: store.url(for: restoredManifestKey))
            }
            try await store.delete(try store.requireKey(for: deletedManifestURL))
            return Relocation(link: store.link(for: manifestObject), moved: moved.map { store.url(for: $0.to) }, missing: missing)
        } catch {
            for step in moved.reversed() { _ = try? await store.move(step.to, to: step.from) }
            throw error
        }
    }

    /// Deletes for good every artifact listed in a manifest (or deleted manifest), then the manifest itself
    /// (IMS permanent delete and v2 cascade). Missing objects are skipped; a missing manifest deletes nothing.
    ///
    /// - Returns: the URLs deleted.
    @discardableResult
    public func hardDelete(manifestURL: String) async throws(StoreError) -> [String] {
        let manifestKey = try store.requireKey(for: manifestURL)
        guard try await store.head(manifestKey) != nil else { return [] }
        let (manifest, _) = try await readManifest(url: manifestURL, requireOneRootfs: false)
        var deleted: [String] = []
        for artifact in manifest.artifacts {
            let key = try store.requireKey(for: artifact.link.path)
            if try await store.head(key) != nil {
                try await store.delete(key)
                deleted.append(artifact.link.path)
            }
        }
        try await store.delete(manifestKey)
        deleted.append(manifestURL)
        return deleted
    }
}

import Foundation
import Testing
@testable import IMSStore

@Suite("Image and recipe artifacts", .timeLimit(.minutes(1)))
struct ImageArtifactsTests {
    static func upload(_ fixture: StoreFixture, id: UUID = UUID()) async throws -> (UUID, ImageArtifacts.Upload) {
        let images = ImageArtifacts(store: fixture.store)
        let files = [
            ImageArtifacts.ArtifactFile(type: .rootfs, path: try fixture.file("image.sqsh", size: 2 * (1 << 20) + 7, seed: 1)),
            ImageArtifacts.ArtifactFile(type: .kernel, path: try fixture.file("vmlinuz", size: 5000, seed: 2)),
            ImageArtifacts.ArtifactFile(type: .initrd, path: try fixture.file("initrd", size: 7000, seed: 3)),
            ImageArtifacts.ArtifactFile(type: .bootParameters, path: try fixture.file("kernel-parameters", size: 80, seed: 4)),
        ]
        return (id, try await images.upload(imageID: id, artifacts: files, imageName: "compute", jobID: UUID()))
    }

    /// key → md5 of every object in the store.
    static func snapshot(_ store: LocalArtifactStore) async throws -> [String: String] {
        var result: [String: String] = [:]
        for bucket in ["boot-images", "ims"] {
            for object in try await store.list(bucket: bucket, prefix: "") { result[object.key.description] = object.md5 }
        }
        return result
    }

    @Test("upload stores the artifacts and a manifest that validates")
    func uploadAndValidate() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (id, upload) = try await Self.upload(fixture)
        let idText = id.uuidString.lowercased()
        #expect(upload.link.path == "file://\(fixture.store.root)/boot-images/\(idText)/manifest.json")
        #expect(upload.link.type == "file" && upload.link.etag == upload.manifestObject.md5)
        #expect(upload.manifest.artifacts.map(\.type) == [
            "application/vnd.cray.image.rootfs.squashfs", "application/vnd.cray.image.kernel",
            "application/vnd.cray.image.initrd", "application/vnd.cray.image.parameters.boot",
        ])
        #expect(upload.artifacts[0].metadata["x-shasta-ims-image-id"] == idText)
        #expect(upload.artifacts[0].metadata["x-shasta-ims-image-name"] == "compute")
        let stored = try await fixture.store.read(.imageManifest(id), limit: 1 << 20)
        #expect(stored == upload.manifest.encoded())
        let validation = try await ImageArtifacts(store: fixture.store).validate(manifestURL: upload.link.path, etag: upload.link.etag)
        #expect(validation.warnings.isEmpty && validation.rootfsObject.md5 == upload.artifacts[0].md5)
        // An ETag mismatch is only a warning.
        let warned = try await ImageArtifacts(store: fixture.store).validate(manifestURL: upload.link.path, etag: "different")
        #expect(warned.warnings.count == 1)
    }

    @Test("validation fails clearly for missing manifests, missing artifacts and links outside the store")
    func validationFailures() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let images = ImageArtifacts(store: fixture.store)
        let missingURL = fixture.store.url(for: try ObjectKey(bucket: "boot-images", key: "none/manifest.json"))
        await #expect(throws: StoreError.notFound(url: missingURL)) { try await images.validate(manifestURL: missingURL) }
        await #expect(throws: StoreError.notInStore(url: "s3://boot-images/x/manifest.json", store: fixture.store.url)) {
            try await images.validate(manifestURL: "s3://boot-images/x/manifest.json")
        }
        let (_, upload) = try await Self.upload(fixture)
        try await fixture.store.delete(.imageArtifact(try #require(UUID(uuidString: String(upload.link.path.split(separator: "/").dropLast().last ?? ""))), .kernel))
        do {
            _ = try await images.validate(manifestURL: upload.link.path)
            Issue.record("validation should fail")
        } catch {
            guard case .invalidManifest(_, .artifactMissing(index: 1, _)) = error else {
                Issue.record("unexpected \(error)")
                return
            }
        }
        // An S3 link inside a manifest of the local store.
        let s3Manifest = Data(#"{"artifacts": [{"link": {"path": "s3://boot-images/a/rootfs", "type": "s3"}, "type": "application/vnd.cray.image.rootfs.squashfs"}], "created": "x", "version": "1.0"}"#.utf8)
        let s3Key = try ObjectKey(bucket: "boot-images", key: "s3/manifest.json")
        try await fixture.store.put(data: s3Manifest, key: s3Key)
        await #expect(throws: StoreError.invalidManifest(url: fixture.store.url(for: s3Key), problem: .artifactNotInStore(index: 0, path: "s3://boot-images/a/rootfs"))) {
            try await images.validate(manifestURL: fixture.store.url(for: s3Key))
        }
        let big = try ObjectKey(bucket: "boot-images", key: "big/manifest.json")
        try await fixture.store.put(data: Data(repeating: 0x20, count: 1 << 20), key: big)
        await #expect(throws: StoreError.invalidManifest(url: fixture.store.url(for: big), problem: .tooLarge(size: 1 << 20, limit: 1 << 20))) {
            try await images.validate(manifestURL: fixture.store.url(for: big))
        }
        let noRootfs = try ObjectKey(bucket: "boot-images", key: "nr/manifest.json")
        try await fixture.store.put(data: Data(#"{"artifacts": [], "created": "x", "version": "1.0"}"#.utf8), key: noRootfs)
        await #expect(throws: StoreError.invalidManifest(url: fixture.store.url(for: noRootfs), problem: .noRootfs)) {
            try await images.validate(manifestURL: fixture.store.url(for: noRootfs))
        }
        await #expect(throws: StoreError.self) {
            try await images.upload(imageID: UUID(), artifacts: [ImageArtifacts.ArtifactFile(type: .kernel, path: "/dev/null")])
        }
    }

    @Test("soft delete then undelete brings every object back with the same digests")
    func softDeleteUndelete() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let images = ImageArtifacts(store: fixture.store)
        let (id, upload) = try await Self.upload(fixture)
        let before = try await Self.snapshot(fixture.store)
        #expect(before.count == 5)

        let deleted = try await images.softDelete(imageID: id, manifestURL: upload.link.path)
        #expect(deleted.link.path == images.deletedManifestURL(imageID: id))
        #expect(deleted.moved.count == 5 && deleted.missing.isEmpty)
        let during = try await Self.snapshot(fixture.store)
        #expect(during.keys.allSatisfy { $0.hasPrefix("boot-images/deleted/") })
        for (key, md5) in before { #expect(during[key.replacingOccurrences(of: "boot-images/", with: "boot-images/deleted/")] == md5) }
        let (deletedManifest, _) = try await images.readManifest(url: deleted.link.path, requireOneRootfs: false)
        #expect(deletedManifest.artifacts.last?.type == "application/vnd.cray.image.manifest")
        #expect(deletedManifest.artifacts.last?.md5 == nil)
        #expect(deletedManifest.artifacts.count == 5 && deletedManifest.created.count == 19)
        #expect(try await images.originalManifestURL(deletedManifestURL: deleted.link.path) == upload.link.path)

        let restored = try await images.undelete(deletedManifestURL: deleted.link.path)
        #expect(restored.link == upload.link)
        #expect(try await Self.snapshot(fixture.store) == before)
        #expect(!fixture.allFiles().contains { $0.contains("deleted") })
        _ = try await images.validate(manifestURL: restored.link.path)
        // Undelete wants keys under deleted/.
        await #expect(throws: StoreError.self) { try await images.undelete(deletedManifestURL: upload.link.path) }
    }

    @Test("hard delete leaves nothing behind, from live or soft-deleted images")
    func hardDelete() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let images = ImageArtifacts(store: fixture.store)
        let (_, live) = try await Self.upload(fixture)
        #expect(try await images.hardDelete(manifestURL: live.link.path).count == 5)
        let (id, other) = try await Self.upload(fixture)
        let deleted = try await images.softDelete(imageID: id, manifestURL: other.link.path)
        #expect(try await images.hardDelete(manifestURL: deleted.link.path).count == 6)
        #expect(fixture.allFiles().isEmpty, "\(fixture.allFiles())")
        #expect(try await images.hardDelete(manifestURL: deleted.link.path).isEmpty)
    }

    @Test("recipe archives store, soft delete, undelete and hard delete")
    func recipes() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let recipes = RecipeArtifacts(store: fixture.store)
        let id = UUID()
        let archive = try fixture.file("recipe.tgz", size: 4096)
        let stored = try await recipes.store(recipeID: id, archive: archive)
        #expect(stored.key == .recipeArchive(id) && stored.metadata["md5sum"] == stored.md5)
        #expect(try await recipes.check(url: stored.url) == stored)
        let deleted = try await recipes.softDelete(url: stored.url)
        #expect(deleted.path == fixture.store.url(for: ObjectKey.recipeArchive(id).deleted) && deleted.etag == stored.md5)
        await #expect(throws: StoreError.notFound(url: stored.url)) { try await recipes.check(url: stored.url) }
        let restored = try await recipes.undelete(url: deleted.path)
        #expect(restored.path == stored.url)
        #expect(try await recipes.check(url: stored.url).md5 == stored.md5)
        await #expect(throws: StoreError.notDeleted(url: stored.url)) { try await recipes.undelete(url: stored.url) }
        try await recipes.hardDelete(url: stored.url)
        #expect(fixture.allFiles().isEmpty)
    }
}

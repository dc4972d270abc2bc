import Foundation
import Testing
@testable import IMSStore

@Suite("Local artifact store", .timeLimit(.minutes(1)))
struct LocalArtifactStoreTests {
    @Test("digests match md5sum and sha256sum, across 1 MiB chunk boundaries")
    func digests() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let path = try fixture.file("blob", size: 3 * (1 << 20) + 12345)
        let key = try ObjectKey(bucket: "boot-images", key: "abc/rootfs")
        let stored = try await fixture.store.put(file: path, key: key, metadata: ["x-shasta-ims-image-id": "abc"])
        let md5 = try run("/usr/bin/md5sum", [path]).split(separator: " ")[0]
        let sha256 = try run("/usr/bin/sha256sum", [path]).split(separator: " ")[0]
        #expect(stored.md5 == String(md5) && stored.sha256 == String(sha256) && stored.etag == stored.md5)
        #expect(stored.size == Int64(3 * (1 << 20) + 12345))
        #expect(stored.url == "file://\(fixture.store.root)/boot-images/abc/rootfs")
        #expect(stored.metadata == ["x-shasta-ims-image-id": "abc", "md5sum": stored.md5])
        #expect(try await fixture.store.head(key) == stored)
        let copy = fixture.scratch + "/out/copy"
        try await fixture.store.get(key, to: copy)
        #expect(FileManager.default.contentsEqual(atPath: path, andPath: copy))
        let small = try await fixture.store.put(data: Data("hello\n".utf8), key: try ObjectKey(bucket: "b", key: "k"))
        #expect(small.md5 == "b1946ac92492d2347c6235b4d2611184")
        #expect(small.sha256 == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
        #expect(try await fixture.store.read(small.key, limit: 100) == Data("hello\n".utf8))
        await #expect(throws: StoreError.tooLarge(url: small.url, size: 6, limit: 5)) { try await fixture.store.read(small.key, limit: 5) }
    }

    @Test("a put whose source fails leaves nothing under the key and no visible temporary file")
    func atomicPut() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        struct Boom: Error {}
        let key = try ObjectKey(bucket: "boot-images", key: "img/rootfs")
        let failing = AsyncThrowingStream<Data, any Error> { continuation in
            continuation.yield(Data(repeating: 1, count: 1 << 20))
            continuation.yield(Data(repeating: 2, count: 1 << 20))
            continuation.finish(throwing: Boom())
        }
        await #expect(throws: StoreError.self) { try await fixture.store.put(.stream(failing), key: key, metadata: [:]) }
        #expect(try await fixture.store.head(key) == nil)
        #expect(try await fixture.store.list(bucket: "boot-images", prefix: "").isEmpty)
        #expect(fixture.allFiles().isEmpty, "\(fixture.allFiles())")

        // An existing object survives a failed replacement whole.
        let original = try await fixture.store.put(data: Data("version 1".utf8), key: key)
        let failingAgain = AsyncThrowingStream<Data, any Error> { continuation in
            continuation.yield(Data("partial".utf8))
            continuation.finish(throwing: Boom())
        }
        do {
            _ = try await fixture.store.put(.stream(failingAgain), key: key, metadata: [:])
            Issue.record("the put should fail")
        } catch {
            #expect(error.code == "store.source_failed")
        }
        #expect(try await fixture.store.head(key) == original)
        #expect(try await fixture.store.read(key, limit: 100) == Data("version 1".utf8))
        #expect(fixture.allFiles() == ["boot-images/img/rootfs", "boot-images/img/rootfs.ims-meta.json"])

        // A missing source file is an error naming it, and stores nothing.
        await #expect(throws: StoreError.self) { try await fixture.store.put(file: fixture.scratch + "/nope", key: try ObjectKey(bucket: "b", key: "x")) }
        #expect(try await fixture.store.head(try ObjectKey(bucket: "b", key: "x")) == nil)
    }

    @Test("list ignores temporary files and sidecars; delete, copy and move")
    func listCopyMoveDelete() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let a = try ObjectKey(bucket: "boot-images", key: "one/rootfs")
        let b = try ObjectKey(bucket: "boot-images", key: "one/kernel")
        let c = try ObjectKey(bucket: "boot-images", key: "two/rootfs")
        for key in [a, b, c] { try await fixture.store.put(data: Data(key.key.utf8), key: key) }
        // A leftover temporary file from a crashed writer.
        try Data("junk".utf8).write(to: URL(fileURLWithPath: fixture.store.root + "/boot-images/one/.ims-tmp-rootfs-123"))
        #expect(try await fixture.store.list(bucket: "boot-images", prefix: "").map(\.key) == [b, a, c])
        #expect(try await fixture.store.list(bucket: "boot-images", prefix: "one/").map(\.key) == [b, a])
        #expect(try await fixture.store.list(bucket: "nothing", prefix: "").isEmpty)

        let copied = try await fixture.store.copy(a, to: try ObjectKey(bucket: "boot-images", key: "copy/rootfs"))
        #expect(copied.md5 == (try await fixture.store.head(a))?.md5)
        let moved = try await fixture.store.move(c, to: c.deleted)
        #expect(moved.key.key == "deleted/two/rootfs" && moved.size == 10)
        #expect(try await fixture.store.head(c) == nil)
        #expect(!FileManager.default.fileExists(atPath: fixture.store.root + "/boot-images/two"))  // pruned
        await #expect(throws: StoreError.notFound(url: fixture.store.url(for: c))) { try await fixture.store.move(c, to: a) }

        try await fixture.store.delete(a)
        try await fixture.store.delete(a)  // deleting a missing object is fine
        #expect(try await fixture.store.head(a) == nil)
        await #expect(throws: StoreError.notFound(url: fixture.store.url(for: a))) { try await fixture.store.get(a, to: fixture.scratch + "/x") }
    }

    @Test("get detects corruption; a replaced file gets fresh digests")
    func corruption() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let key = try ObjectKey(bucket: "ims", key: "recipes/r/recipe.tar.gz")
        let stored = try await fixture.store.put(data: Data("original content".utf8), key: key)
        let path = fixture.store.path(for: key)
        // Flip bytes in place and restore the modification time: the sidecar still looks valid.
        var info = stat()
        stat(path, &info)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.write(contentsOf: Data("ORIGINAL".utf8))
        try handle.close()
        var times = [info.st_atim, info.st_mtim]
        utimensat(AT_FDCWD, path, &times, 0)
        let destination = fixture.scratch + "/r.tgz"
        await #expect(throws: StoreError.self) { try await fixture.store.get(key, to: destination) }
        #expect(!FileManager.default.fileExists(atPath: destination))
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: fixture.scratch)).contains { $0.hasPrefix(".ims-tmp-") })

        // Replaced by hand: the sidecar no longer matches the file, so head recomputes.
        try Data("replaced".utf8).write(to: URL(fileURLWithPath: path))
        let fresh = try #require(try await fixture.store.head(key))
        #expect(fresh.md5 != stored.md5 && fresh.size == 8)
        try await fixture.store.get(key, to: destination)
        #expect(try Data(contentsOf: URL(fileURLWithPath: destination)) == Data("replaced".utf8))
    }

    @Test("keys and URLs")
    func keys() throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let id = try #require(UUID(uuidString: "8C2E0F6A-1111-2222-3333-444455556666"))
        #expect(ObjectKey.imageManifest(id).description == "boot-images/8c2e0f6a-1111-2222-3333-444455556666/manifest.json")
        #expect(ObjectKey.recipeArchive(id).description == "ims/recipes/8c2e0f6a-1111-2222-3333-444455556666/recipe.tar.gz")
        #expect(ObjectKey.deletedImageManifest(id).description == "boot-images/deleted/8c2e0f6a-1111-2222-3333-444455556666/deleted_manifest.json")
        #expect(ObjectKey.imageArtifact(id, .bootParameters).key.hasSuffix("/boot_parameters"))
        let key = ObjectKey.recipeArchive(id)
        #expect(key.deleted.key == "deleted/recipes/8c2e0f6a-1111-2222-3333-444455556666/recipe.tar.gz")
        #expect(try key.deleted.restored() == key)
        #expect(throws: StoreError.self) { try key.restored() }
        let url = fixture.store.url(for: key)
        #expect(url == "file://\(fixture.store.root)/ims/recipes/8c2e0f6a-1111-2222-3333-444455556666/recipe.tar.gz")
        #expect(fixture.store.key(for: url) == key)
        #expect(fixture.store.key(for: "s3://ims/recipes/x") == nil)
        #expect(fixture.store.key(for: "file:///elsewhere/ims/x") == nil)
        #expect(ObjectKey.parseS3("s3://boot-images/abc/rootfs") == (try ObjectKey(bucket: "boot-images", key: "abc/rootfs")))
        for bad in ["", "../x", "a//b", "a/./b", "x.ims-meta.json", ".ims-tmp-x", "/abs"] {
            #expect(throws: StoreError.self, "\(bad)") { try ObjectKey(bucket: "b", key: bad) }
        }
        #expect(throws: StoreError.self) { try ObjectKey(bucket: "a/b", key: "k") }
        #expect(throws: StoreError.self) { try ArtifactStores.open(url: "s3://bucket") }
        #expect(throws: StoreError.self) { try ArtifactStores.open(url: "file://relative") }
        #expect(try ArtifactStores.open(url: "file://" + fixture.directory + "/other/").url == "file://" + fixture.directory + "/other")
    }
}

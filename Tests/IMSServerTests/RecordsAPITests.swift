import Foundation
import Testing

/// Recipes, images, public keys and the v3 deleted collections through a real `ims serve`.
@Suite("records API", .timeLimit(.minutes(3)))
struct RecordsAPITests {
    @Test("public keys: create, list, get, soft delete, deleted/, undelete, permanent delete; no PATCH")
    func publicKeys() async throws {
        let server = try await TestServer()
        defer { server.terminate() }
        let created = try await server.post("/v3/public-keys", ["name": "admin", "public_key": TestServer.publicKey])
        #expect(created.status == 201, "\(created)")
        #expect(created.contentType == "application/json")
        let id = try #require(created.object["id"] as? String)
        #expect(created.object["public_key"] as? String == TestServer.publicKey)
        #expect((created.object["created"] as? String)?.hasSuffix("+00:00") == true, "timestamps carry their zone")
        #expect(try await server.get("/v3/public-keys").array.map { $0["id"] as? String } == [id])
        #expect(try await server.get("/v3/public-keys/\(id)").object["name"] as? String == "admin")

        let patch = try await server.patch("/v3/public-keys/\(id)", ["name": "x"])
        #expect(patch.status == 405)
        #expect(patch.headers.first(name: "allow") == "GET, DELETE")

        #expect(try await server.delete("/v3/public-keys/\(id)").status == 204)
        #expect(try await server.get("/v3/public-keys/\(id)").status == 404)
        let deleted = try await server.get("/v3/deleted/public-keys/\(id)")
        #expect(deleted.status == 200 && deleted.object["deleted"] != nil)
        let undeleted = try await server.patch("/v3/deleted/public-keys/\(id)", ["operation": "undelete"])
        #expect(undeleted.status == 204 && undeleted.body.isEmpty)
        #expect(try await server.get("/v3/public-keys/\(id)").object["public_key"] as? String == TestServer.publicKey)
        #expect(try await server.delete("/v3/deleted/public-keys/\(id)").status == 404, "live records are not under deleted/")

        // Collection-level: soft-delete all, then delete all for good.
        _ = try await server.createPublicKey()
        #expect(try await server.delete("/v3/public-keys").status == 204)
        #expect(try await server.get("/v3/public-keys").array.isEmpty)
        #expect(try await server.get("/v3/deleted/public-keys").array.count == 2)
        #expect(try await server.delete("/v3/deleted/public-keys").status == 204)
        #expect(try await server.get("/v3/deleted/public-keys").array.isEmpty)

        // v2 (and the unversioned alias) deletes for good.
        let v2 = try await server.createPublicKey()
        #expect(try await server.delete("/public-keys/\(v2)").status == 204)
        #expect(try await server.get("/v3/deleted/public-keys/\(v2)").status == 404)
        #expect(try await server.get("/v2/public-keys/\(v2)").status == 404)

        // A line that is not an authorized_keys entry.
        #expect(try await server.post("/v3/public-keys", ["name": "bad", "public_key": "hello"]).status == 422)
    }

    @Test("recipes: create with a stored archive, PATCH rules, soft delete moves the archive, undelete restores every field")
    func recipes() async throws {
        let server = try await TestServer()
        defer { server.terminate() }
        let link = try server.storeRecipeArchive()
        let created = try await server.post("/v3/recipes", [
            "name": "compute", "recipe_type": "kiwi-ng", "linux_distribution": "sles15", "arch": "aarch64", "require_dkms": false,
            "template_dictionary": [["key": "CSM_RELEASE", "value": "1.6"]],
        ])
        #expect(created.status == 201, "\(created)")
        let id = try #require(created.object["id"] as? String)
        #expect(created.object["link"] is NSNull)
        #expect(created.object["require_dkms"] as? Bool == false)

        // PATCH: link set once (the same again is fine, a different one is a conflict), arch, require_dkms, template_dictionary.
        let linked = try await server.patch("/v3/recipes/\(id)", ["link": ["path": link, "etag": "", "type": "file"]])
        #expect(linked.status == 200, "\(linked)")
        #expect((linked.object["link"] as? [String: Any])?["etag"] as? String != "")
        #expect(try await server.patch("/v3/recipes/\(id)", ["link": ["path": link, "type": "file"]]).status == 200)
        let other = try server.storeRecipeArchive()
        let conflict = try await server.patch("/v3/recipes/\(id)", ["link": ["path": other, "type": "file"]])
        #expect(conflict.status == 409, "\(conflict)")
        #expect(conflict.contentType == "application/problem+json" && conflict.object["title"] as? String == "Conflict")
        let changed = try await server.patch("/v3/recipes/\(id)", [
            "arch": "x86_64", "require_dkms": true, "template_dictionary": [["key": "A", "value": "1"], ["key": "B", "value": "2"]],
        ])
        #expect(changed.object["arch"] as? String == "x86_64" && changed.object["require_dkms"] as? Bool == true)
        #expect((changed.object["template_dictionary"] as? [[String: String]])?.map { $0["key"] } == ["A", "B"])
        #expect(try await server.patch("/v3/recipes/\(id)", ["name": "renamed"]).status == 422, "name is not patchable in IMS")
        let missing = try await server.patch("/v3/recipes/\(UUID().uuidString)", ["arch": "x86_64"])
        #expect(missing.status == 404)

        // A link to an object that does not exist.
        let absent = try await server.post("/v3/recipes", [
            "name": "x", "recipe_type": "kiwi-ng", "linux_distribution": "sles15",
            "link": ["path": "file://\(server.data)/store/ims/recipes/nothing/recipe.tar.gz", "type": "file"],
        ])
        #expect(absent.status == 422, "\(absent)")

        // Soft delete: the archive moves under deleted/; undelete restores it and every field.
        let before = try await server.get("/v3/recipes/\(id)").body
        #expect(try await server.delete("/v3/recipes/\(id)").status == 204)
        #expect(try await server.get("/v3/recipes/\(id)").status == 404)
        let deleted = try await server.get("/v3/deleted/recipes/\(id)").object
        let deletedPath = try #require((deleted["link"] as? [String: Any])?["path"] as? String)
        #expect(deletedPath.contains("/deleted/"))
        #expect(FileManager.default.fileExists(atPath: String(deletedPath.dropFirst("file://".count))))
        #expect(try await server.patch("/v3/deleted/recipes/\(id)", ["operation": "undelete"]).status == 204)
        let restored = try await server.get("/v3/recipes/\(id)")
        #expect(restored.body == before, "every field is restored")
        let after = restored.object

        // v2 DELETE removes the record and, with cascade (the default), the archive.
        let path = try #require((after["link"] as? [String: Any])?["path"] as? String)
        #expect(try await server.delete("/v2/recipes/\(id)").status == 204)
        #expect(try await server.get("/v3/deleted/recipes/\(id)").status == 404)
        #expect(!FileManager.default.fileExists(atPath: String(path.dropFirst("file://".count))))
    }

    @Test("images: metadata as cray sends it, link validation, PATCH metadata, v2 cascade=false keeps the artifacts")
    func images() async throws {
        let server = try await TestServer()
        defer { server.terminate() }
        // `cray ims images create --name n --metadata-key tag --metadata-value prod` sends {key, value}.
        let tagged = try await server.post("/apis/ims/v3/images", ["name": "tagged", "metadata": ["key": "tag", "value": "prod"]])
        #expect(tagged.status == 201, "\(tagged)")
        #expect(tagged.object["metadata"] as? [String: String] == ["tag": "prod"])
        let plain = try await server.post("/v3/images", ["name": "plain"])
        #expect(plain.object["metadata"] as? [String: String] == [:], "metadata is always returned")
        let mapped = try await server.post("/v3/images", ["name": "mapped", "metadata": ["a": "1", "b": "2"]])
        #expect(mapped.object["metadata"] as? [String: String] == ["a": "1", "b": "2"])

        // A valid manifest link; then an invalid one (no rootfs) is 422.
        let manifest = try server.storeManifest()
        let linked = try await server.post("/v3/images", ["name": "linked", "link": ["path": manifest, "etag": "", "type": "file"]])
        #expect(linked.status == 201, "\(linked)")
        let imageID = try #require(linked.object["id"] as? String)
        let broken = try server.storeObject(bucket: "boot-images", key: "broken/manifest.json", contents: Data(#"{"version": "1.0", "created": "x", "artifacts": []}"#.utf8))
        let invalid = try await server.post("/v3/images", ["name": "broken", "link": ["path": broken, "type": "file"]])
        #expect(invalid.status == 422, "\(invalid)")
        #expect(invalid.contentType == "application/problem+json")
        #expect((invalid.object["errors"] as? [String: Any])?["link"] != nil)
        let mismatched = try await server.post("/v3/images", ["name": "x", "link": ["path": manifest, "type": "s3"]])
        #expect(mismatched.status == 422)

        // PATCH: metadata set and remove; link again is fine, a different link conflicts.
        let plainID = try #require(plain.object["id"] as? String)
        let set = try await server.patch("/v3/images/\(plainID)", ["metadata": ["operation": "set", "key": "k", "value": "v"]])
        #expect(set.status == 200 && set.object["metadata"] as? [String: String] == ["k": "v"], "\(set)")
        let removed = try await server.patch("/v3/images/\(plainID)", ["metadata": ["operation": "remove", "key": "k"]])
        #expect(removed.object["metadata"] as? [String: String] == [:])
        #expect(try await server.patch("/v3/images/\(imageID)", ["link": ["path": manifest, "type": "file"]]).status == 200)
        let second = try server.storeManifest()
        #expect(try await server.patch("/v3/images/\(imageID)", ["link": ["path": second, "type": "file"]]).status == 409)
        #expect(try await server.patch("/v3/images/\(plainID)", ["arch": "aarch64"]).object["arch"] as? String == "aarch64")

        // Lists are ordered by created.
        let names = try await server.get("/v3/images").array.compactMap { $0["name"] as? String }
        #expect(names == ["tagged", "plain", "mapped", "linked"])

        // Soft delete moves the artifacts; undelete restores them; v2 with cascade=false keeps them.
        #expect(try await server.delete("/v3/images/\(imageID)").status == 204)
        #expect(try await server.get("/v3/deleted/images").array.map { $0["id"] as? String } == [imageID])
        #expect(!FileManager.default.fileExists(atPath: String(manifest.dropFirst("file://".count))))
        #expect(try await server.patch("/v3/deleted/images", ["operation": "undelete"]).status == 204)
        #expect(FileManager.default.fileExists(atPath: String(manifest.dropFirst("file://".count))))
        #expect(try await server.delete("/v2/images/\(imageID)?cascade=false").status == 204)
        #expect(FileManager.default.fileExists(atPath: String(manifest.dropFirst("file://".count))))
        #expect(try await server.get("/images/\(imageID)").status == 404)
        #expect(try await server.delete("/v2/images?cascade=maybe").status == 400)
        #expect(try await server.delete("/images").status == 204)
        #expect(try await server.get("/v2/images").array.isEmpty)
        #expect(try await server.get("/v3/deleted/images").array.isEmpty, "v2 deletes for good")
    }
}

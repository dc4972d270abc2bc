import Foundation
import IMSCatalog
import Testing

@Suite("Recipe, image and public key records")
struct RecordTests {
    @Test("recipe soft delete and undelete keep every field; the link moves and comes back")
    func recipeRoundTrip() throws {
        try withTemporaryCatalog { catalog, _ in
            let created = try catalog.createRecipe(fullRecipe())
            #expect(try catalog.recipe(created.id) == created)
            let deleted = try catalog.softDeleteRecipe(created.id) { link in
                ArtifactLink(path: link.path.replacingOccurrences(of: "/ims/", with: "/ims/deleted/"), etag: link.etag, type: link.type)
            }
            #expect(deleted.previousLink == created.link)
            #expect(deleted.record.link?.path == "file:///store/ims/deleted/recipes/r/recipe.tar.gz")
            #expect(try catalog.recipes().isEmpty)
            let listedDeleted = try catalog.recipes(deleted: true)
            #expect(listedDeleted.count == 1)
            var expected = created
            expected.link = deleted.record.link
            expected.deleted = listedDeleted[0].deleted
            #expect(listedDeleted[0] == expected)
            #expect(listedDeleted[0].deleted != nil)
            #expect(throws: CatalogError.notFound(kind: .recipe, id: created.id.imsString)) { try catalog.recipe(created.id) }
            let restored = try catalog.undeleteRecipe(created.id) { link in
                ArtifactLink(path: link.path.replacingOccurrences(of: "/ims/deleted/", with: "/ims/"), etag: link.etag, type: link.type)
            }
            #expect(restored.record == created)
            #expect(try catalog.recipe(created.id) == created)
            #expect(try catalog.recipes(deleted: true).isEmpty)
            // Every field, explicitly (IMS lost arch, require_dkms, template_dictionary on the way).
            let back = try catalog.recipe(created.id)
            #expect(back.arch == .aarch64 && back.requireDKMS == false && back.linuxDistribution == .rocky9)
            #expect(back.templateDictionary == created.templateDictionary && back.link == created.link)
            #expect(back.created == created.created && back.name == created.name && back.recipeType == .kiwiNG)
        }
    }

    @Test("image soft delete and undelete keep every field, metadata included")
    func imageRoundTrip() throws {
        try withTemporaryCatalog { catalog, _ in
            let created = try catalog.createImage(fullImage())
            #expect(try catalog.image(created.id) == created)
            let deleted = try catalog.softDeleteImage(created.id) { _ in
                ArtifactLink(path: "file:///store/boot-images/deleted/i/deleted_manifest.json", etag: "d", type: .file)
            }
            #expect(try catalog.images().isEmpty)
            let listed = try #require(try catalog.images(deleted: true).first)
            #expect(listed.metadata == created.metadata && listed.arch == .aarch64 && listed.name == created.name)
            #expect(listed.link == deleted.record.link && listed.deleted != nil)
            let restored = try catalog.undeleteImage(created.id) { _ in try #require(deleted.previousLink) }
            #expect(restored.record == created)
            #expect(try catalog.images() == [created])
        }
    }

    @Test("public keys soft delete, undelete and delete for good")
    func publicKeys() throws {
        try withTemporaryCatalog { catalog, _ in
            let key = try catalog.createPublicKey(PublicKeyRecord(name: "admin", publicKey: "ssh-ed25519 AAAA user"))
            #expect(try catalog.publicKeys() == [key])
            let deleted = try catalog.softDeletePublicKey(key.id)
            #expect(deleted.deleted != nil)
            #expect(try catalog.publicKeys().isEmpty)
            #expect(try catalog.publicKeys(deleted: true) == [deleted])
            #expect(try catalog.undeletePublicKey(key.id) == key)
            try catalog.deletePublicKeyPermanently(key.id)
            #expect(throws: CatalogError.notFound(kind: .publicKey, id: key.id.imsString)) { try catalog.publicKey(key.id, scope: .any) }
            #expect(throws: CatalogError.self) { try catalog.createPublicKey(PublicKeyRecord(name: "", publicKey: "x")) }
        }
    }

    @Test("a link is idempotent, a different one conflicts, and links are unique per kind")
    func linkSemantics() throws {
        try withTemporaryCatalog { catalog, _ in
            let first = try catalog.createRecipe(fullRecipe(linkPath: nil))
            let second = try catalog.createRecipe(fullRecipe(name: "other", linkPath: nil))
            let a = link("file:///s/ims/recipes/a/recipe.tar.gz")
            let b = link("file:///s/ims/recipes/b/recipe.tar.gz")
            try catalog.setRecipeLink(first.id, a)
            #expect(try catalog.setRecipeLink(first.id, a).link == a)  // same link again: no-op
            #expect(throws: CatalogError.linkConflict(kind: .recipe, id: first.id.imsString, current: a.path, requested: b.path)) {
                try catalog.setRecipeLink(first.id, b)
            }
            #expect(throws: CatalogError.linkInUse(kind: .recipe, link: a.path, otherID: first.id.imsString)) {
                try catalog.setRecipeLink(second.id, a)
            }
            #expect(throws: CatalogError.linkInUse(kind: .recipe, link: a.path, otherID: first.id.imsString)) {
                try catalog.createRecipe(fullRecipe(name: "third", linkPath: a.path))
            }
            // An image may use the same path as a recipe: uniqueness is per kind.
            let image = try catalog.createImage(fullImage(linkPath: nil))
            try catalog.setImageLink(image.id, a)
            #expect(throws: CatalogError.self) { try catalog.setImageLink(image.id, b) }
            // A conflict aborts the whole PATCH.
            #expect(throws: CatalogError.self) { try catalog.updateRecipe(first.id, RecipeUpdate(link: b, arch: .x86_64)) }
            #expect(try catalog.recipe(first.id).arch == .aarch64)
            // Undelete refuses a link a live record took meanwhile.
            try catalog.softDeleteRecipe(first.id)
            try catalog.setRecipeLink(second.id, a)
            #expect(throws: CatalogError.linkInUse(kind: .recipe, link: a.path, otherID: second.id.imsString)) {
                try catalog.undeleteRecipe(first.id)
            }
            #expect(throws: CatalogError.self) { try catalog.setRecipeLink(second.id, ArtifactLink(path: "", type: .s3)) }
        }
    }

    @Test("recipe PATCH fields: template_dictionary replaces, arch, require_dkms, name")
    func recipeUpdate() throws {
        try withTemporaryCatalog { catalog, _ in
            let recipe = try catalog.createRecipe(RecipeRecord(name: "r", linuxDistribution: .sles15))
            #expect(recipe.arch == .x86_64 && recipe.requireDKMS && recipe.templateDictionary.isEmpty && recipe.link == nil)
            let updated = try catalog.updateRecipe(
                recipe.id, RecipeUpdate(templateDictionary: [TemplateVariable(key: "k", value: "v")], arch: .aarch64, requireDKMS: false, name: "renamed"))
            #expect(updated.templateDictionary == [TemplateVariable(key: "k", value: "v")])
            #expect(try catalog.recipe(recipe.id) == updated)
            let replaced = try catalog.updateRecipe(recipe.id, RecipeUpdate(templateDictionary: []))
            #expect(replaced.templateDictionary.isEmpty && replaced.name == "renamed" && replaced.arch == .aarch64)
            #expect(throws: CatalogError.notFound(kind: .recipe, id: "00000000-0000-0000-0000-000000000000")) {
                try catalog.updateRecipe(UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)), RecipeUpdate(arch: .x86_64))
            }
        }
    }

    @Test("image metadata set upserts, remove deletes, removing a missing key is a no-op")
    func metadata() throws {
        try withTemporaryCatalog { catalog, _ in
            let image = try catalog.createImage(ImageRecord(name: "img"))
            #expect(image.metadata.isEmpty && image.arch == .x86_64)
            try catalog.updateMetadata(image.id, operation: .set, key: "a", value: "1")
            try catalog.updateMetadata(image.id, operation: .set, key: "a", value: "2")
            try catalog.updateMetadata(image.id, operation: .set, key: "b", value: "3")
            try catalog.updateMetadata(image.id, operation: .remove, key: "b")
            try catalog.updateMetadata(image.id, operation: .remove, key: "missing")
            #expect(try catalog.image(image.id).metadata == ["a": "2"])
            #expect(try catalog.images().first?.metadata == ["a": "2"])
            #expect(throws: CatalogError.self) { try catalog.updateMetadata(image.id, operation: .set, key: "c") }
            let updated = try catalog.updateImage(image.id, ImageUpdate(arch: .aarch64, metadata: [.set("x", "y"), .remove("a")]))
            #expect(updated.metadata == ["x": "y"] && updated.arch == .aarch64)
            #expect(try catalog.image(image.id) == updated)
            try catalog.deleteImagePermanently(image.id)
            #expect(try catalog.images(deleted: false).isEmpty && catalog.images(deleted: true).isEmpty)
        }
    }

    @Test("lists are ordered by creation and never mix live and deleted records")
    func listing() throws {
        try withTemporaryCatalog { catalog, _ in
            let base = IMSTimestamp.now()
            var records: [ImageRecord] = []
            for index in 0..<50 {
                records.append(ImageRecord(created: base.addingTimeInterval(Double(49 - index)), name: "img-\(index)", metadata: index % 7 == 0 ? ["i": "\(index)"] : [:]))
            }
            try catalog.createImages(records)
            let listed = try catalog.images()
            #expect(listed.map(\.name) == records.sorted { $0.created < $1.created }.map(\.name))
            #expect(Set(listed) == Set(records))
            try catalog.softDeleteImage(records[0].id)
            #expect(try catalog.images().count == 49)
            #expect(try catalog.images(deleted: true).map(\.id) == [records[0].id])
            #expect(throws: CatalogError.duplicateID(kind: .image, id: records[1].id.imsString)) { try catalog.createImage(records[1]) }
        }
    }

    @Test("the schema is versioned and a reopened catalog keeps its records")
    func reopen() throws {
        let path = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let directory = DataDirectory(path: path + "/nested/data")
        let recipe: RecipeRecord
        do {
            let catalog = try Catalog(dataDirectory: directory)
            #expect(try catalog.appliedMigrations() == ["v1", "v2-executors"])
            recipe = try catalog.createRecipe(fullRecipe())
        }
        let reopened = try Catalog(dataDirectory: directory)
        #expect(try reopened.recipe(recipe.id) == recipe)
        #expect(FileManager.default.fileExists(atPath: directory.catalogPath))
        let journal = try reopened.appliedMigrations()
        #expect(journal == ["v1", "v2-executors"])
    }
}

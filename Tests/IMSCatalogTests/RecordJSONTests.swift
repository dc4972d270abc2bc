import Foundation
import IMSCatalog
import Synchronization
import Testing

@Suite("Record JSON")
struct RecordJSONTests {
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
        return encoder
    }

    static func foundationJSON<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder().encode(value), as: UTF8.self) + "\n"
    }

    @Test("the fast writer writes exactly what JSONEncoder writes")
    func fastWriterMatchesEncoder() throws {
        var deletedImage = fullImage()
        deletedImage.deleted = IMSTimestamp.now()
        deletedImage.metadata["ctl\u{1}\n\t"] = "back\\slash/\"q\""
        let images = [fullImage(), ImageRecord(name: "plain"), deletedImage]
        #expect(String(decoding: RecordJSONWriter.array(images), as: UTF8.self) == (try Self.foundationJSON(images)))
        #expect(String(decoding: RecordJSONWriter.array([ImageRecord]()), as: UTF8.self) == (try Self.foundationJSON([ImageRecord]())))
        let recipes = [fullRecipe(), RecipeRecord(name: "r", linuxDistribution: .sles15)]
        #expect(String(decoding: RecordJSONWriter.array(recipes), as: UTF8.self) == (try Self.foundationJSON(recipes)))
        let key = PublicKeyRecord(name: "k", publicKey: "ssh-ed25519 AAAA x@y", deleted: IMSTimestamp.now())
        #expect(String(decoding: RecordJSONWriter.object(key), as: UTF8.self) == (try Self.foundationJSON(key)))
        let image = fullImage()
        let compact = String(decoding: RecordJSONWriter.object(image, pretty: false), as: UTF8.self)
        let plainEncoder = JSONEncoder()
        plainEncoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        #expect(compact == String(decoding: try plainEncoder.encode(image), as: UTF8.self) + "\n")
    }

    @Test("records use IMS field names and null links, and decode back")
    func imsFieldNames() throws {
        let recipe = RecipeRecord(name: "r", linuxDistribution: .sles15)
        let object = try #require(try JSONSerialization.jsonObject(with: try JSONEncoder().encode(recipe)) as? [String: Any])
        #expect(Set(object.keys) == ["id", "created", "name", "link", "recipe_type", "linux_distribution", "template_dictionary", "require_dkms", "arch"])
        #expect(object["link"] is NSNull)
        #expect(object["id"] as? String == recipe.id.uuidString.lowercased())
        #expect(object["recipe_type"] as? String == "kiwi-ng" && object["require_dkms"] as? Bool == true)
        #expect(try JSONDecoder().decode(RecipeRecord.self, from: try JSONEncoder().encode(recipe)) == recipe)
        // IMS defaults apply to fields an old record lacks.
        let old = #"{"id":"\#(recipe.id.imsString)","created":"2020-01-01T00:00:00+00:00","name":"r","recipe_type":"kiwi-ng","linux_distribution":"sles15"}"#
        let decoded = try JSONDecoder().decode(RecipeRecord.self, from: Data(old.utf8))
        #expect(decoded.arch == .x86_64 && decoded.requireDKMS && decoded.templateDictionary.isEmpty && decoded.link == nil)
        let image = fullImage()
        #expect(try JSONDecoder().decode(ImageRecord.self, from: try JSONEncoder().encode(image)) == image)
    }

    @Test("job records carry every IMS field plus ims's own")
    func jobFields() throws {
        let job = JobRecord(jobType: .create, artifactID: UUID(), imageRootArchiveName: "img", arch: .aarch64)
        #expect(job.kernelFileName == "Image" && job.buildEnvSize == 60 && job.jobMemSize == 8 && job.status == .creating)
        #expect(job.statusHistory.map(\.status) == [.creating])
        let object = try #require(try JSONSerialization.jsonObject(with: try JSONEncoder().encode(job)) as? [String: Any])
        let expected: Set<String> = [
            "job_type", "artifact_id", "public_key_id", "image_root_archive_name", "enable_debug", "build_env_size",
            "job_mem_size", "kernel_file_name", "initrd_file_name", "kernel_parameters_file_name", "ssh_containers",
            "require_dkms", "id", "created", "status", "resultant_image_id", "arch", "kubernetes_job",
            "kubernetes_service", "kubernetes_configmap", "kubernetes_pvc", "kubernetes_secret", "kubernetes_namespace",
            "remote_build_node", "status_history", "error", "workspace", "pid", "host", "timeout_seconds",
            "executor", "slurm_job_id", "last_report",
        ]
        #expect(Set(object.keys) == expected)
        #expect(try JSONDecoder().decode(JobRecord.self, from: try JSONEncoder().encode(job)) == job)
    }

    @Test("imagesJSON writes exactly the bytes of encoding the listed records")
    func fastListing() throws {
        try withTemporaryCatalog { catalog, _ in
            #expect(String(decoding: try catalog.imagesJSON(), as: UTF8.self) == String(decoding: RecordJSONWriter.array([ImageRecord]()), as: UTF8.self))
            var odd = fullImage(name: "odd \"name\"\n\u{1}/é", linkPath: "file:///s/boot-images/odd/manifest.json")
            odd.metadata = ["b": "2", "a": "1", "B": "\\", "ctl\t": "x"]
            let records = [fullImage(), ImageRecord(name: "plain"), odd, ImageRecord(name: "gone", arch: .aarch64, metadata: ["k": "v"])]
            try catalog.createImages(records)
            try catalog.softDeleteImage(records[3].id)
            for deleted in [false, true] {
                for pretty in [true, false] {
                    let expected = RecordJSONWriter.array(try catalog.images(deleted: deleted), pretty: pretty)
                    let fast = try catalog.imagesJSON(deleted: deleted, pretty: pretty)
                    #expect(String(decoding: fast, as: UTF8.self) == String(decoding: expected, as: UTF8.self), "deleted: \(deleted), pretty: \(pretty)")
                }
            }
            #expect(try JSONDecoder().decode([ImageRecord].self, from: Data(try catalog.imagesJSON())) == (try catalog.images()))
        }
    }

    @Test("imageJSON (the API's single-record read) writes exactly the bytes of encoding the record, and sees every write")
    func fastSingleRead() throws {
        try withTemporaryCatalog { catalog, _ in
            var odd = fullImage(name: "odd \"name\"\n\u{1}/é", linkPath: "file:///s/boot-images/odd/manifest.json")
            odd.metadata = ["b": "2", "a": "1", "B": "\\", "ctl\t": "x", "é": "z", "Z": ""]
            let records = [fullImage(), ImageRecord(name: "plain"), odd, ImageRecord(name: "gone", arch: .aarch64, metadata: ["k": "v"])]
            try catalog.createImages(records)
            try catalog.softDeleteImage(records[3].id)
            for record in records.prefix(3) {
                let expected = RecordJSONWriter.object(try catalog.image(record.id), pretty: false)
                #expect(String(decoding: try catalog.imageJSON(record.id), as: UTF8.self) == String(decoding: expected, as: UTF8.self))
            }
            // A soft-deleted image is found only in the deleted scope; an unknown id is not found.
            #expect(throws: CatalogError.notFound(kind: .image, id: records[3].id.imsString)) { try catalog.imageJSON(records[3].id) }
            let deleted = RecordJSONWriter.object(try catalog.image(records[3].id, scope: .deleted), pretty: false)
            #expect(try catalog.imageJSON(records[3].id, scope: .deleted) == deleted)
            let unknown = UUID()
            #expect(throws: CatalogError.notFound(kind: .image, id: unknown.imsString)) { try catalog.imageJSON(unknown) }
            // The connections are reused: a write through the pool (or another process) is seen by the next read.
            _ = try catalog.updateImage(records[0].id, ImageUpdate(arch: .aarch64, metadata: [MetadataChange(operation: .set, key: "new", value: "1")]))
            let updated = try catalog.image(records[0].id)
            #expect(updated.arch == .aarch64 && updated.metadata["new"] == "1")
            #expect(try catalog.imageJSON(records[0].id) == RecordJSONWriter.object(updated, pretty: false))
            // Many readers at once each get a connection of their own and the same answer.
            let expected = RecordJSONWriter.object(updated, pretty: false)
            let mismatches = Mutex(0)
            DispatchQueue.concurrentPerform(iterations: 64) { _ in
                if (try? catalog.imageJSON(records[0].id)) != expected { mismatches.withLock { $0 += 1 } }
            }
            #expect(mismatches.withLock { $0 } == 0)
        }
    }

    @Test("strings escape like JSONEncoder whatever the position of the special character")
    func escapingPositions() throws {
        var samples: [String] = []
        for special in ["\"", "\\", "\n", "\t", "\u{1}", "\u{1f}", "\u{7f}", "é", "😀", "/", " ", "~"] {
            for position in 0..<20 {
                samples.append(String(repeating: "a", count: position) + special + String(repeating: "b", count: 19 - position))
            }
        }
        samples.append("")
        samples.append(String(repeating: "\"", count: 17))
        let metadata = Dictionary(uniqueKeysWithValues: samples.enumerated().map { ("k\($0.offset)-" + $0.element, $0.element) })
        let image = ImageRecord(name: samples.joined(), metadata: metadata)
        #expect(String(decoding: RecordJSONWriter.object(image), as: UTF8.self) == (try Self.foundationJSON(image)))
    }
}

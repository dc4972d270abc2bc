import Foundation
import IMSCatalog
import Testing

/// `ims catalog backup` and `ims catalog check` at the catalog's level: online backups while others write, and the
/// database's and the catalog's own rules.
@Suite("Catalog backup and check")
struct CatalogMaintenanceTests {
    @Test("a backup taken while another writer inserts is a whole, consistent catalog with the schema recorded")
    func backupWhileWriting() async throws {
        let path = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let catalog = try Catalog(dataDirectory: DataDirectory(path: path))
        try catalog.createImages((0..<500).map { ImageRecord(name: "before-\($0)") })
        let writer = Task.detached {
            for index in 0..<200 { _ = try? catalog.createImage(ImageRecord(name: "during-\(index)")) }
        }
        let backup = path + "/backup.sqlite"
        let report = try catalog.backup(to: backup)
        await writer.value
        #expect(report.schema == (try catalog.appliedMigrations()).sorted())
        #expect((report.records["images"] ?? 0) >= 500)
        #expect(report.bytes > 0)
        // The copy opens as a catalog, passes SQLite's integrity check, and holds every record it counted.
        let copy = try Catalog(path: backup)
        #expect(try copy.checkConsistency().isEmpty)
        #expect(try copy.images().count == report.records["images"])
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: path).contains { $0.contains(".ims-partial-") }))
    }

    @Test("a backup that cannot be written leaves nothing under the name and says where")
    func failedBackup() throws {
        try withTemporaryCatalog { catalog, _ in
            let target = "/nonexistent-ims-dir/backup.sqlite"
            #expect {
                try catalog.backup(to: target)
            } throws: { error in
                "\(error)".contains(target)
            }
            #expect(!FileManager.default.fileExists(atPath: target))
        }
    }

    @Test("check finds nothing wrong with a healthy catalog")
    func healthy() throws {
        try withTemporaryCatalog { catalog, _ in
            _ = try catalog.createImage(fullImage())
            _ = try catalog.createRecipe(fullRecipe())
            #expect(try catalog.checkConsistency().isEmpty)
        }
    }

    @Test("a damaged catalog file is reported by SQLite's integrity check or refused on open, naming the file")
    func damagedFile() throws {
        let path = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let source = try Catalog(dataDirectory: DataDirectory(path: path))
        try source.createImages((0..<2_000).map { ImageRecord(name: "image-\($0)", metadata: ["k": String(repeating: "v", count: 200)]) })
        let backup = path + "/copy.sqlite"
        _ = try source.backup(to: backup)
        // Overwrite pages in the middle of the copy with garbage.
        let handle = try #require(FileHandle(forWritingAtPath: backup))
        try handle.seek(toOffset: 40_960)
        try handle.write(contentsOf: Data(repeating: 0xA5, count: 16_384))
        try handle.close()
        do {
            let damaged = try Catalog(path: backup)
            let problems = try damaged.checkConsistency()
            #expect(problems.contains { $0.rule == "integrity" }, "\(problems)")
        } catch {
            #expect("\(error)".contains(backup), "\(error)")
        }
    }
}

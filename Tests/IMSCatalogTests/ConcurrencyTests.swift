import Foundation
import IMSCatalog
import Testing

@Suite("Several catalogs on one database", .timeLimit(.minutes(2)))
struct ConcurrencyTests {
    @Test("two catalogs writing at once lose no update and never report a locked database")
    func concurrentWriters() async throws {
        let path = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let directory = DataDirectory(path: path)
        // Two pools on one file, as two ims processes have; opened at once so the migration races too.
        async let openedFirst = Task.detached { try Catalog(dataDirectory: directory) }.value
        async let openedSecond = Task.detached { try Catalog(dataDirectory: directory) }.value
        let (first, second) = try await (openedFirst, openedSecond)
        let recipe = try first.createRecipe(fullRecipe())
        let image = try second.createImage(ImageRecord(name: "shared"))
        let job = try first.createJob(JobRequest(jobType: .create, artifactID: recipe.id, imageRootArchiveName: "j"))
        let rounds = 150

        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, catalog) in [first, second].enumerated() {
                group.addTask {
                    for round in 0..<rounds {
                        // Read-modify-write of the JSON status history: the classic lost update.
                        try catalog.transition(job.id, to: round % 2 == 0 ? .buildingImage : .packagingArtifacts, reason: "w\(index)-\(round)")
                        try catalog.updateMetadata(image.id, operation: .set, key: "w\(index)-\(round)", value: "\(round)")
                        if round % 10 == 0 {
                            try catalog.appendJobEvents(job.id, (0..<5).map { JobEvent(kind: "log", data: "\($0)") })
                            _ = try catalog.images()
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let stored = try first.job(job.id)
        #expect(stored.statusHistory.count == 1 + 2 * rounds)
        let reasons = Set(stored.statusHistory.compactMap(\.reason))
        #expect(reasons.count == 2 * rounds)
        #expect(try second.image(image.id).metadata.count == 2 * rounds)
        #expect(try second.jobEvents(job.id).count == 2 * (rounds / 10) * 5)
    }
}

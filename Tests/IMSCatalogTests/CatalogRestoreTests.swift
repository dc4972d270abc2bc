import Foundation
import GRDB
import IMSCatalog
import Testing

/// `ims catalog restore` and the `running_jobs` rule of `ims catalog check`.
@Suite("Catalog restore and running jobs")
struct CatalogRestoreTests {
    @Test("a restore brings back the backup's records and keeps a copy of the catalog it replaced")
    func restoreRoundTrip() throws {
        let path = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let directory = DataDirectory(path: path)
        let catalog = try Catalog(dataDirectory: directory)
        let kept = try catalog.createImage(fullImage())
        _ = try catalog.backup(to: path + "/backup.sqlite")
        let later = try catalog.createImage(ImageRecord(name: "after-the-backup"))
        _ = try catalog.deleteImagePermanently(kept.id)

        let report = try Catalog.restore(from: path + "/backup.sqlite", into: directory)
        #expect(report.records["images"] == 1)
        #expect(try catalog.image(kept.id) == kept)
        #expect(throws: CatalogError.self) { try catalog.image(later.id) }
        // The catalog it replaced is kept, with the record made after the backup.
        let previous = try #require(report.previousCatalog)
        #expect(try Catalog(path: previous).image(later.id).name == "after-the-backup")
    }

    @Test("a restore into a data directory that does not exist yet (a new machine) creates it with the backup's records")
    func restoreOnNewMachine() throws {
        try withTemporaryCatalog { catalog, directory in
            let image = try catalog.createImage(fullImage())
            _ = try catalog.backup(to: directory.path + "/backup.sqlite")
            let fresh = DataDirectory(path: directory.path + "/new-machine/ims")
            let report = try Catalog.restore(from: directory.path + "/backup.sqlite", into: fresh)
            #expect(report.previousCatalog == nil && report.records["images"] == 1)
            #expect(try Catalog(dataDirectory: fresh).image(image.id) == image)
        }
    }

    @Test("a restore is refused while ims serve holds the data directory, and the catalog is unchanged")
    func refusedWhileServing() throws {
        try withTemporaryCatalog { catalog, directory in
            _ = try catalog.backup(to: directory.path + "/backup.sqlite")
            let image = try catalog.createImage(ImageRecord(name: "live"))
            let serving = try #require(try DataDirectoryLock.acquire(directory, mode: .shared))
            #expect {
                try Catalog.restore(from: directory.path + "/backup.sqlite", into: directory)
            } throws: { error in
                guard case .restoreRefused(_, let reason) = error as? CatalogError else { return false }
                return reason.contains("ims serve is running")
            }
            #expect(try catalog.image(image.id).name == "live")
            // A second server may share the directory; neither may start while a restore holds it.
            #expect(try DataDirectoryLock.acquire(directory, mode: .shared) != nil)
            withExtendedLifetime(serving) {}
        }
    }

    @Test("a server cannot take the data directory while a restore holds it")
    func serverWaitsForRestore() throws {
        try withTemporaryCatalog { _, directory in
            do {
                let restoring = try #require(try DataDirectoryLock.acquire(directory, mode: .exclusive))
                #expect(try DataDirectoryLock.acquire(directory, mode: .shared) == nil)
                withExtendedLifetime(restoring) {}
            }
            // Released with the value (or the process).
            #expect(try DataDirectoryLock.acquire(directory, mode: .shared) != nil)
        }
    }

    @Test("a restore is refused while a job's runner is alive")
    func refusedWhileJobRuns() throws {
        try withTemporaryCatalog { catalog, directory in
            _ = try catalog.backup(to: directory.path + "/backup.sqlite")
            let recipe = try catalog.createRecipe(fullRecipe())
            let job = try catalog.createJob(JobRequest(jobType: .create, artifactID: recipe.id, imageRootArchiveName: "x"))
            _ = try catalog.transition(job.id, to: .buildingImage)
            _ = try catalog.setRunner(job.id, pid: getpid())
            #expect {
                try Catalog.restore(from: directory.path + "/backup.sqlite", into: directory)
            } throws: { error in
                "\(error)".contains(job.id.imsString) && "\(error)".contains("building_image")
            }
            #expect(try catalog.job(job.id).status == .buildingImage)
        }
    }

    @Test("a backup from a newer ims (an unknown schema migration) is refused")
    func newerSchema() throws {
        try withTemporaryCatalog { catalog, directory in
            let backup = directory.path + "/backup.sqlite"
            _ = try catalog.backup(to: backup)
            let queue = try DatabaseQueue(path: backup)
            try queue.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')") }
            try queue.close()
            #expect {
                try Catalog.restore(from: backup, into: directory)
            } throws: { error in
                "\(error)".contains("newer ims") && "\(error)".contains("v99-from-the-future")
            }
        }
    }

    @Test("a file that is not a catalog backup is refused", arguments: ["garbage", "sqlite-without-catalog"])
    func notABackup(_ kind: String) throws {
        try withTemporaryCatalog { catalog, directory in
            let backup = directory.path + "/not-a-backup"
            if kind == "garbage" {
                try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: backup))
            } else {
                let queue = try DatabaseQueue(path: backup)
                try queue.write { db in try db.execute(sql: "CREATE TABLE t (x)") }
                try queue.close()
            }
            let image = try catalog.createImage(ImageRecord(name: "kept"))
            #expect(throws: CatalogError.self) { try Catalog.restore(from: backup, into: directory) }
            #expect(try catalog.image(image.id).name == "kept")
        }
    }

    @Test("an unreadable catalog is moved aside and the backup put in its place")
    func restoresOverCorruptCatalog() throws {
        let path = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let directory = DataDirectory(path: path)
        let image: ImageRecord
        do {
            let catalog = try Catalog(dataDirectory: directory)
            image = try catalog.createImage(fullImage())
            _ = try catalog.backup(to: path + "/backup.sqlite")
        }
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: directory.catalogPath + suffix) }
        try Data(repeating: 0x5a, count: 16384).write(to: URL(fileURLWithPath: directory.catalogPath))
        #expect {
            try Catalog(dataDirectory: directory)
        } throws: { error in
            "\(error)".contains(directory.catalogPath) && "\(error)".contains("ims catalog restore")
        }

        let report = try Catalog.restore(from: path + "/backup.sqlite", into: directory)
        #expect(report.previousCatalog?.contains("catalog.sqlite.unreadable-") == true)
        #expect(FileManager.default.fileExists(atPath: try #require(report.previousCatalog)))
        #expect(try Catalog(dataDirectory: directory).image(image.id) == image)
    }

    // MARK: - running_jobs

    static let host = "build-01"
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func job(_ status: JobStatus, pid: Int32? = nil, host: String? = nil, executor: String? = nil, lastReport: TimeInterval? = nil) -> JobRecord {
        var job = JobRecord(jobType: .create, artifactID: UUID(), imageRootArchiveName: "x", status: status, pid: pid, host: host)
        job.executor = executor
        job.lastReport = lastReport.map { now.addingTimeInterval(-$0) }
        return job
    }

    /// Rows: a job, whether `check` reports it, whether it blocks a restore.
    static let liveness: [(label: String, job: JobRecord, reported: Bool, blocksRestore: Bool)] = [
        ("finished", job(.success, pid: 10, host: host), false, false),
        ("failed", job(.error), false, false),
        ("running here, process alive", job(.buildingImage, pid: 10, host: host), false, true),
        ("running here, process gone", job(.buildingImage, pid: 11, host: host), true, false),
        ("running on another host", job(.buildingImage, pid: 11, host: "build-02"), false, true),
        ("queued, no runner yet", job(.creating), false, false),
        ("past creating without a runner (imported from IMS)", job(.waitingOnUser), true, false),
        ("on Slurm, reported 10 s ago", job(.buildingImage, executor: "slurm", lastReport: 10), false, true),
        ("on Slurm, silent for 300 s", job(.buildingImage, executor: "slurm", lastReport: 300), true, false),
        ("on Slurm, not reported yet", job(.creating, executor: "slurm"), false, true),
        ("local executor, process gone", job(.packagingArtifacts, pid: 11, host: host, executor: "local"), true, false),
    ]

    @Test("which unfinished jobs lack a live runner, and which block a restore", arguments: 0..<CatalogRestoreTests.liveness.count)
    func runnerLiveness(_ row: Int) {
        let entry = Self.liveness[row]
        let isAlive = { (pid: Int32) in pid == 10 }
        let problems = RunnerLiveness.problems([entry.job], host: Self.host, now: Self.now, heartbeatTimeout: 60, isAlive: isAlive)
        #expect(problems.isEmpty == !entry.reported, "\(entry.label): \(problems)")
        #expect(problems.allSatisfy { $0.rule == "running_jobs" && $0.record == entry.job.id.imsString })
        let running = RunnerLiveness.possiblyRunning([entry.job], host: Self.host, now: Self.now, heartbeatTimeout: 60, isAlive: isAlive)
        #expect(running.isEmpty == !entry.blocksRestore, "\(entry.label)")
    }
}

import Foundation
import IMSCatalog
import Testing

@Suite("Jobs and job events")
struct JobTests {
    static func seed(_ catalog: Catalog) throws -> (recipe: RecipeRecord, image: ImageRecord, key: PublicKeyRecord) {
        var recipe = fullRecipe()
        recipe.arch = .x86_64
        let storedRecipe = try catalog.createRecipe(recipe)
        let image = try catalog.createImage(fullImage())
        let key = try catalog.createPublicKey(PublicKeyRecord(name: "k", publicKey: "ssh-ed25519 AAAA k"))
        return (storedRecipe, image, key)
    }

    /// Who owns a job when a runner claims it: (recorded pid, recorded host, whether that pid is alive) → outcome.
    @Test("a runner claims a job unless another live runner on this host, or one on another host, owns it", arguments: [
        (nil, nil, false, Catalog.RunnerClaim.claimed),
        (200, "here", true, .claimed),  // the same process again
        (300, "here", false, .claimed),  // a dead runner gives way
        (300, nil, false, .claimed),
        (300, "here", true, .heldBy(pid: 300, host: "here")),
        (300, nil, true, .heldBy(pid: 300, host: nil)),
        (300, "elsewhere", false, .heldBy(pid: 300, host: "elsewhere")),  // liveness elsewhere is unknown here
    ] as [(Int32?, String?, Bool, Catalog.RunnerClaim)])
    func claimRunner(recorded: Int32?, host: String?, alive: Bool, outcome: Catalog.RunnerClaim) throws {
        try withTemporaryCatalog { catalog, _ in
            let (recipe, _, key) = try Self.seed(catalog)
            let job = try catalog.createJob(JobRequest(jobType: .create, artifactID: recipe.id, publicKeyID: key.id, imageRootArchiveName: "out"))
            _ = try catalog.updateJob(job.id) { $0.pid = recorded; $0.host = host }
            #expect(try catalog.claimRunner(job.id, pid: 200, host: "here", isAlive: { _ in alive }) == outcome)
            let after = try catalog.job(job.id)
            if outcome == .claimed {
                #expect(after.pid == 200 && after.host == "here")
            } else {
                #expect(after.pid == recorded && after.host == host)
            }
        }
    }

    @Test("createJob applies IMS's defaults and checks")
    func create() throws {
        try withTemporaryCatalog { catalog, _ in
            let (recipe, image, key) = try Self.seed(catalog)
            let job = try catalog.createJob(JobRequest(jobType: .create, artifactID: recipe.id, publicKeyID: key.id, imageRootArchiveName: "out"))
            #expect(job.arch == .x86_64 && job.kernelFileName == "vmlinuz" && job.initrdFileName == "initrd")
            #expect(job.kernelParametersFileName == "kernel-parameters" && job.buildEnvSize == 60 && job.jobMemSize == 8)
            #expect(job.requireDKMS == false)  // the recipe's value
            #expect(job.sshContainers.isEmpty && job.status == .creating && job.statusHistory.count == 1)
            #expect(try catalog.job(job.id) == job)

            let debug = try catalog.createJob(JobRequest(jobType: .create, artifactID: recipe.id, imageRootArchiveName: "dbg", enableDebug: true, requireDKMS: true))
            #expect(debug.sshContainers == [SSHContainer(name: "debug", jail: false, status: "pending")])
            #expect(debug.requireDKMS)

            let customize = try catalog.createJob(JobRequest(jobType: .customize, artifactID: image.id, publicKeyID: key.id, imageRootArchiveName: "c", requireDKMS: false))
            #expect(customize.arch == .aarch64 && customize.kernelFileName == "Image" && customize.requireDKMS)  // forced on aarch64
            #expect(customize.sshContainers.map(\.name) == ["customize"])

            #expect(throws: CatalogError.notFound(kind: .recipe, id: image.id.imsString)) {
                try catalog.createJob(JobRequest(jobType: .create, artifactID: image.id, imageRootArchiveName: "x"))
            }
            let unknownKey = UUID()
            #expect(throws: CatalogError.notFound(kind: .publicKey, id: unknownKey.imsString)) {
                try catalog.createJob(JobRequest(jobType: .create, artifactID: recipe.id, publicKeyID: unknownKey, imageRootArchiveName: "x"))
            }
            #expect(throws: CatalogError.self) {
                try catalog.createJob(JobRequest(jobType: .create, artifactID: recipe.id, imageRootArchiveName: "x", sshContainers: [SSHContainer(name: "a")]))
            }
            #expect(throws: CatalogError.self) {
                try catalog.createJob(JobRequest(jobType: .customize, artifactID: image.id, imageRootArchiveName: "x", sshContainers: [SSHContainer(name: "a"), SSHContainer(name: "b")]))
            }
            #expect(throws: CatalogError.self) { try catalog.createJob(JobRequest(jobType: .create, artifactID: recipe.id, imageRootArchiveName: "")) }
            #expect(throws: CatalogError.self) { try catalog.createJob(JobRequest(jobType: .create, artifactID: recipe.id, imageRootArchiveName: "x", buildEnvSize: 0)) }
            let unlinked = try catalog.createRecipe(fullRecipe(name: "nolink", linkPath: nil))
            #expect(throws: CatalogError.self) { try catalog.createJob(JobRequest(jobType: .create, artifactID: unlinked.id, imageRootArchiveName: "x")) }
        }
    }

    @Test("transitions append to the persisted history; finish and fail end the job")
    func lifecycle() throws {
        try withTemporaryCatalog { catalog, _ in
            let (recipe, image, _) = try Self.seed(catalog)
            let job = try catalog.createJob(JobRequest(jobType: .create, artifactID: recipe.id, imageRootArchiveName: "out"))
            for status in [JobStatus.fetchingRecipe, .waitingForRepos, .buildingImage, .packagingArtifacts] {
                try catalog.transition(job.id, to: status)
            }
            let finished = try catalog.finish(job.id, resultantImageID: image.id)
            #expect(finished.status == .success && finished.resultantImageID == image.id)
            let stored = try catalog.job(job.id)
            #expect(stored == finished)
            #expect(stored.statusHistory.map(\.status) == [.creating, .fetchingRecipe, .waitingForRepos, .buildingImage, .packagingArtifacts, .success])
            #expect(zip(stored.statusHistory, stored.statusHistory.dropFirst()).allSatisfy { $0.time <= $1.time })

            let other = try catalog.createJob(JobRequest(jobType: .create, artifactID: recipe.id, imageRootArchiveName: "bad"))
            let failure = JobError(code: "build.kiwi_failed", category: "user", message: "kiwi-ng exited 1", phase: "build")
            let failed = try catalog.fail(other.id, error: failure)
            #expect(failed.status == .error && failed.error == failure)
            #expect(try catalog.job(other.id).statusHistory.last == JobStatusChange(status: .error, time: failed.statusHistory.last?.time ?? Date(), reason: "kiwi-ng exited 1"))
            #expect(throws: CatalogError.notFound(kind: .job, id: image.id.imsString)) { try catalog.transition(image.id, to: .error) }
        }
    }

    @Test("jobs filter and delete by status, type and age")
    func filters() throws {
        try withTemporaryCatalog { catalog, _ in
            let (recipe, image, _) = try Self.seed(catalog)
            let a = try catalog.createJob(JobRequest(jobType: .create, artifactID: recipe.id, imageRootArchiveName: "a"))
            let b = try catalog.createJob(JobRequest(jobType: .customize, artifactID: image.id, imageRootArchiveName: "b"))
            let c = try catalog.createJob(JobRequest(jobType: .create, artifactID: recipe.id, imageRootArchiveName: "c"))
            try catalog.fail(c.id, error: JobError(code: "x", category: "internal", message: "m"))
            #expect(try catalog.jobs().map(\.id) == [a.id, b.id, c.id])
            #expect(try catalog.jobs(matching: JobFilter(statuses: [.error])).map(\.id) == [c.id])
            #expect(try catalog.jobs(matching: JobFilter(jobType: .customize)).map(\.id) == [b.id])
            #expect(try catalog.jobs(matching: JobFilter(statuses: [.creating], jobType: .create)).map(\.id) == [a.id])
            let future = Date().addingTimeInterval(7200)
            #expect(try catalog.jobs(matching: JobFilter(olderThan: 3600), now: future).count == 3)
            #expect(try catalog.jobs(matching: JobFilter(olderThan: 3600)).isEmpty)
            #expect(try catalog.jobs(matching: JobFilter(newerThan: 3600)).count == 3)
            try catalog.appendJobEvents(c.id, [JobEvent(kind: "log", data: "{}")])
            let removed = try catalog.deleteJobs(matching: JobFilter(statuses: [.error, .success]))
            #expect(removed.map(\.id) == [c.id])
            #expect(try catalog.jobs().map(\.id) == [a.id, b.id])
            #expect(try catalog.jobEvents(c.id).isEmpty)  // deleted with the job
            try catalog.deleteJob(a.id)
            #expect(try catalog.jobs().map(\.id) == [b.id])
        }
    }

    @Test("job events append in batches and follow by sequence")
    func events() throws {
        try withTemporaryCatalog { catalog, _ in
            let (recipe, _, _) = try Self.seed(catalog)
            let job = try catalog.createJob(JobRequest(jobType: .create, artifactID: recipe.id, imageRootArchiveName: "a"))
            let first = try catalog.appendJobEvents(job.id, (0..<100).map { JobEvent(phase: "build", pluginID: "org.ims.kiwi", kind: "log", data: #"{"line":\#($0)}"#) })
            #expect(first.count == 100)
            #expect(first.map(\.sequence) == Array(first[0].sequence..<(first[0].sequence + 100)))
            let all = try catalog.jobEvents(job.id)
            #expect(all == first)
            let last = try #require(all.last?.sequence)
            #expect(try catalog.jobEvents(job.id, after: last).isEmpty)
            try catalog.appendJobEvents(job.id, [JobEvent(kind: "progress", data: #"{"percent":50}"#)])
            let followed = try catalog.jobEvents(job.id, after: last)
            #expect(followed.map(\.kind) == ["progress"] && followed[0].sequence > last)
            #expect(try catalog.jobEvents(job.id, after: 0, limit: 10).count == 10)
            #expect(throws: CatalogError.notFound(kind: .job, id: recipe.id.imsString)) {
                try catalog.appendJobEvents(recipe.id, [JobEvent(kind: "log", data: "{}")])
            }
        }
    }

    @Test("markInterrupted fails unfinished jobs whose runner is gone")
    func interrupted() throws {
        try withTemporaryCatalog { catalog, _ in
            let (recipe, _, _) = try Self.seed(catalog)
            let host = Catalog.currentHost
            let alive = try catalog.createJob(JobRequest(jobType: .create, artifactID: recipe.id, imageRootArchiveName: "a", pid: getpid(), host: host))
            let dead = try catalog.createJob(JobRequest(jobType: .create, artifactID: recipe.id, imageRootArchiveName: "b", pid: 999_999_99, host: host))
            try catalog.transition(dead.id, to: .buildingImage)
            let elsewhere = try catalog.createJob(JobRequest(jobType: .create, artifactID: recipe.id, imageRootArchiveName: "c", pid: 999_999_99, host: "other-host"))
            let done = try catalog.createJob(JobRequest(jobType: .create, artifactID: recipe.id, imageRootArchiveName: "d", pid: 999_999_99, host: host))
            try catalog.fail(done.id, error: JobError(code: "x", category: "internal", message: "m"))
            let marked = try catalog.markInterrupted()
            #expect(marked.map(\.id) == [dead.id])
            let stored = try catalog.job(dead.id)
            #expect(stored.status == .error)
            #expect(stored.statusHistory.last?.reason == "interrupted: the ims process running this job stopped (pid 99999999)")
            #expect(stored.error?.code == "ims.job.interrupted")
            #expect(try catalog.job(alive.id).status == .creating)
            #expect(try catalog.job(elsewhere.id).status == .creating)
            #expect(Catalog.processIsAlive(getpid()) && !Catalog.processIsAlive(999_999_99))
        }
    }
}

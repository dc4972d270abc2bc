import Foundation
import IMSCatalog
import IMSEngine
import Testing

/// A workspace is never removed across a mount: what is mounted below it is released first (root only: the tests
/// mount a tmpfs).
@Suite("Workspace removal and mounts")
struct WorkspaceMountsTests {
    static func mount(_ point: String) -> Bool {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/mount") else { return false }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/mount")
        process.arguments = ["-t", "tmpfs", "ims-test", point]
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    @Test("mounts below a workspace (nested, and with a space in the name) are released before it is removed")
    func releasedThenRemoved() throws {
        let workspace = EngineFixtures.temporaryDirectory("ims-ws-mounts")
        let outer = workspace + "/phases/customize/in/rootfs/proc"
        let inner = workspace + "/phases/customize/in/rootfs/proc/with space"
        try FileManager.default.createDirectory(atPath: outer, withIntermediateDirectories: true)
        guard Self.mount(outer) else {
            try FileManager.default.removeItem(atPath: workspace)
            return  // not root: nothing to mount
        }
        try FileManager.default.createDirectory(atPath: inner, withIntermediateDirectories: true)
        #expect(Self.mount(inner))
        // A file on the mounted tmpfs: a removal that crossed into the mount would delete it before unmounting.
        #expect(FileManager.default.createFile(atPath: inner + "/kept", contents: Data("x".utf8)))
        #expect(WorkspaceMounts.mounts(under: workspace) == [inner, outer])
        try WorkspaceMounts.remove(workspace)
        #expect(WorkspaceMounts.mounts(under: workspace).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: workspace))
        #expect(WorkspaceMounts.mounts(under: "/").isEmpty, "the root is never a workspace")
    }

    @Test("jobs marked interrupted get the mounts below their workspace released, and keep the workspace")
    func interruptedJobsReleaseMounts() throws {
        let directory = EngineFixtures.temporaryDirectory("ims-ws-interrupted")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let workspace = directory + "/jobs/one"
        let proc = workspace + "/rootfs/proc"
        try FileManager.default.createDirectory(atPath: proc, withIntermediateDirectories: true)
        guard Self.mount(proc) else { return }
        let catalog = try Catalog(path: directory + "/catalog.db")
        let image = try catalog.createImage(ImageRecord(name: "base", link: try ArtifactLink(url: "s3://boot-images/base/manifest.json")))
        var job = try catalog.createJob(JobRequest(jobType: .customize, artifactID: image.id, imageRootArchiveName: "x", pid: 999_999_99))
        job = try catalog.setRunner(job.id, pid: 999_999_99, workspace: workspace)
        let marked = WorkspaceMounts.markInterrupted(catalog)
        #expect(marked.map(\.id) == [job.id])
        #expect(WorkspaceMounts.mounts(under: workspace).isEmpty)
        #expect(FileManager.default.fileExists(atPath: proc))
    }
}

import Foundation
import IMSArchive
import IMSCatalog
import IMSKiwi
import IMSPluginHost
import IMSProtocol
import IMSRecipes
import IMSStore

/// The builtin steps: what the engine does itself, between the plugins' phases.
extension JobExecution {
    func fetchRecipe(_ step: PipelineStep) async throws -> [String: JSONValue] {
        guard job.jobType == .create else {
            throw EngineError(.pipeline, "fetch-recipe only applies to create jobs", step: step.name)
        }
        let recipe = try environment.catalog.recipe(job.artifactID)
        self.recipe = recipe
        guard let link = recipe.link else {
            throw EngineError(.recipe, "recipe \(recipe.id.uuidString.lowercased()) ('\(recipe.name)') has no link to a stored archive", step: step.name)
        }
        let store = environment.store
        let key = try store.requireKey(for: link.path)
        let directory = try stepDirectory(step)
        let archive = directory + "/" + ((link.path as NSString).lastPathComponent.isEmpty ? "recipe.tar.gz" : (link.path as NSString).lastPathComponent)
        let object = try await store.get(key, to: archive)
        let (recipeDirectory, report) = try RecipeSource.workingCopy(of: archive, in: workspace + "/recipe")
        try? FileManager.default.removeItem(atPath: archive)
        artifacts["recipe"] = ArtifactRef(path: recipeDirectory, kind: .dir)
        sink.record(.log("info", "fetched \(link.path) (\(object.size) bytes, md5 \(object.md5)) and unpacked \(report?.entries ?? 0) entries"), step: step.name)
        return ["recipe_id": .string(recipe.id.uuidString.lowercased()), "md5": .string(object.md5), "entries": .number(Double(report?.entries ?? 0))]
    }

    /// Customize jobs: the source image's manifest is validated, its rootfs copied from the store (md5 checked
    /// against the manifest) and unpacked with unsquashfs, as IMS's prepare container does.
    func fetchImage(_ step: PipelineStep) async throws -> [String: JSONValue] {
        guard job.jobType == .customize else {
            throw EngineError(.pipeline, "fetch-image only applies to customize jobs", step: step.name)
        }
        let image = try environment.catalog.image(job.artifactID)
        let imageID = image.id.uuidString.lowercased()
        guard let link = image.link else {
            throw EngineError(.artifact, "image \(imageID) ('\(image.name)') has no manifest link", step: step.name)
        }
        let validation = try await ImageArtifacts(store: environment.store).validate(manifestURL: link.path, etag: link.etag)
        for warning in validation.warnings {
            sink.record(.log("warn", warning), step: step.name)
        }
        guard let unsquashfs = HostCommand.locate("unsquashfs", path: PluginInvoker.systemPath) else {
            throw EngineError(.plugin, "unsquashfs is not installed on this host (PATH \(PluginInvoker.systemPath)); install squashfs-tools", step: step.name)
        }
        let directory = try stepDirectory(step)
        let squashfs = directory + "/rootfs.sqsh"
        let object = try await environment.store.get(validation.rootfsObject.key, to: squashfs)
        if let expected = validation.rootfs.md5, !expected.isEmpty, expected != object.md5 {
            try? FileManager.default.removeItem(atPath: squashfs)
            throw EngineError(.artifact, "the rootfs \(validation.rootfs.link.path) has md5 \(object.md5), but the manifest says \(expected)", step: step.name)
        }
        let rootfs = directory + "/rootfs"
        try? FileManager.default.removeItem(atPath: rootfs)  // a retried step starts clean
        let unpacked: HostCommand.Result
        do {
            unpacked = try await HostCommand.run(unsquashfs, ["-no-progress", "-f", "-d", rootfs, squashfs])
        } catch {
            throw EngineError(.hostTool, error.description, step: step.name)
        }
        if Task.isCancelled { throw CancellationError() }
        try? FileManager.default.removeItem(atPath: squashfs)
        guard unpacked.exit == .exited(0) else {
            throw EngineError(.artifact, "unsquashfs of \(validation.rootfs.link.path) failed (\(unpacked.exit?.description ?? "not reaped")): \(unpacked.outputTail.suffix(3).joined(separator: "; "))", step: step.name)
        }
        artifacts["rootfs"] = ArtifactRef(path: rootfs, kind: .dir)
        try stageSiteCA(step)
        sink.record(.log("info", "fetched \(validation.rootfs.link.path) (\(object.size) bytes, md5 \(object.md5)) of image \(imageID) and unpacked it"), step: step.name)
        try preflight(after: step)
        return [
            "image_id": .string(imageID), "manifest": .string(link.path), "rootfs": .string(validation.rootfs.link.path),
            "md5": .string(object.md5), "size": .number(Double(object.size)),
        ]
    }

    /// Copies the site CA certificate (when configured) into the job as the `ca_cert` artifact.
    func stageSiteCA(_ step: PipelineStep) throws {
        guard let caCert = environment.settings.caCert else { return }
        let copy = try stepDirectory(step) + "/site-ca.pem"
        try? FileManager.default.removeItem(atPath: copy)
        try FileManager.default.copyItem(atPath: caCert, toPath: copy)
        artifacts["ca_cert"] = ArtifactRef(path: copy, kind: .file, mediaType: "application/x-pem-file")
    }

    func prepareRecipe(_ step: PipelineStep) throws -> [String: JSONValue] {
        guard let recipeDirectory = artifacts["recipe"]?.path, let recipe else {
            throw EngineError(.pipeline, "prepare-recipe needs the recipe: put fetch-recipe before it", step: step.name)
        }
        let values = recipe.templateDictionary.isEmpty ? nil : TemplateValues(Dictionary(recipe.templateDictionary.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last }))
        let family = options.distroFamily ?? recipe.linuxDistribution.family.rawValue
        let prepared = try RecipePreparer.prepare(
            directory: recipeDirectory, values: values,
            undefined: options.undefinedVariables == .renderEmpty ? .renderEmpty : .error,
            rules: environment.settings.rewriteRules, distroFamilyOverride: family)
        for diagnostic in prepared.diagnostics {
            sink.record(.diagnostic(.init(severity: diagnostic.severity.rawValue, message: diagnostic.description)), step: step.name)
        }
        for rewrite in prepared.rewrites {
            sink.record(.log("info", "repository \(rewrite.alias ?? "?"): \(rewrite.old ?? "(none)") -> \(rewrite.new)"), step: step.name)
        }
        let resolved = ResolvedDescription.resolve(
            prepared.description, profiles: options.profiles ?? [], arch: job.arch.rawValue, distroFamily: prepared.distroFamily,
            recipeDirectory: recipeDirectory)
        let descriptionPath = try stepDirectory(step) + "/description.json"
        try resolved.write(to: descriptionPath)
        resolvedDescription = resolved
        artifacts["description"] = ArtifactRef(path: descriptionPath, kind: .file, mediaType: "application/json")
        try stageSiteCA(step)
        criteria = SelectionCriteria(distroFamily: prepared.distroFamily, packageManager: prepared.packageManager, arch: job.arch.rawValue)
        try preflight(after: step)
        return [
            "distro_family": .string(prepared.distroFamily),
            "package_manager": prepared.packageManager.map(JSONValue.string) ?? .null,
            "rendered_files": .array(prepared.rendered.map { .string($0.path) }),
            "rewrites": .number(Double(prepared.rewrites.count)),
            "repositories": .number(Double(resolved.repositories.count)),
            "warnings": .number(Double(prepared.diagnostics.filter { $0.severity == .warning }.count)),
        ]
    }

    func waitForRepos(_ step: PipelineStep) async throws -> [String: JSONValue] {
        guard let resolved = resolvedDescription else {
            throw EngineError(.pipeline, "wait-for-repos needs a prepared recipe: put prepare-recipe before it", step: step.name)
        }
        let probes = resolved.repositories.map { repository in
            RepositoryProbe(
                alias: repository.alias, source: repository.source,
                kind: repository.type.hasPrefix("apt") ? .apt : .rpmMD, distribution: repository.distribution)
        }
        let settings = environment.settings
        let readiness = RepositoryReadiness(
            caBundlePath: settings.caCert, timeout: .seconds(settings.repositoryTimeoutSeconds ?? 500),
            pollInterval: .seconds(settings.repositoryPollSeconds ?? 10))
        let sink = self.sink
        let stepName = step.name
        let report = try await readiness.wait(for: probes) { statuses in
            let waiting = statuses.filter { !$0.ready }.map { $0.alias ?? $0.source }
            sink.record(.log("info", waiting.isEmpty ? "all repositories answer" : "waiting for \(waiting.joined(separator: ", "))"), step: stepName)
        }
        guard report.ready else {
            let missing = report.repositories.filter { !$0.ready }.map { "\($0.alias ?? $0.source) (\($0.source)): \($0.reason ?? "not ready")" }
            throw EngineError(.repositories, "repositories not ready: " + missing.joined(separator: "; "), step: step.name)
        }
        rememberRepositoryDigests(Dictionary(
            report.repositories.compactMap { status in status.metadataDigest.map { (status.source, $0) } }, uniquingKeysWith: { first, _ in first }))
        return ["ready": .number(Double(report.repositories.count)), "skipped": .array(report.skipped.map(JSONValue.string)), "seconds": .number(report.seconds)]
    }

    func uploadArtifacts(_ step: PipelineStep) async throws -> [String: JSONValue] {
        guard let rootfs = packaged["rootfs"], let kernel = packaged["kernel"], let initrd = packaged["initrd"] else {
            let have = packaged.keys.sorted().joined(separator: ", ")
            throw EngineError(.artifact, "the package step must produce rootfs, kernel and initrd (it produced: \(have.isEmpty ? "nothing" : have))", step: step.name)
        }
        // The packager's digests go along: the store verifies the bytes against them instead of hashing twice.
        func file(_ type: ImageArtifactType, _ ref: ArtifactRef) -> ImageArtifacts.ArtifactFile {
            let sha256 = ref.digest.flatMap { $0.hasPrefix("sha256:") ? String($0.dropFirst(7)) : nil }
            return ImageArtifacts.ArtifactFile(type: type, path: ref.path, md5: packagedMD5[type.rawValue], sha256: sha256)
        }
        var files = [file(.rootfs, rootfs), file(.kernel, kernel), file(.initrd, initrd)]
        if let parameters = packaged["boot_parameters"] { files.append(file(.bootParameters, parameters)) }
        // ims's addition to IMS's artifacts: the SBOM an sbom step made of the root (docs/records.md).
        if let sbom = artifacts["sbom"] { files.append(file(.sbom, sbom)) }
        let imageID = self.imageID ?? UUID()
        self.imageID = imageID
        let artifactsHelper = ImageArtifacts(store: environment.store)
        let upload = try await artifactsHelper.upload(imageID: imageID, artifacts: files, imageName: job.imageRootArchiveName, jobID: job.id)
        self.upload = upload
        // Verify: what the store holds is what the packager produced.
        for (file, object) in zip(files, upload.artifacts) {
            let name = file.type.rawValue
            if let digest = packaged[name]?.digest, digest.hasPrefix("sha256:"), !object.sha256.isEmpty, String(digest.dropFirst(7)) != object.sha256 {
                throw EngineError(.artifact, "stored \(name) has sha256 \(object.sha256) but the packager reported \(digest.dropFirst(7))", step: step.name)
            }
            if let md5 = packagedMD5[name], md5 != object.md5 {
                throw EngineError(.artifact, "stored \(name) has md5 \(object.md5) but the packager reported \(md5)", step: step.name)
            }
        }
        setManifestText(upload.manifest.encodedString())
        sink.record(.log("info", "stored \(files.count) artifacts and \(upload.link.path)"), step: step.name)
        return [
            "image_id": .string(imageID.uuidString.lowercased()), "manifest": .string(upload.link.path),
            "artifacts": .array(upload.artifacts.map { .object(["key": .string($0.key.description), "size": .number(Double($0.size)), "md5": .string($0.md5)]) }),
        ]
    }

    func registerImage(_ step: PipelineStep) async throws -> [String: JSONValue] {
        guard let upload, let imageID else {
            throw EngineError(.pipeline, "register-image needs uploaded artifacts: put upload-artifacts before it", step: step.name)
        }
        // Never register an image whose objects are not all there and consistent.
        _ = try await ImageArtifacts(store: environment.store).validate(manifestURL: upload.link.path, etag: upload.link.etag)
        let link = try ArtifactLink(url: upload.link.path, etag: upload.link.etag)
        let image = try environment.catalog.createImage(ImageRecord(id: imageID, name: job.imageRootArchiveName, link: link, arch: job.arch))
        try finish(with: image, step: step.name)
        return ["image_id": .string(image.id.uuidString.lowercased())]
    }

    /// Removes stored objects of an upload whose image was not registered (nothing half-registered).
    func rollBackUpload() async {
        guard let upload, registeredImage == nil else { return }
        for object in upload.artifacts { try? await environment.store.delete(object.key) }
        try? await environment.store.delete(upload.manifestObject.key)
    }
}

import Foundation
import Hummingbird
import IMSCatalog
import IMSEngine
import IMSProtocol
import IMSStore

extension APIHandler {
    /// `/v3/jobs/{id}/runner…`: a remote runner fetches its job, reports progress (its heartbeat) and delivers its
    /// result, each authorized by the job's own runner token. A runner whose job ended without it (cancelled,
    /// deleted, or marked `error` when it fell silent) gets 409 and must stop; its late result is refused.
    func runner(_ request: APIRequest) async throws -> Response {
        let catalog = services.catalog
        let idText: String
        switch request.endpoint {
        case .jobRunner(let id), .jobRunnerReport(let id), .jobRunnerResult(let id): idText = id
        default: throw Self.unreachable(request)
        }
        let jobID = try Self.uuid(idText, kind: "job")
        // One read: the job's status and its token (a report is the hot path: 50 runners report every second or so).
        let access = try catalog.runnerAccess(jobID)
        if let reason = RunnerTokens.rejection(authorization: request.authorization, stored: access.token) {
            throw Problem(status: 401, detail: reason, challenge: #"Bearer realm="ims-runner""#)
        }
        guard !access.status.isTerminal else {
            throw Problem(status: 409, detail: "job \(jobID.imsString) already ended as \(access.status.rawValue)\(access.error.map { ": \($0)" } ?? ""); this runner must stop")
        }
        if case .jobRunnerReport = request.endpoint {
            let report: RunnerReport = try Self.decodeRunnerBody(request)
            let status = try await catalog.applyRunnerReport(
                jobID, statusChanges: report.statusChanges, host: report.host, sshContainers: report.sshContainers, events: report.events)
            return try Reply.encoded(RunnerAcknowledgement(status: status))
        }
        let job = try catalog.job(jobID)
        switch request.endpoint {
        case .jobRunner:
            var bundle = RunnerBundle(job: job, heartbeatSeconds: services.executorSettings.heartbeatSeconds ?? ExecutorSettings.defaultHeartbeatSeconds)
            switch job.jobType {
            case .create: bundle.recipe = try catalog.recipe(job.artifactID)
            case .customize: bundle.image = try catalog.image(job.artifactID)
            }
            if let keyID = job.publicKeyID { bundle.publicKey = try catalog.publicKey(keyID) }
            return try Reply.encoded(bundle)
        default:
            let result: RunnerResult = try Self.decodeRunnerBody(request)
            return try Reply.encoded(try await acceptResult(result, job: job))
        }
    }

    /// Ends the job with the runner's result: a success registers its image only once the manifest and every
    /// artifact are found in the store (as `ims images create` checks them); anything else ends the job as error.
    private func acceptResult(_ result: RunnerResult, job: JobRecord) async throws -> RunnerAcknowledgement {
        let catalog = services.catalog
        defer { try? catalog.revokeRunnerToken(job.id) }
        switch result.status {
        case .success:
            guard let offered = result.image, let url = offered.link?.path else {
                throw Problem(status: 422, detail: "a successful result must carry the image with its manifest link", errors: ["image": ["Missing data for required field."]])
            }
            let link: ArtifactLink
            do {
                link = try await imageLink(url, etag: offered.link?.etag)
            } catch {
                let reason = "the runner reported success, but its image cannot be registered: \(Problem(error).detail)"
                let failed = try catalog.fail(job.id, error: JobError(code: "ims.job.result_refused", category: "internal", message: reason))
                await services.jobs.ended(job.id)
                throw Problem(status: 422, detail: reason + " (job \(failed.id.imsString) is now error)")
            }
            let image = ImageRecord(id: offered.id, name: offered.name, link: link, arch: offered.arch, metadata: offered.metadata)
            let registered = try catalog.createImage(image)
            let finished = try catalog.finish(job.id, resultantImageID: registered.id)
            await services.jobs.ended(job.id)
            return RunnerAcknowledgement(status: finished.status, resultantImageID: registered.id)
        case .error:
            let error = result.error ?? JobError(code: "ims.job.runner_failed", category: "internal", message: "the runner reported an error without a reason")
            let failed = try catalog.fail(job.id, error: error)
            await services.jobs.ended(job.id)
            return RunnerAcknowledgement(status: failed.status)
        default:
            throw Problem.invalid(field: "status", "Must be one of: success, error.")
        }
    }

    /// A runner body, decoded once with the shared Codable types: 415 without JSON, 400 when empty (or `{}`), 422
    /// for an unknown field or a body that does not decode, as every other body of the API.
    static func decodeRunnerBody<T: Decodable>(_ request: APIRequest) throws -> T {
        guard JSONBody.isJSON(contentType: request.contentType) else { throw Problem.unsupportedMediaType(request.contentType) }
        let trimmed = request.body.drop { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
        if trimmed.isEmpty || trimmed.elementsEqual("{}".utf8) { throw Problem.noInput }
        do {
            return try JSONDecoder().decode(T.self, from: Data(request.body))
        } catch let unknown as RunnerBody.UnknownFields {
            throw Problem.invalid(Dictionary(uniqueKeysWithValues: unknown.names.map { ($0, ["Unknown field."]) }))
        } catch {
            throw Problem(status: 422, detail: "the runner's \(T.self) body is not valid: \(error)")
        }
    }
}

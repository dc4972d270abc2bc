import Foundation
import Hummingbird
import IMSCatalog
import IMSEngine
import IMSProtocol
import Logging

extension APIHandler {
    /// `/{v2,v3}/jobs`: list, create (and start on the executor), delete by filter.
    func jobs(_ request: APIRequest) async throws -> Response {
        let catalog = services.catalog
        switch request.method {
        case .get:
            return try Reply.encoded(try catalog.jobs())
        case .post:
            let body = try request.json(RequestBodies.jobCreate)
            let jobRequest = try RequestBodies.jobRequest(body)
            let job: JobRecord
            do {
                job = try catalog.createJob(jobRequest)
            } catch .notFound(let kind, let id) {
                // IMS answers 400 for an artifact or public key that does not exist.
                throw Problem(status: 400, detail: CatalogError.notFound(kind: kind, id: id).description)
            }
            await services.jobs.submit(job.id)
            return try Reply.encoded(job, status: .created)
        case .delete:
            let filter = try QueryParameters.jobDeletionFilter(request.query)
            for job in try catalog.jobs(matching: filter) { try await deleteJob(job) }
            return Reply.noContent
        default:
            throw Self.unreachable(request)
        }
    }

    /// `/{v2,v3}/jobs/{id}`: read, IMS's internal PATCH (status, resultant_image_id), delete (cancelling a running
    /// job first).
    func job(_ request: APIRequest, id: UUID) async throws -> Response {
        let catalog = services.catalog
        switch request.method {
        case .get:
            return try Reply.encoded(try catalog.job(id))
        case .patch:
            let body = try request.json(RequestBodies.jobPatch)
            _ = try catalog.job(id)
            var job = try catalog.updateJob(id) { job in
                if body["resultant_image_id"] != nil { job.resultantImageID = RequestBodies.uuid(body["resultant_image_id"]) }
            }
            if let status = RequestBodies.enumeration(body["status"], JobStatus.self) { job = try catalog.transition(id, to: status) }
            return try Reply.encoded(job)
        case .delete:
            try await deleteJob(try catalog.job(id))
            return Reply.noContent
        default:
            throw Self.unreachable(request)
        }
    }

    /// Stops the job if it runs (or waits), then removes its record, events and workspace.
    private func deleteJob(_ job: JobRecord) async throws {
        if !job.status.isTerminal { await services.jobs.cancel(job.id) }
        let removed = try services.catalog.deleteJob(job.id)
        if let workspace = removed.workspace { try? WorkspaceMounts.remove(workspace) }
    }
}

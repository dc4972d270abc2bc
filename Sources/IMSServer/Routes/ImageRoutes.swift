import Foundation
import Hummingbird
import IMSCatalog
import IMSEngine
import IMSProtocol
import Logging

extension APIHandler {
    /// `/{v2,v3}/images`: list, register, delete all (v3: soft delete; v2: for good, `?cascade`).
    func images(_ request: APIRequest, version: APIVersion) async throws -> Response {
        let catalog = services.catalog
        switch request.method {
        case .get:
            return try Reply.images(catalog)
        case .post:
            let body = try request.json(RequestBodies.imageCreate)
            var record = ImageRecord(
                name: body["name"]?.stringValue ?? "", arch: RequestBodies.enumeration(body["arch"], Arch.self) ?? .x86_64,
                metadata: RequestBodies.metadata(body["metadata"]))
            if let url = try Self.requestedLink(body["link"]) {
                record.link = try await imageLink(url, etag: body["link"]?["etag"]?.stringValue)
            }
            return Reply.json(RecordJSONWriter.object(try catalog.createImage(record), pretty: false), status: .created)
        case .delete:
            let cascade = version == .v2 ? try QueryParameters.cascade(request.query) : true
            for image in try catalog.images() { try await deleteImage(image.id, version: version, cascade: cascade) }
            return Reply.noContent
        default:
            throw Self.unreachable(request)
        }
    }

    /// `/{v2,v3}/images/{id}`: read, PATCH (link set once, arch, metadata set/remove), delete.
    func image(_ request: APIRequest, version: APIVersion, id: UUID) async throws -> Response {
        let catalog = services.catalog
        switch request.method {
        case .get:
            return Reply.json(try catalog.imageJSON(id))
        case .patch:
            let body = try request.json(RequestBodies.imagePatch)
            let current = try catalog.image(id)
            var update = ImageUpdate(arch: RequestBodies.enumeration(body["arch"], Arch.self))
            if let change = RequestBodies.metadataChange(body["metadata"]) { update.metadata = [change] }
            if let url = try Self.requestedLink(body["link"]) {
                let etag = body["link"]?["etag"]?.stringValue
                update.link = try await RecordLinks.forUpdate(url, current: current.link) { try await imageLink($0, etag: etag) }
            }
            return Reply.json(RecordJSONWriter.object(try catalog.updateImage(id, update), pretty: false))
        case .delete:
            let cascade = version == .v2 ? try QueryParameters.cascade(request.query) : true
            _ = try catalog.image(id)
            try await deleteImage(id, version: version, cascade: cascade)
            return Reply.noContent
        default:
            throw Self.unreachable(request)
        }
    }

    /// A manifest link validated as the command line validates it; warnings go to the log.
    func imageLink(_ url: String, etag: String?) async throws -> ArtifactLink {
        let (link, warnings) = try await RecordLinks.imageLink(url, etag: etag, store: services.store)
        for warning in warnings { services.logger.warning("image link: \(warning)") }
        return link
    }

    /// v3: a soft delete (the manifest and artifacts move under `deleted/`); v2: for good, with every artifact when
    /// `cascade`.
    private func deleteImage(_ id: UUID, version: APIVersion, cascade: Bool) async throws {
        switch (version, cascade) {
        case (.v3, _): _ = try await services.lifecycle.softDeleteImage(id)
        case (.v2, true): _ = try await services.lifecycle.deleteImagePermanently(id)
        case (.v2, false): _ = try services.catalog.deleteImagePermanently(id, scope: .live)
        }
    }
}

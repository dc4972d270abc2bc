import Foundation
import Hummingbird
import IMSCatalog
import IMSEngine
import IMSProtocol
import Logging

extension APIHandler {
    /// `/v3/deleted/{recipes,images,public-keys}`: list, undelete all (`PATCH {"operation": "undelete"}`), delete
    /// all for good.
    func deletedCollection(_ request: APIRequest, kind: DeletedCollection) async throws -> Response {
        let catalog = services.catalog
        switch request.method {
        case .get:
            switch kind {
            case .recipes: return Reply.json(RecordJSONWriter.array(try catalog.recipes(deleted: true), pretty: false))
            case .images: return try Reply.images(catalog, deleted: true)
            case .publicKeys: return Reply.json(RecordJSONWriter.array(try catalog.publicKeys(deleted: true), pretty: false))
            }
        case .patch:
            _ = try request.json(RequestBodies.undelete)
            for id in try deletedIDs(kind) { try await undelete(kind, id) }
            return Reply.noContent
        case .delete:
            for id in try deletedIDs(kind) { try await deletePermanently(kind, id) }
            return Reply.noContent
        default:
            throw Self.unreachable(request)
        }
    }

    /// `/v3/deleted/{recipes,images,public-keys}/{id}`: read, undelete, delete for good.
    func deletedRecord(_ request: APIRequest, kind: DeletedCollection, id: UUID) async throws -> Response {
        let catalog = services.catalog
        switch request.method {
        case .get:
            switch kind {
            case .recipes: return Reply.json(RecordJSONWriter.object(try catalog.recipe(id, scope: .deleted), pretty: false))
            case .images: return Reply.json(RecordJSONWriter.object(try catalog.image(id, scope: .deleted), pretty: false))
            case .publicKeys: return Reply.json(RecordJSONWriter.object(try catalog.publicKey(id, scope: .deleted), pretty: false))
            }
        case .patch:
            _ = try request.json(RequestBodies.undelete)
            try await undelete(kind, id)
            return Reply.noContent
        case .delete:
            try await deletePermanently(kind, id)
            return Reply.noContent
        default:
            throw Self.unreachable(request)
        }
    }

    private func deletedIDs(_ kind: DeletedCollection) throws -> [UUID] {
        switch kind {
        case .recipes: try services.catalog.recipes(deleted: true).map(\.id)
        case .images: try services.catalog.images(deleted: true).map(\.id)
        case .publicKeys: try services.catalog.publicKeys(deleted: true).map(\.id)
        }
    }

    /// Restores a soft-deleted record with every field (and its objects, out of `deleted/`).
    private func undelete(_ kind: DeletedCollection, _ id: UUID) async throws {
        switch kind {
        case .recipes: _ = try await services.lifecycle.undeleteRecipe(id)
        case .images: _ = try await services.lifecycle.undeleteImage(id)
        case .publicKeys: _ = try services.catalog.undeletePublicKey(id)
        }
    }

    /// Deletes a soft-deleted record and its objects for good (a live record with this id is a 404 here).
    private func deletePermanently(_ kind: DeletedCollection, _ id: UUID) async throws {
        switch kind {
        case .recipes:
            _ = try services.catalog.recipe(id, scope: .deleted)
            _ = try await services.lifecycle.deleteRecipePermanently(id)
        case .images:
            _ = try services.catalog.image(id, scope: .deleted)
            _ = try await services.lifecycle.deleteImagePermanently(id)
        case .publicKeys:
            _ = try services.catalog.deletePublicKeyPermanently(id, scope: .deleted)
        }
    }
}

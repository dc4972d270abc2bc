import Foundation
import Hummingbird
import IMSCatalog
import IMSEngine
import IMSProtocol
import Logging

extension APIHandler {
    /// `/{v2,v3}/public-keys`: list, register, delete all (v3: soft delete; v2: for good).
    func publicKeys(_ request: APIRequest, version: APIVersion) async throws -> Response {
        let catalog = services.catalog
        switch request.method {
        case .get:
            return Reply.json(RecordJSONWriter.array(try catalog.publicKeys(), pretty: false))
        case .post:
            let body = try request.json(RequestBodies.publicKeyCreate)
            let line = try PublicKeyRecord.validateAuthorizedKey(body["public_key"]?.stringValue ?? "")
            let record = PublicKeyRecord(name: body["name"]?.stringValue ?? "", publicKey: line)
            return Reply.json(RecordJSONWriter.object(try catalog.createPublicKey(record), pretty: false), status: .created)
        case .delete:
            for key in try catalog.publicKeys() { try deletePublicKey(key.id, version: version) }
            return Reply.noContent
        default:
            throw Self.unreachable(request)
        }
    }

    /// `/{v2,v3}/public-keys/{id}`: read, delete. Public keys have no PATCH.
    func publicKey(_ request: APIRequest, version: APIVersion, id: UUID) async throws -> Response {
        switch request.method {
        case .get:
            return Reply.json(RecordJSONWriter.object(try services.catalog.publicKey(id), pretty: false))
        case .delete:
            try deletePublicKey(id, version: version)
            return Reply.noContent
        default:
            throw Self.unreachable(request)
        }
    }

    private func deletePublicKey(_ id: UUID, version: APIVersion) throws {
        switch version {
        case .v3: _ = try services.catalog.softDeletePublicKey(id)
        case .v2: _ = try services.catalog.deletePublicKeyPermanently(id, scope: .live)
        }
    }
}

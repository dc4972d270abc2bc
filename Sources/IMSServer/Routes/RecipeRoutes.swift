import Foundation
import Hummingbird
import IMSCatalog
import IMSEngine
import IMSProtocol
import Logging

extension APIHandler {
    /// `/{v2,v3}/recipes`: list, register, delete all (v3: soft delete; v2: for good, `?cascade`).
    func recipes(_ request: APIRequest, version: APIVersion) async throws -> Response {
        let catalog = services.catalog
        switch request.method {
        case .get:
            return Reply.json(RecordJSONWriter.array(try catalog.recipes(), pretty: false))
        case .post:
            let body = try request.json(RequestBodies.recipeCreate)
            var record = RecipeRecord(
                name: body["name"]?.stringValue ?? "",
                recipeType: RequestBodies.enumeration(body["recipe_type"], RecipeType.self) ?? .kiwiNG,
                linuxDistribution: RequestBodies.enumeration(body["linux_distribution"], LinuxDistribution.self) ?? .sles15,
                templateDictionary: RequestBodies.templateDictionary(body["template_dictionary"]) ?? [],
                requireDKMS: body["require_dkms"]?.boolValue ?? true,
                arch: RequestBodies.enumeration(body["arch"], Arch.self) ?? .x86_64)
            if let url = try Self.requestedLink(body["link"]) {
                record.link = try await RecordLinks.recipeLink(url, store: services.store)
            }
            return Reply.json(RecordJSONWriter.object(try catalog.createRecipe(record), pretty: false), status: .created)
        case .delete:
            let cascade = version == .v2 ? try QueryParameters.cascade(request.query) : true
            for recipe in try catalog.recipes() { try await deleteRecipe(recipe.id, version: version, cascade: cascade) }
            return Reply.noContent
        default:
            throw Self.unreachable(request)
        }
    }

    /// `/{v2,v3}/recipes/{id}`: read, PATCH (link set once, arch, require_dkms, template_dictionary), delete.
    func recipe(_ request: APIRequest, version: APIVersion, id: UUID) async throws -> Response {
        let catalog = services.catalog
        switch request.method {
        case .get:
            return Reply.json(RecordJSONWriter.object(try catalog.recipe(id), pretty: false))
        case .patch:
            let body = try request.json(RequestBodies.recipePatch)
            let current = try catalog.recipe(id)
            var update = RecipeUpdate(
                templateDictionary: RequestBodies.templateDictionary(body["template_dictionary"]),
                arch: RequestBodies.enumeration(body["arch"], Arch.self), requireDKMS: body["require_dkms"]?.boolValue)
            if let url = try Self.requestedLink(body["link"]) {
                let store = services.store
                update.link = try await RecordLinks.forUpdate(url, current: current.link) { try await RecordLinks.recipeLink($0, store: store) }
            }
            return Reply.json(RecordJSONWriter.object(try catalog.updateRecipe(id, update), pretty: false))
        case .delete:
            let cascade = version == .v2 ? try QueryParameters.cascade(request.query) : true
            _ = try catalog.recipe(id)
            try await deleteRecipe(id, version: version, cascade: cascade)
            return Reply.noContent
        default:
            throw Self.unreachable(request)
        }
    }

    /// v3: a soft delete (the archive moves under `deleted/`); v2: for good, with the archive when `cascade`.
    private func deleteRecipe(_ id: UUID, version: APIVersion, cascade: Bool) async throws {
        switch (version, cascade) {
        case (.v3, _): _ = try await services.lifecycle.softDeleteRecipe(id)
        case (.v2, true): _ = try await services.lifecycle.deleteRecipePermanently(id)
        case (.v2, false): _ = try services.catalog.deleteRecipePermanently(id, scope: .live)
        }
    }

    /// The path of a link given in a body (nil when absent or null); its type must match its URL (`s3://`, `file://`).
    static func requestedLink(_ value: JSONValue?) throws(Problem) -> String? {
        guard let (path, type) = RequestBodies.link(value) else { return nil }
        do {
            try ArtifactLink(path: path, type: type).validate()
        } catch {
            throw Problem(error)
        }
        return path
    }
}

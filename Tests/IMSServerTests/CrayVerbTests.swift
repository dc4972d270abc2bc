import AsyncHTTPClient
import Foundation
import NIOHTTP1
import Testing

/// One `cray ims` command as the request it sends: craycli is generated from IMS's OpenAPI document, so each verb is
/// one operation (`list` GET collection, `create` POST, `describe` GET record, `update` PATCH, `delete` DELETE
/// record, `deleteall` DELETE collection, `updateall` PATCH collection), under the gateway's `/apis/ims` prefix,
/// with the site's bearer token, the tenant header, and the options turned into a JSON body or a query.
struct CrayCall: CustomTestStringConvertible, Sendable {
    /// The command line a person types.
    var command: String
    var method: HTTPMethod
    /// The path after `/apis/ims`; `{name}` is replaced by an id saved by an earlier call.
    var path: String
    /// The JSON body cray sends, with the same placeholders.
    var body: String?
    /// The status IMS answers with.
    var status: Int
    /// Saves the reply's `id` under this name for later calls.
    var saves: String?
    /// A field of the reply (a record, or the first record of a list; `a.b` for a nested one, empty for the whole
    /// reply) and the value it must have, as JSON text.
    var expects: (field: String, json: String)?

    var testDescription: String { command }

    init(
        _ command: String, _ method: HTTPMethod, _ path: String, body: String? = nil, status: Int, saves: String? = nil,
        expects: (String, String)? = nil
    ) {
        self.command = command
        self.method = method
        self.path = path
        self.body = body
        self.status = status
        self.saves = saves
        self.expects = expects.map { (field: $0.0, json: $0.1) }
    }
}

/// Every `cray ims` verb against a real `ims serve` with the site's auth on, in the order a person would use them:
/// keys, a recipe without a link then linked, an image with cray's metadata options, a job built to success, the
/// deleted-records verbs, remote build nodes, and the `deleteall`s.
@Suite("cray ims verbs", .timeLimit(.minutes(5)))
struct CrayVerbTests {
    static let session: [CrayCall] = [
        CrayCall("cray ims version list", .GET, "/version", status: 200),
        // Public keys.
        CrayCall(
            "cray ims public-keys create --name admin --public-key ~/.ssh/id_ed25519.pub", .POST, "/v3/public-keys",
            body: #"{"name": "admin", "public_key": "\#(TestServer.publicKey)"}"#, status: 201, saves: "key"),
        CrayCall("cray ims public-keys list", .GET, "/v3/public-keys", status: 200, expects: ("name", #""admin""#)),
        CrayCall("cray ims public-keys describe {key}", .GET, "/v3/public-keys/{key}", status: 200, expects: ("id", #""{key}""#)),
        CrayCall(
            "cray ims public-keys create --name spare --public-key spare.pub", .POST, "/v3/public-keys",
            body: #"{"name": "spare", "public_key": "\#(TestServer.publicKey)"}"#, status: 201, saves: "spare"),
        CrayCall("cray ims public-keys delete {spare}", .DELETE, "/v3/public-keys/{spare}", status: 204),
        CrayCall("cray ims deleted public-keys list", .GET, "/v3/deleted/public-keys", status: 200, expects: ("name", #""spare""#)),
        CrayCall("cray ims deleted public-keys describe {spare}", .GET, "/v3/deleted/public-keys/{spare}", status: 200, expects: ("id", #""{spare}""#)),
        CrayCall(
            "cray ims deleted public-keys update {spare} --operation undelete", .PATCH, "/v3/deleted/public-keys/{spare}",
            body: #"{"operation": "undelete"}"#, status: 204),
        CrayCall("cray ims public-keys describe {spare}", .GET, "/v3/public-keys/{spare}", status: 200, expects: ("name", #""spare""#)),
        CrayCall("cray ims public-keys delete {spare}", .DELETE, "/v3/public-keys/{spare}", status: 204),
        CrayCall("cray ims deleted public-keys delete {spare}", .DELETE, "/v3/deleted/public-keys/{spare}", status: 204),
        CrayCall("cray ims deleted public-keys describe {spare}", .GET, "/v3/deleted/public-keys/{spare}", status: 404),
        // Recipes: created without a link, linked once by update, template variables replaced.
        CrayCall(
            "cray ims recipes create --name compute --recipe-type kiwi-ng --linux-distribution sles15 --arch x86_64 --require-dkms false",
            .POST, "/v3/recipes",
            body: #"{"name": "compute", "recipe_type": "kiwi-ng", "linux_distribution": "sles15", "arch": "x86_64", "require_dkms": false}"#,
            status: 201, saves: "recipe", expects: ("link", "null")),
        CrayCall(
            "cray ims recipes update {recipe} --link-type file --link-path {recipe_link} --link-etag ''", .PATCH, "/v3/recipes/{recipe}",
            body: #"{"link": {"type": "file", "path": "{recipe_link}", "etag": ""}}"#, status: 200, expects: ("link.path", #""{recipe_link}""#)),
        CrayCall(
            "cray ims recipes update {recipe} --template-dictionary-key REPO --template-dictionary-value https://nexus", .PATCH,
            "/v3/recipes/{recipe}", body: #"{"template_dictionary": [{"key": "REPO", "value": "https://nexus"}]}"#, status: 200,
            expects: ("template_dictionary", #"[{"key": "REPO", "value": "https://nexus"}]"#)),
        CrayCall(
            "cray ims recipes update {recipe} --link-type file --link-path file:///elsewhere --link-etag ''", .PATCH, "/v3/recipes/{recipe}",
            body: #"{"link": {"type": "file", "path": "file:///elsewhere", "etag": ""}}"#, status: 409),
        CrayCall("cray ims recipes list", .GET, "/v3/recipes", status: 200, expects: ("name", #""compute""#)),
        CrayCall("cray ims recipes describe {recipe}", .GET, "/v3/recipes/{recipe}", status: 200, expects: ("require_dkms", "false")),
        // Images: cray's --metadata-key/--metadata-value, then metadata operations by update.
        CrayCall(
            "cray ims images create --name boot --link-type file --link-path {manifest} --link-etag '' --metadata-key owner --metadata-value hpc",
            .POST, "/v3/images",
            body: #"{"name": "boot", "link": {"type": "file", "path": "{manifest}", "etag": ""}, "metadata": {"key": "owner", "value": "hpc"}}"#,
            status: 201, saves: "image", expects: ("metadata", #"{"owner": "hpc"}"#)),
        CrayCall(
            "cray ims images update {image} --metadata-operation set --metadata-key tier --metadata-value gold", .PATCH, "/v3/images/{image}",
            body: #"{"metadata": {"operation": "set", "key": "tier", "value": "gold"}}"#, status: 200,
            expects: ("metadata", #"{"owner": "hpc", "tier": "gold"}"#)),
        CrayCall(
            "cray ims images update {image} --metadata-operation remove --metadata-key owner", .PATCH, "/v3/images/{image}",
            body: #"{"metadata": {"operation": "remove", "key": "owner"}}"#, status: 200, expects: ("metadata", #"{"tier": "gold"}"#)),
        CrayCall("cray ims images update {image} --arch aarch64", .PATCH, "/v3/images/{image}", body: #"{"arch": "aarch64"}"#, status: 200, expects: ("arch", #""aarch64""#)),
        CrayCall("cray ims images list", .GET, "/v3/images", status: 200, expects: ("name", #""boot""#)),
        CrayCall("cray ims images describe {image}", .GET, "/v3/images/{image}", status: 200, expects: ("id", #""{image}""#)),
        CrayCall("cray ims images delete {image}", .DELETE, "/v3/images/{image}", status: 204),
        CrayCall("cray ims images describe {image}", .GET, "/v3/images/{image}", status: 404),
        CrayCall("cray ims deleted images list", .GET, "/v3/deleted/images", status: 200, expects: ("id", #""{image}""#)),
        CrayCall("cray ims deleted images describe {image}", .GET, "/v3/deleted/images/{image}", status: 200, expects: ("name", #""boot""#)),
        CrayCall(
            "cray ims deleted images updateall --operation undelete", .PATCH, "/v3/deleted/images", body: #"{"operation": "undelete"}"#,
            status: 204),
        CrayCall("cray ims images describe {image}", .GET, "/v3/images/{image}", status: 200, expects: ("metadata", #"{"tier": "gold"}"#)),
        // Jobs: a create job of the linked recipe, built to success by the site's (fake) builder.
        CrayCall(
            "cray ims jobs create --job-type create --artifact-id {recipe} --public-key-id {key} --image-root-archive-name compute-img --enable-debug false",
            .POST, "/v3/jobs",
            body: #"{"job_type": "create", "artifact_id": "{recipe}", "public_key_id": "{key}", "image_root_archive_name": "compute-img", "enable_debug": false}"#,
            status: 201, saves: "job", expects: ("kernel_file_name", #""vmlinuz""#)),
        CrayCall("cray ims jobs list", .GET, "/v3/jobs", status: 200, expects: ("id", #""{job}""#)),
        CrayCall("cray ims jobs describe {job}", .GET, "/v3/jobs/{job}", status: 200, expects: ("artifact_id", #""{recipe}""#)),
        // (the test waits for the job here)
        CrayCall("cray ims jobs describe {job}", .GET, "/v3/jobs/{job}", status: 200, expects: ("status", #""success""#)),
        CrayCall("cray ims jobs delete {job}", .DELETE, "/v3/jobs/{job}", status: 204),
        CrayCall("cray ims jobs deleteall --status success --job-type create --age 1d6h", .DELETE, "/v3/jobs?status=success&job_type=create&age=1d6h", status: 204),
        CrayCall("cray ims jobs deleteall --age 1x", .DELETE, "/v3/jobs?age=1x", status: 400),
        // Remote build nodes: the status list is routed before {xname}.
        CrayCall("cray ims remote-build-nodes create --xname x3000c0s19b4n0", .POST, "/v3/remote-build-nodes", body: #"{"xname": "x3000c0s19b4n0"}"#, status: 201),
        CrayCall("cray ims remote-build-nodes list", .GET, "/v3/remote-build-nodes", status: 200, expects: ("xname", #""x3000c0s19b4n0""#)),
        CrayCall("cray ims remote-build-nodes describe x3000c0s19b4n0", .GET, "/v3/remote-build-nodes/x3000c0s19b4n0", status: 200),
        CrayCall("cray ims remote-build-nodes status list", .GET, "/v3/remote-build-nodes/status", status: 200, expects: ("xname", #""x3000c0s19b4n0""#)),
        CrayCall("cray ims remote-build-nodes status describe x3000c0s19b4n0", .GET, "/v3/remote-build-nodes/status/x3000c0s19b4n0", status: 200),
        CrayCall("cray ims remote-build-nodes delete x3000c0s19b4n0", .DELETE, "/v3/remote-build-nodes/x3000c0s19b4n0", status: 204),
        CrayCall("cray ims remote-build-nodes deleteall", .DELETE, "/v3/remote-build-nodes", status: 204),
        // v2 verbs (cray ims v2 …) read the same records; v2 DELETE is hard.
        CrayCall("cray ims v2 recipes describe {recipe}", .GET, "/v2/recipes/{recipe}", status: 200, expects: ("name", #""compute""#)),
        CrayCall("cray ims v2 public-keys list", .GET, "/v2/public-keys", status: 200, expects: ("name", #""admin""#)),
        // The deleteall verbs soft-delete everything, deleted … deleteall makes it permanent.
        CrayCall("cray ims images deleteall", .DELETE, "/v3/images", status: 204),
        CrayCall("cray ims recipes deleteall", .DELETE, "/v3/recipes", status: 204),
        CrayCall("cray ims public-keys deleteall", .DELETE, "/v3/public-keys", status: 204),
        CrayCall("cray ims deleted recipes list", .GET, "/v3/deleted/recipes", status: 200, expects: ("id", #""{recipe}""#)),
        CrayCall("cray ims deleted recipes describe {recipe}", .GET, "/v3/deleted/recipes/{recipe}", status: 200),
        CrayCall("cray ims deleted recipes update {recipe} --operation undelete", .PATCH, "/v3/deleted/recipes/{recipe}", body: #"{"operation": "undelete"}"#, status: 204),
        CrayCall("cray ims recipes describe {recipe}", .GET, "/v3/recipes/{recipe}", status: 200, expects: ("link.path", #""{recipe_link}""#)),
        CrayCall("cray ims recipes delete {recipe}", .DELETE, "/v3/recipes/{recipe}", status: 204),
        CrayCall("cray ims deleted recipes deleteall", .DELETE, "/v3/deleted/recipes", status: 204),
        CrayCall("cray ims deleted images delete {image}", .DELETE, "/v3/deleted/images/{image}", status: 204),
        CrayCall("cray ims deleted images deleteall", .DELETE, "/v3/deleted/images", status: 204),
        CrayCall("cray ims deleted public-keys updateall --operation undelete", .PATCH, "/v3/deleted/public-keys", body: #"{"operation": "undelete"}"#, status: 204),
        CrayCall("cray ims public-keys list", .GET, "/v3/public-keys", status: 200, expects: ("id", #""{key}""#)),
        CrayCall("cray ims public-keys deleteall", .DELETE, "/v3/public-keys", status: 204),
        CrayCall("cray ims deleted public-keys deleteall", .DELETE, "/v3/deleted/public-keys", status: 204),
        CrayCall("cray ims deleted recipes list", .GET, "/v3/deleted/recipes", status: 200, expects: ("", "[]")),
        CrayCall("cray ims deleted images list", .GET, "/v3/deleted/images", status: 200, expects: ("", "[]")),
        CrayCall("cray ims deleted public-keys list", .GET, "/v3/deleted/public-keys", status: 200, expects: ("", "[]")),
    ]

    /// Each verb is sent as cray sends it, with a valid token from the site's issuer (the auth tests' Keycloak
    /// stand-in), and answered as IMS answers; the records each verb leaves are what the next verb reads.
    @Test("each cray ims verb, as cray sends it with a site token, gets IMS's answer")
    func session() async throws {
        let issuer = try await TestIssuer()
        let server = try await TestServer(settings: issuer.settings())
        defer { server.terminate() }
        server.authorization = "Bearer " + (try await issuer.token())
        let headers = [("Cray-Tenant-Name", "vcluster-blue"), ("User-Agent", "craycli/0.88.0"), ("Accept", "application/json")]
        var saved = ["recipe_link": try server.storeRecipeArchive(), "manifest": try server.storeManifest()]
        func fill(_ text: String) -> String {
            saved.reduce(text) { $0.replacingOccurrences(of: "{\($1.key)}", with: $1.value) }
        }
        for call in Self.session {
            if call.command.hasPrefix("cray ims jobs describe"), call.expects?.json.contains("success") == true, let job = saved["job"] {
                _ = try await server.waitForJob(job)
            }
            let reply = try await server.request(call.method, "/apis/ims" + fill(call.path), body: call.body.map(fill), headers: headers)
            #expect(reply.status == call.status, "\(call.command): \(reply)")
            if reply.status >= 400 {
                #expect(reply.contentType == "application/problem+json", "\(call.command)")
            } else if reply.status == 204 {
                #expect(reply.body.isEmpty, "\(call.command): \(reply)")
            }
            if let name = call.saves, let id = reply.object["id"] as? String { saved[name] = id }
            if let (field, json) = call.expects {
                let record: Any? = field.split(separator: ".").reduce(reply.array.first ?? reply.json) { ($0 as? [String: Any])?[String($1)] }
                let expected = try JSONSerialization.jsonObject(with: Data(fill(json).utf8), options: [.fragmentsAllowed])
                #expect(Self.sameJSON(record ?? NSNull(), expected), "\(call.command): \(field) is \(record ?? "missing"), not \(fill(json))")
            }
        }
        #expect(server.stderr.contains("user-1") || server.stderr.contains("vers"), "the access log names the token's user")
    }

    /// JSON values compared as JSON (objects without key order).
    static func sameJSON(_ lhs: Any, _ rhs: Any) -> Bool {
        let options: JSONSerialization.WritingOptions = [.sortedKeys, .fragmentsAllowed]
        guard let left = try? JSONSerialization.data(withJSONObject: lhs, options: options),
              let right = try? JSONSerialization.data(withJSONObject: rhs, options: options) else { return false }
        return left == right
    }
}

import Foundation
import Testing

/// IMS's error behaviour through a real `ims serve`: problem+json with the reason phrase as title, and each status.
@Suite("API errors", .timeLimit(.minutes(3)))
struct ErrorAPITests {
    /// Checks the RFC 7807 shape.
    static func expectProblem(_ reply: TestServer.Reply, _ status: Int, _ title: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(reply.status == status, "\(reply)", sourceLocation: sourceLocation)
        #expect(reply.contentType == "application/problem+json", sourceLocation: sourceLocation)
        #expect(reply.object["status"] as? Int == status, sourceLocation: sourceLocation)
        #expect(reply.object["title"] as? String == title, sourceLocation: sourceLocation)
        #expect((reply.object["detail"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
    }

    @Test("400, 404, 405, 413, 415 and 422 are problem+json")
    func statuses() async throws {
        let server = try await TestServer(arguments: ["--max-body-size", "4096"])
        defer { server.terminate() }
        for body in ["", "{}", "[]", "null", "false", "0"] {
            Self.expectProblem(try await server.request(.POST, "/v3/images", body: body), 400, "Bad Request")
        }
        Self.expectProblem(try await server.request(.POST, "/v3/images", body: "{not json"), 400, "Bad Request")
        Self.expectProblem(try await server.request(.POST, "/v3/images", body: #"{"name": "x"}"#, contentType: "text/plain"), 415, "Unsupported Media Type")
        Self.expectProblem(try await server.request(.POST, "/v3/images", body: #"{"name": "x"}"#, contentType: "application/x-www-form-urlencoded"), 415, "Unsupported Media Type")

        let unknownField = try await server.post("/v3/images", ["name": "x", "id": UUID().uuidString])
        Self.expectProblem(unknownField, 422, "Unprocessable Entity")
        #expect((unknownField.object["errors"] as? [String: [String]])?["id"] == ["Unknown field."])
        let missing = try await server.post("/v3/recipes", ["name": "x"])
        Self.expectProblem(missing, 422, "Unprocessable Entity")
        #expect(Set(((missing.object["errors"] as? [String: Any]) ?? [:]).keys) == ["recipe_type", "linux_distribution"])

        Self.expectProblem(try await server.get("/v3/images/\(UUID().uuidString)"), 404, "Not Found")
        Self.expectProblem(try await server.get("/v3/images/not-a-uuid"), 404, "Not Found")
        Self.expectProblem(try await server.get("/v3/jobs/12345"), 404, "Not Found")
        Self.expectProblem(try await server.get("/v3/nothing"), 404, "Not Found")
        Self.expectProblem(try await server.get("/apis/ims/v3/deleted/images/\(UUID().uuidString)"), 404, "Not Found")

        let put = try await server.request(.PUT, "/v3/images", json: ["name": "x"])
        Self.expectProblem(put, 405, "Method Not Allowed")
        #expect(put.headers.first(name: "allow") == "GET, POST, DELETE")
        let postRecord = try await server.post("/v3/recipes/\(UUID().uuidString)", ["name": "x"])
        #expect(postRecord.status == 405 && postRecord.headers.first(name: "allow") == "GET, PATCH, DELETE")
        let postVersion = try await server.post("/version", ["a": 1])
        #expect(postVersion.status == 405 && postVersion.headers.first(name: "allow") == "GET")
        let deleteStatus = try await server.delete("/v3/remote-build-nodes/status")
        #expect(deleteStatus.status == 405 && deleteStatus.headers.first(name: "allow") == "GET")

        let large = String(repeating: "x", count: 5000)
        Self.expectProblem(try await server.post("/v3/images", ["name": large]), 413, "Request Entity Too Large")
        // The server is still fine afterwards.
        #expect(try await server.get("/healthz/live").status == 200)
    }

    @Test("bodies as cray sends them: Authorization and Cray-Tenant-Name are ignored, the gateway prefix works")
    func crayRequests() async throws {
        let server = try await TestServer()
        defer { server.terminate() }
        let headers = [("Authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"), ("Cray-Tenant-Name", "vcluster-blue"), ("User-Agent", "cray-cli")]
        let key = try await server.request(.POST, "/apis/ims/v3/public-keys", json: ["name": "admin", "public_key": TestServer.publicKey], headers: headers)
        #expect(key.status == 201, "\(key)")
        let image = try await server.request(.POST, "/apis/ims/v3/images", json: ["name": "img", "metadata": ["key": "k", "value": "v"]], headers: headers)
        #expect(image.status == 201)
        let id = try #require(image.object["id"] as? String)
        let patch = try await server.request(.PATCH, "/apis/ims/v3/images/\(id)", json: ["arch": "aarch64"], headers: headers)
        #expect(patch.status == 200)
        #expect(try await server.request(.GET, "/apis/ims/v3/images", headers: headers).array.count == 1)
        #expect(try await server.request(.GET, "/apis/ims/v2/images/\(id)", headers: headers).status == 200)
        #expect(try await server.request(.DELETE, "/apis/ims/v3/images/\(id)", headers: headers).status == 204)
        #expect(try await server.request(.PATCH, "/apis/ims/v3/deleted/images/\(id)", json: ["operation": "undelete"], headers: headers).status == 204)
        #expect(try await server.request(.GET, "/apis/ims/v3/jobs", headers: headers).array.isEmpty)
        let version = try await server.get("/apis/ims/version")
        #expect(version.status == 200 && (version.object["version"] as? String)?.isEmpty == false)
        #expect(try await server.get("/healthz/ready").body == "{}")
    }
}

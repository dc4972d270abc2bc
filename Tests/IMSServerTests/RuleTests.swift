import Foundation
import IMSEngine
import Hummingbird
import IMSCatalog
import IMSProtocol
@testable import IMSServer
import JWTKit
import Logging
import Testing

/// The API's rules as pure functions, without a server: routing, Allow sets, body and query validation, problems.
@Suite("server rules")
struct RuleTests {
    @Test("paths map to endpoints, at the root and under /apis/ims", arguments: [
        ("/version", Endpoint.version),
        ("/healthz/ready", .healthReady),
        ("/healthz/live", .healthLive),
        ("/v3/recipes", .collection(.recipes, .v3)),
        ("/v2/images", .collection(.images, .v2)),
        ("/images", .collection(.images, .v2)),
        ("/public-keys/abc", .record(.publicKeys, .v2, id: "abc")),
        ("/v3/jobs/1", .record(.jobs, .v3, id: "1")),
        ("/v3/deleted/public-keys", .deletedCollection(.publicKeys)),
        ("/v3/deleted/images/x", .deletedRecord(.images, id: "x")),
        ("/v3/remote-build-nodes", .remoteBuildNodes),
        ("/v3/remote-build-nodes/status", .remoteBuildNodeStatuses),
        ("/v3/remote-build-nodes/x3000c0s1b0n0", .remoteBuildNode(xname: "x3000c0s1b0n0")),
        ("/v3/remote-build-nodes/status/x1", .remoteBuildNodeStatus(xname: "x1")),
        // Unversioned, as IMS's spec lists them (its server has them only under /v3).
        ("/remote-build-nodes", .remoteBuildNodes),
        ("/remote-build-nodes/x3000c0s1b0n0", .remoteBuildNode(xname: "x3000c0s1b0n0")),
        ("/apis/ims/v3/images", .collection(.images, .v3)),
        ("/apis/ims/version", .version),
        ("/apis/ims/recipes/r", .record(.recipes, .v2, id: "r")),
        // Remote runners (ims), v3 only.
        ("/v3/jobs/j/runner", .jobRunner(id: "j")),
        ("/v3/jobs/j/runner/report", .jobRunnerReport(id: "j")),
        ("/apis/ims/v3/jobs/j/runner/result", .jobRunnerResult(id: "j")),
    ] as [(String, Endpoint)])
    func routes(path: String, endpoint: Endpoint) {
        #expect(RouteTable.endpoint(path: path) == endpoint)
    }

    @Test("unknown paths are not routed", arguments: [
        "/", "", "/v4/images", "/v3/images/a/b", "/v3/images/", "/v2/deleted/images", "/deleted/images",
        "/v2/remote-build-nodes", "/apis/imsx/v3/images", "/apis/ims", "/v3/deleted/jobs", "/v3/remote-build-nodes/status/x/y", "//v3/images",
        "/v2/jobs/j/runner", "/jobs/j/runner/report", "/v3/jobs/j/runner/other", "/v3/images/i/runner", "/v3/jobs/j/runner/report/x",
    ])
    func unknownPaths(path: String) {
        #expect(RouteTable.endpoint(path: path) == nil)
    }

    @Test("Allow lists exactly the documented methods")
    func allowSets() {
        #expect(RouteTable.allowedMethods(.collection(.recipes, .v3)) == [.get, .post, .delete])
        #expect(RouteTable.allowedMethods(.record(.images, .v2, id: "x")) == [.get, .patch, .delete])
        #expect(RouteTable.allowedMethods(.record(.publicKeys, .v3, id: "x")) == [.get, .delete])
        #expect(RouteTable.allowedMethods(.record(.jobs, .v3, id: "x")) == [.get, .patch, .delete])
        #expect(RouteTable.allowedMethods(.deletedCollection(.images)) == [.get, .patch, .delete])
        #expect(RouteTable.allowedMethods(.deletedRecord(.publicKeys, id: "x")) == [.get, .patch, .delete])
        #expect(RouteTable.allowedMethods(.remoteBuildNodes) == [.get, .post, .delete])
        #expect(RouteTable.allowedMethods(.remoteBuildNode(xname: "x")) == [.get, .delete])
        #expect(RouteTable.allowedMethods(.remoteBuildNodeStatuses) == [.get])
        #expect(RouteTable.allowedMethods(.version) == [.get])
        #expect(RouteTable.allowedMethods(.jobRunner(id: "j")) == [.get])
        #expect(RouteTable.allowedMethods(.jobRunnerReport(id: "j")) == [.post])
        #expect(RouteTable.allowedMethods(.jobRunnerResult(id: "j")) == [.post])
        #expect(Endpoint.jobRunnerReport(id: "j").isRunnerEndpoint && !Endpoint.record(.jobs, .v3, id: "j").isRunnerEndpoint)
    }

    @Test("runner tokens: only the job's current, unexpired token with a Bearer header is accepted")
    func runnerTokens() {
        let token = RunnerTokens.make()
        #expect(token.hasPrefix("imsr_") && token.count == 48 && token != RunnerTokens.make())
        let stored = RunnerTokenRecord(sha256: RunnerTokens.digest(token), expires: Date().addingTimeInterval(60))
        #expect(RunnerTokens.rejection(authorization: "Bearer \(token)", stored: stored) == nil)
        #expect(RunnerTokens.rejection(authorization: "bearer  \(token) ", stored: stored) == nil)
        let cases: [(String?, RunnerTokenRecord?, String)] = [
            (nil, stored, "no runner token"),
            ("Basic abc", stored, "no runner token"),
            ("Bearer \(RunnerTokens.make())", stored, "not this job's"),
            ("Bearer \(token)x", stored, "not this job's"),
            ("Bearer \(token)", nil, "no valid runner token"),
            ("Bearer \(token)", RunnerTokenRecord(sha256: stored.sha256, expires: Date().addingTimeInterval(-1)), "expired"),
        ]
        for (header, record, reason) in cases {
            #expect(RunnerTokens.rejection(authorization: header, stored: record)?.contains(reason) == true, "\(header ?? "none")")
        }
    }

    @Test("Slurm: a job's sbatch request, its batch script (secrets only on the runner's stdin), and end states as errors")
    func slurmRules() throws {
        let slurm = SlurmExecutor(
            settings: ExecutorSettings.Slurm(partition: "build", extraArguments: ["--qos=img"]), outputDirectory: "/var/lib/ims/jobs",
            defaultTimeLimitMinutes: 240, logger: Logger(label: "test"))
        var job = JobRecord(jobType: .create, artifactID: UUID(), imageRootArchiveName: "x", buildEnvSize: 30, jobMemSize: 4)
        let arguments = slurm.sbatchArguments(job)
        for expected in ["--parsable", "--export=NONE", "--mem=4G", "--tmp=30G", "--time=240", "--partition=build", "--qos=img",
                         "--job-name=ims-\(job.id.imsString)", "--output=/var/lib/ims/jobs/\(job.id.imsString).slurm.log"] {
            #expect(arguments.contains(expected), "\(expected) in \(arguments)")
        }
        let launch = RunnerLaunch(arguments: ["/usr/bin/ims", "jobs", "run-remote", "it's"], secrets: Array(#"{"token":"imsr_secret"}"#.utf8))
        let script = String(decoding: SlurmExecutor.batchScript(launch), as: UTF8.self)
        #expect(script.hasPrefix("#!/bin/sh\n"))
        #expect(script.contains("exec '/usr/bin/ims' 'jobs' 'run-remote' 'it'\\''s' <<'IMS_RUNNER_SECRETS'\n{\"token\":\"imsr_secret\"}\nIMS_RUNNER_SECRETS\n"), "\(script)")
        #expect(!launch.shellCommand.contains("imsr_secret"))
        job.slurmJobID = "42"
        let line = "JobId=42 JobName=ims-x UserId=root(0) JobState=TIMEOUT Reason=TimeLimit Dependency=(null) ExitCode=0:15 TimeLimit=00:01:00"
        let fields = SlurmExecutor.fields(line)
        #expect(fields["JobState"] == "TIMEOUT" && fields["TimeLimit"] == "00:01:00")
        let timeout = try #require(SlurmExecutor.failure(fields, slurmID: "42", job: job))
        #expect(timeout.code == "ims.job.slurm_timeout" && timeout.message.contains("time limit of 00:01:00") && timeout.message.contains("exit code 0:15"))
        let killed = SlurmExecutor.failure(["JobState": "FAILED", "Reason": "JobLaunchFailure", "ExitCode": "0:9"], slurmID: "42", job: job)
        #expect(killed?.message == "Slurm ended job 42 as FAILED (reason: JobLaunchFailure), exit code 0:9")
        #expect(SlurmExecutor.failure(["JobState": "OUT_OF_MEMORY"], slurmID: "42", job: job)?.message.contains("job_mem_size of 4 GiB") == true)
        for state in ["RUNNING", "PENDING", "COMPLETED", "COMPLETING"] {
            #expect(SlurmExecutor.failure(["JobState": state], slurmID: "42", job: job) == nil, "\(state)")
        }
    }

    @Test("executor settings: refused combinations name the setting", arguments: [
        (ExecutorSettings(kind: .slurm), "file:///var/lib/ims/store", "shared_store: true"),
        (ExecutorSettings(kind: .remoteBuildNodes), "file:///x", "cannot reach"),
        (ExecutorSettings(heartbeatSeconds: 10, heartbeatTimeoutSeconds: 15), "s3://b", "at least twice"),
        (ExecutorSettings(heartbeatSeconds: 0), "s3://b", "heartbeat_seconds"),
        (ExecutorSettings(serverURL: "ims.site:9100"), "s3://b", "server_url"),
        (ExecutorSettings(slurm: .init(timeLimitMinutes: 0)), "s3://b", "time_limit_minutes"),
        (ExecutorSettings(remoteBuildNodes: .init(nodes: ["x1": .init(address: "a b")])), "s3://b", "nodes.x1.address"),
        (ExecutorSettings(remoteBuildNodes: .init(nodes: ["x1": .init(address: "10.0.0.1", port: 70000)])), "s3://b", "nodes.x1.port"),
    ] as [(ExecutorSettings, String, String)])
    func executorSettings(settings: ExecutorSettings, store: String, message: String) {
        #expect(throws: EngineError.self) { try settings.check(source: "ims.yaml", store: store) }
        do {
            try settings.check(source: "ims.yaml", store: store)
        } catch {
            #expect(error.description.contains(message), "\(error.description)")
        }
    }

    @Test("remote build nodes: a job goes to a node of its arch able to run jobs, the one with the fewest running jobs")
    func nodeChoice() {
        func node(_ xname: String, _ arch: String, jobs: Int, able: Bool = true) -> RemoteBuildNodes.Status {
            var status = RemoteBuildNodes.Status(xname: xname)
            status.nodeArch = arch
            status.numCurrentJobs = jobs
            status.ableToRunJobs = able
            return status
        }
        let nodes = [
            node("x1", "x86_64", jobs: 3), node("x2", "x86_64", jobs: 1), node("x3", "x86_64", jobs: 1),
            node("x4", "x86_64", jobs: 0, able: false), node("a1", "aarch64", jobs: 5), node("a2", "aarch64", jobs: 2),
        ]
        #expect(RemoteBuildNodeExecutor.choose(nodes, arch: .x86_64)?.xname == "x2", "fewest jobs; the first registered of a tie; never one unable")
        #expect(RemoteBuildNodeExecutor.choose(nodes, arch: .aarch64)?.xname == "a2")
        #expect(RemoteBuildNodeExecutor.choose(nodes.filter { $0.nodeArch == "x86_64" }, arch: .aarch64) == nil)
        #expect(RemoteBuildNodeExecutor.choose([node("x4", "x86_64", jobs: 0, able: false)], arch: .x86_64) == nil)
    }

    @Test("executor settings that are fine")
    func executorSettingsAccepted() throws {
        try ExecutorSettings(kind: .slurm, sharedStore: true).check(source: "ims.yaml", store: "file:///shared")
        try ExecutorSettings(kind: .slurm).check(source: "ims.yaml", store: "s3://boot-images")
        try ExecutorSettings().check(source: "ims.yaml", store: "file:///local")
    }

    @Test("listen addresses parse, and loopback is told apart", arguments: [
        ("127.0.0.1:9100", "127.0.0.1", 9100, true),
        ("127.1.2.3:0", "127.1.2.3", 0, true),
        ("localhost:80", "localhost", 80, true),
        ("[::1]:9100", "::1", 9100, true),
        ("0.0.0.0:9100", "0.0.0.0", 9100, false),
        ("10.1.2.3:443", "10.1.2.3", 443, false),
        ("[::]:9100", "::", 9100, false),
        ("ims.example.com:9100", "ims.example.com", 9100, false),
    ] as [(String, String, Int, Bool)])
    func listenAddresses(text: String, host: String, port: Int, loopback: Bool) throws {
        let address = try ListenAddress(parsing: text)
        #expect(address.host == host && address.port == port && address.isLoopback == loopback)
    }

    @Test("malformed listen addresses are refused", arguments: ["9100", ":9100", "127.0.0.1", "127.0.0.1:x", "127.0.0.1:70000", "::1:9100", "[::1]9100", "[::1"])
    func badListenAddresses(text: String) {
        #expect(throws: ServerError.self) { try ListenAddress(parsing: text) }
    }

    @Test("without auth only loopback is served, unless --insecure-no-auth; with server.auth any address is")
    func loopbackOnly() throws {
        try ServerConfiguration(listen: ListenAddress(host: "127.0.0.1", port: 1), version: "x").check()
        #expect(throws: ServerError.unauthenticatedNetworkListen("0.0.0.0:1")) {
            try ServerConfiguration(listen: ListenAddress(host: "0.0.0.0", port: 1), version: "x").check()
        }
        try ServerConfiguration(listen: ListenAddress(host: "0.0.0.0", port: 1), insecureNoAuth: true, version: "x").check()
        let auth = ServerSettings.Auth(jwks: "/etc/ims/jwks.json", issuer: "https://keycloak/realms/shasta")
        try ServerConfiguration(listen: ListenAddress(host: "10.1.0.5", port: 9100), auth: auth, version: "x").check()
    }

    @Test("the token checks after the signature: exp (required, with leeway), nbf, iss, aud", arguments: [
        // (exp offset, nbf offset, issuer, audience, expected refusal or nil)
        (3600.0, nil, "https://idp/realms/shasta", ["shasta"], nil),
        (-10.0, nil, "https://idp/realms/shasta", ["shasta"], nil),
        (-31.0, nil, "https://idp/realms/shasta", ["shasta"], TokenRejection.expired),
        (3600.0, 10.0, "https://idp/realms/shasta", ["shasta"], nil),
        (3600.0, 60.0, "https://idp/realms/shasta", ["shasta"], TokenRejection.notYetValid),
        (3600.0, nil, "https://idp/realms/other", ["shasta"], TokenRejection.wrongIssuer("https://idp/realms/other")),
        (3600.0, nil, "https://idp/realms/shasta", ["account"], TokenRejection.wrongAudience(["account"])),
        (3600.0, nil, "https://idp/realms/shasta", ["account", "cray"], nil),
        (3600.0, nil, "https://idp/realms/shasta", [], TokenRejection.wrongAudience([])),
    ] as [(Double, Double?, String, [String], TokenRejection?)])
    func tokenClaims(exp: Double, nbf: Double?, issuer: String, audience: [String], expected: TokenRejection?) async throws {
        let verifier = TokenVerifier(
            settings: .init(jwks: "/unused", issuer: "https://idp/realms/shasta", audience: ["shasta", "cray"]), logger: Logger(label: "test"))
        let now = Date()
        let claims = AccessTokenClaims(
            exp: ExpirationClaim(value: now.addingTimeInterval(exp)), nbf: nbf.map { NotBeforeClaim(value: now.addingTimeInterval($0)) },
            iss: IssuerClaim(value: issuer), aud: audience.isEmpty ? nil : AudienceClaim(value: audience))
        var refusal: TokenRejection?
        do { try await verifier.check(claims, now: now) } catch { refusal = error }
        #expect(refusal == expected)
    }

    @Test("a token's header is read before verification: three parts, base64url JSON with alg", arguments: [
        ("a.b", "expected three dot-separated parts, found 2"),
        ("!!!.b.c", "the header is not base64url"),
        ("e30.b.c", "the header is not a JSON object with 'alg'"),
    ])
    func tokenHeader(token: String, reason: String) {
        #expect(throws: TokenRejection.malformed(reason)) { try TokenVerifier.header(of: token) }
    }

    @Test("a 401 carries RFC 6750's challenge: no error without credentials, invalid_token otherwise")
    func unauthorizedProblem() {
        let missing = Problem.unauthorized(.missing).response
        #expect(missing.status.code == 401 && missing.headers[.wwwAuthenticate] == #"Bearer realm="ims""#)
        let expired = Problem.unauthorized(.expired).response
        #expect(expired.headers[.wwwAuthenticate] == #"Bearer realm="ims", error="invalid_token", error_description="the token has expired""#)
    }

    @Test("bodies: 415 without JSON, 400 for empty or falsy, 422 for a non-object")
    func bodies() throws {
        #expect(throws: Problem.unsupportedMediaType(nil)) { try JSONBody.object(Array("{\"a\":1}".utf8), contentType: nil) }
        #expect(throws: Problem.unsupportedMediaType("text/plain")) { try JSONBody.object(Array("{\"a\":1}".utf8), contentType: "text/plain") }
        for falsy in ["", "  ", "{}", "[]", "null", "false", "0", "\"\""] {
            #expect(throws: Problem.noInput, "\(falsy)") { try JSONBody.object(Array(falsy.utf8), contentType: "application/json") }
        }
        #expect((try? JSONBody.object(Array("{nope".utf8), contentType: "application/json")) == nil)
        do {
            _ = try JSONBody.object(Array("[1]".utf8), contentType: "application/json")
            Issue.record("a list body was accepted")
        } catch {
            #expect(error.status == 422)
        }
        #expect(try JSONBody.object(Array("{\"a\": 1}".utf8), contentType: "application/json; charset=utf-8")["a"] == .number(1))
        #expect(JSONBody.isJSON(contentType: "application/merge-patch+json"))
    }

    @Test("schemas refuse unknown fields, missing required ones and bad values, all at once")
    func schemas() throws {
        do {
            try RequestBodies.recipeCreate.validate([
                "name": "", "recipe_type": "kiwi-ng", "surprise": true, "arch": "sparc", "link": .object(["path": "s3://x/y"]),
            ])
            Issue.record("an invalid recipe was accepted")
        } catch {
            #expect(error.status == 422)
            let errors = error.errors ?? [:]
            #expect(errors["surprise"] == ["Unknown field."])
            #expect(errors["linux_distribution"] == ["Missing data for required field."])
            #expect(errors["name"] == ["Shorter than minimum length 1."])
            #expect(errors["arch"]?.first?.hasPrefix("Must be one of:") == true)
            #expect(errors["link"] == ["type: Missing data for required field."])
        }
        try RequestBodies.recipeCreate.validate(["name": "n", "recipe_type": "kiwi-ng", "linux_distribution": "sles15", "link": .null])
        try RequestBodies.jobCreate.validate([
            "job_type": "create", "artifact_id": .string(UUID().uuidString), "public_key_id": .string(UUID().uuidString),
            "image_root_archive_name": "x", "build_env_size": 10,
        ])
        #expect(throws: Problem.self) { try RequestBodies.jobCreate.validate(["job_type": "create", "artifact_id": "nope"]) }
        #expect(throws: Problem.self) { try RequestBodies.jobCreate.validate(["build_env_size": 1.5]) }
        #expect(throws: Problem.self) { try RequestBodies.undelete.validate(["operation": "restore"]) }
        #expect(throws: Problem.self) { try RequestBodies.imagePatch.validate(["metadata": .object(["operation": "set", "key": "k"])]) }
        try RequestBodies.imagePatch.validate(["metadata": .object(["operation": "remove", "key": "k"])])
        #expect(throws: Problem.self) { try RequestBodies.imageCreate.validate(["name": "n", "metadata": .object(["k": 1])]) }
    }

    @Test("job sizes are whole numbers from 1 to 1048576 GiB; beyond what a record holds exactly is out of range, not rounded", arguments: [
        (JSONValue.number(1), nil), (.number(1_048_576), nil), (.number(0), "Must be greater than or equal to 1 and less than or equal to 1048576."),
        (.number(1_048_577), "Must be greater than or equal to 1 and less than or equal to 1048576."),
        (.number(1e15), "Must be greater than or equal to 1 and less than or equal to 1048576."),
        (.number(4.355e20), "Must be greater than or equal to 1 and less than or equal to 1048576."),
        (.number(2.5), "Not a valid integer."), (.string("8"), "Not a valid integer."), (.bool(true), "Not a valid integer."),
    ] as [(JSONValue, String?)])
    func jobSizes(value: JSONValue, message: String?) {
        for field in ["build_env_size", "job_mem_size"] {
            #expect(BodySchema.check(value, RequestBodies.jobCreate.fields.first { $0.name == field }!.kind) == message, "\(field)")
        }
    }

    @Test("a job PATCH sets status and resultant_image_id; a null resultant_image_id is refused, as IMS does")
    func jobPatch() throws {
        try RequestBodies.jobPatch.validate(["status": "success", "resultant_image_id": .string(UUID().uuidString)])
        do {
            try RequestBodies.jobPatch.validate(["status": "success", "resultant_image_id": .null])
            Issue.record("a null resultant_image_id was accepted")
        } catch {
            #expect(error.errors?["resultant_image_id"] == ["Field may not be null."])
        }
    }

    @Test("image metadata on POST: {key, value} becomes {key: value}; a plain map is kept")
    func metadata() {
        #expect(RequestBodies.metadata(.object(["key": "tag", "value": "prod"])) == ["tag": "prod"])
        #expect(RequestBodies.metadata(.object(["tag": "prod", "site": "a"])) == ["tag": "prod", "site": "a"])
        #expect(RequestBodies.metadata(.object(["key": "only"])) == ["key": "only"])
        #expect(RequestBodies.metadata(nil) == [:])
    }

    @Test("job defaults are IMS's")
    func jobDefaults() throws {
        let request = try RequestBodies.jobRequest([
            "job_type": "create", "artifact_id": .string(UUID().uuidString), "public_key_id": .string(UUID().uuidString),
            "image_root_archive_name": "x",
        ])
        #expect(request.buildEnvSize == 60 && request.jobMemSize == 8)
        #expect(request.initrdFileName == "initrd" && request.kernelParametersFileName == "kernel-parameters")
        #expect(request.kernelFileName == nil && request.requireDKMS == nil && request.sshContainers == nil)
    }

    @Test("DELETE /jobs filters: status repeats, bad values are 400, ages add up")
    func jobDeletionQuery() throws {
        let filter = try QueryParameters.jobDeletionFilter([("status", "error"), ("status", "success"), ("job_type", "create"), ("age", "1d6h")])
        #expect(filter.statuses == [.error, .success])
        #expect(filter.jobType == .create)
        #expect(filter.olderThan == 108_000, "1d6h is 30 hours")
        for bad in [("status", "done"), ("job_type", "build"), ("age", "soon"), ("age", "1d6"), ("age", "")] {
            #expect(throws: Problem.self, "\(bad)") { try QueryParameters.jobDeletionFilter([bad]) }
        }
        #expect(try QueryParameters.jobDeletionFilter([]) == JobFilter())
        #expect(try QueryParameters.cascade([]) == true)
        #expect(try QueryParameters.cascade([("cascade", "False")]) == false)
        #expect(throws: Problem.self) { try QueryParameters.cascade([("cascade", "maybe")]) }
    }

    @Test("problems carry IMS's titles and map the catalog's and store's errors")
    func problems() throws {
        #expect(Problem(status: 422, detail: "x").title == "Unprocessable Entity")
        #expect(Problem(status: 413, detail: "x").title == "Request Entity Too Large")
        #expect(Problem(status: 405, detail: "x").title == "Method Not Allowed")
        #expect(Problem(CatalogError.notFound(kind: .image, id: "x")).status == 404)
        #expect(Problem(CatalogError.linkConflict(kind: .image, id: "x", current: "a", requested: "b")).status == 409)
        #expect(Problem(CatalogError.invalidJob(reason: "r")).status == 400)
        #expect(Problem(CatalogError.invalidField(field: "name", reason: "r")).errors?["name"] != nil)
        let body = try JSONSerialization.jsonObject(with: Data(Problem.invalid(field: "f", "m").body)) as? [String: Any]
        #expect(body?["status"] as? Int == 422 && body?["title"] as? String == "Unprocessable Entity")
        #expect((body?["errors"] as? [String: [String]])?["f"] == ["m"])
    }
}

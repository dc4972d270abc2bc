import AsyncHTTPClient
import Foundation
import IMSEngine
import IMSServer
import JWTKit
import Logging
import NIOSSL
import Testing

/// Signing keys, a JWKS and tokens for the auth tests, made with openssl and jwt-kit (the test plays the site's
/// Keycloak).
struct TestIssuer {
    static let issuer = "https://keycloak.test/realms/shasta"
    let directory: String
    let keys = JWTKeyCollection()
    /// Signs as `rsa-1` with an RSA key the server does not know: a forged signature.
    let impostorKeys = JWTKeyCollection()
    /// The JWKS the server is given: the RSA key `rsa-1` and the EC key `ec-1`.
    let jwksPath: String

    init() async throws {
        directory = NSTemporaryDirectory() + "ims-auth-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let rsa = try Insecure.RSA.PrivateKey(pem: try Self.openssl(["genrsa", "2048"]))
        let ec = ES256PrivateKey()
        try await keys.add(rsa: rsa, digestAlgorithm: .sha256, kid: "rsa-1")
        try await keys.add(ecdsa: ec, kid: "ec-1")
        let impostor = try Insecure.RSA.PrivateKey(pem: try Self.openssl(["genrsa", "2048"]))
        try await impostorKeys.add(rsa: impostor, digestAlgorithm: .sha256, kid: "rsa-1")
        try await keys.add(hmac: "a-shared-secret-of-at-least-32-bytes!!", digestAlgorithm: .sha256, kid: "hmac")
        jwksPath = directory + "/jwks.json"
        try Self.jwks(rsa: rsa, ec: ec).write(toFile: jwksPath, atomically: true, encoding: .utf8)
    }

    /// A JWKS as Keycloak publishes it: the two signing keys and an encryption key ims must skip.
    static func jwks(rsa: Insecure.RSA.PrivateKey, ec: ES256PrivateKey) throws -> String {
        let primitives = try rsa.publicKey.getKeyPrimitives()
        let point = try #require(ec.publicKey.parameters)
        let keys: [[String: String]] = [
            ["kid": "rsa-1", "kty": "RSA", "alg": "RS256", "use": "sig", "n": base64URL(primitives.modulus), "e": base64URL(primitives.publicExponent)],
            ["kid": "ec-1", "kty": "EC", "alg": "ES256", "use": "sig", "crv": "P-256", "x": point.x, "y": point.y],
            ["kid": "enc-1", "kty": "RSA", "alg": "RSA-OAEP", "use": "enc", "n": base64URL(primitives.modulus), "e": base64URL(primitives.publicExponent)],
        ]
        return String(decoding: try JSONSerialization.data(withJSONObject: ["keys": keys]), as: UTF8.self)
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func openssl(_ arguments: [String]) throws -> String {
        let process = Process()
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    struct Claims: JWTPayload {
        var exp: ExpirationClaim?
        var nbf: NotBeforeClaim?
        var iss: IssuerClaim?
        var aud: AudienceClaim?
        var sub: SubjectClaim
        var preferred_username: String?
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    /// A token signed with `kid` (`impostor`: the forged `rsa-1`); by default valid for an hour, from the trusted issuer, for audience `shasta`.
    func token(
        kid: String = "rsa-1", expires: TimeInterval? = 3600, notBefore: TimeInterval? = nil, issuer: String? = Self.issuer,
        audience: [String]? = ["shasta"]
    ) async throws -> String {
        let claims = Claims(
            exp: expires.map { ExpirationClaim(value: Date().addingTimeInterval($0)) },
            nbf: notBefore.map { NotBeforeClaim(value: Date().addingTimeInterval($0)) },
            iss: issuer.map { IssuerClaim(value: $0) }, aud: audience.map { AudienceClaim(value: $0) },
            sub: SubjectClaim(value: "user-1"), preferred_username: "vers")
        if kid == "impostor" { return try await impostorKeys.sign(claims, kid: JWKIdentifier(string: "rsa-1")) }
        return try await keys.sign(claims, kid: JWKIdentifier(string: kid))
    }

    func settings(jwks: String? = nil, audience: String = "[shasta]") -> String {
        """
        server:
          auth:
            jwks: \(jwks ?? jwksPath)
            issuer: \(Self.issuer)
            audience: \(audience)
        """
    }
}

@Suite("ims serve: bearer tokens and TLS")
struct AuthTLSTests {
    @Test("with server.auth, a request without a valid token is a 401 problem with a Bearer challenge and changes nothing")
    func refusedTokens() async throws {
        let issuer = try await TestIssuer()
        let server = try await TestServer(settings: issuer.settings())
        defer { server.terminate() }
        let key = ["name": "admin", "public_key": TestServer.publicKey]
        let cases: [(String, String?, String)] = [
            ("no token", nil, "no bearer token"),
            ("not Bearer", "Basic YWRtaW46YWRtaW4=", "not a Bearer token"),
            ("not a JWT", "Bearer abc.def", "not a valid JWT"),
            ("expired", "Bearer " + (try await issuer.token(expires: -3600)), "expired"),
            ("not yet valid", "Bearer " + (try await issuer.token(notBefore: 3600)), "not valid yet"),
            ("no exp", "Bearer " + (try await issuer.token(expires: nil)), "no 'exp' claim"),
            ("wrong issuer", "Bearer " + (try await issuer.token(issuer: "https://evil.test/realms/x")), "issuer 'https://evil.test/realms/x'"),
            ("no issuer", "Bearer " + (try await issuer.token(issuer: nil)), "issuer (none)"),
            ("wrong audience", "Bearer " + (try await issuer.token(audience: ["other"])), "audience other"),
            ("forged signature", "Bearer " + (try await issuer.token(kid: "impostor")), "signature does not verify"),
            ("HMAC", "Bearer " + (try await issuer.token(kid: "hmac")), "algorithm 'HS256' is not accepted"),
        ]
        for (name, authorization, reason) in cases {
            var headers: [(String, String)] = [("Cray-Tenant-Name", "vcluster-a")]
            if let authorization { headers.append(("Authorization", authorization)) }
            let reply = try await server.request(.POST, "/apis/ims/v3/public-keys", json: key, headers: headers)
            #expect(reply.status == 401, "\(name): \(reply)")
            #expect(reply.contentType == "application/problem+json", "\(name)")
            #expect(reply.object["title"] as? String == "Unauthorized", "\(name)")
            #expect((reply.object["detail"] as? String)?.contains(reason) == true, "\(name): \(reply)")
            let challenge = reply.headers.first(name: "www-authenticate") ?? ""
            #expect(challenge.hasPrefix(#"Bearer realm="ims""#), "\(name): \(challenge)")
            #expect(challenge.contains(#"error="invalid_token""#) == (authorization != nil), "\(name): \(challenge)")
        }
        // Unknown paths and methods are 401 too: nothing is revealed before the token is checked.
        #expect(try await server.get("/v3/nothing-here").status == 401)
        // Nothing was created by the refused requests.
        server.authorization = "Bearer " + (try await issuer.token())
        let keys = try await server.get("/v3/public-keys")
        #expect(keys.status == 200 && keys.array.isEmpty, "\(keys)")
    }

    @Test("valid RS256 and ES256 tokens from the site's issuer are accepted, as cray sends them, and the access log names the user")
    func acceptedTokens() async throws {
        let issuer = try await TestIssuer()
        let server = try await TestServer(settings: issuer.settings(audience: "[cray, shasta]"))
        defer { server.terminate() }
        for kid in ["rsa-1", "ec-1"] {
            let token = try await issuer.token(kid: kid)
            let created = try await server.request(
                .POST, "/apis/ims/v3/public-keys", json: ["name": kid, "public_key": TestServer.publicKey],
                headers: [("Authorization", "Bearer \(token)"), ("Cray-Tenant-Name", "vcluster-a")])
            #expect(created.status == 201, "\(kid): \(created)")
        }
        // An audience given as one string, and a token within the leeway of its expiry, still pass.
        server.authorization = "Bearer " + (try await issuer.token(expires: -5))
        #expect(try await server.get("/v3/public-keys").array.count == 2)
        // Probes and the API's description answer without a token.
        server.authorization = nil
        #expect(try await server.get("/healthz/live").status == 200)
        #expect(try await server.get("/healthz/ready").status == 200)
        let document = try await server.get("/apis/ims/openapi.yaml")
        #expect(document.status == 200 && document.contentType == "application/yaml")
        let published = try String(contentsOfFile: TestServer.repositoryRoot + "/docs/openapi.yaml", encoding: .utf8)
        #expect(document.body == published, "/openapi.yaml serves docs/openapi.yaml as built")
        #expect(try await server.get("/version").status == 401)
        await server.stop()
        #expect(server.stderr.contains("user=vers"), "\(server.stderr.suffix(2000))")
    }

    @Test("a JWKS URL is fetched at start, fetched again for an unknown key id, and a server whose JWKS cannot be fetched does not start")
    func jwksURL() async throws {
        let issuer = try await TestIssuer()
        let directory = issuer.directory + "/www"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // At first the published set has only the RSA key.
        let full = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: issuer.jwksPath))) as? [String: [[String: String]]]
        let allKeys = try #require(full?["keys"])
        func publish(_ kids: Set<String>) throws {
            let keys = allKeys.filter { kids.contains($0["kid"] ?? "") }
            try JSONSerialization.data(withJSONObject: ["keys": keys]).write(to: URL(fileURLWithPath: directory + "/certs"))
        }
        try publish(["rsa-1"])
        let web = try await StaticWebServer(directory: directory)
        defer { web.stop() }
        let server = try await TestServer(settings: issuer.settings(jwks: web.baseURL + "/certs"))
        defer { server.terminate() }
        server.authorization = "Bearer " + (try await issuer.token(kid: "rsa-1"))
        #expect(try await server.get("/v3/images").status == 200)
        // The site rotates in an EC key: the server does not know "ec-1" and has fetched within 30 s, so it refuses...
        try publish(["rsa-1", "ec-1"])
        server.authorization = "Bearer " + (try await issuer.token(kid: "ec-1"))
        let early = try await server.get("/v3/images")
        #expect(early.status == 401 && (early.object["detail"] as? String)?.contains("key 'ec-1'") == true, "\(early)")
        // ...and the verifier itself, with no wait between fetches, takes the new key.
        let verifier = TokenVerifier(
            settings: .init(jwks: web.baseURL + "/certs", issuer: TestIssuer.issuer), refetchInterval: .zero, logger: Logger(label: "test"))
        try publish(["rsa-1"])
        try await verifier.load()
        try publish(["rsa-1", "ec-1"])
        let identity = try await verifier.verify(authorization: "Bearer " + (try await issuer.token(kid: "ec-1")))
        #expect(identity.name == "vers")

        // A JWKS that cannot be fetched stops the server from starting, naming the URL.
        await #expect {
            _ = try await TestServer(settings: issuer.settings(jwks: web.baseURL + "/missing"))
        } throws: { error in
            let text = "\(error)"
            return text.contains("server.auth.jwks \(web.baseURL)/missing") && text.contains("HTTP 404")
        }
    }

    @Test("with server.tls the API is served over HTTPS with the site's certificate, and a bad key stops the server from starting")
    func tls() async throws {
        let directory = NSTemporaryDirectory() + "ims-tls-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let certificate = directory + "/server.crt", key = directory + "/server.key"
        _ = try TestIssuer.openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", certificate,
        ])
        let server = try await TestServer(settings: "server:\n  tls: {certificate: \(certificate), key: \(key)}\n")
        defer { server.terminate() }
        #expect(server.scheme == "https")
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(certificate)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        server.client = client
        let version = try await server.get("/apis/ims/version")
        #expect(version.status == 200 && version.object["version"] != nil, "\(version)")
        #expect(try await server.post("/v3/public-keys", ["name": "k", "public_key": TestServer.publicKey]).status == 201)
        // A client that does not trust the certificate is refused by TLS, and plain HTTP gets no API answer.
        await #expect(throws: (any Error).self) {
            var request = HTTPClientRequest(url: server.baseURL + "/version")
            request.method = .GET
            _ = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        }
        let plain = try? await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(server.port)/version"), timeout: .seconds(10))
        #expect(plain == nil || plain?.status != .ok)
        try await client.shutdown()

        // A key that does not belong to the certificate, or a file that is no certificate: the server does not start.
        let otherKey = directory + "/other.key"
        try TestIssuer.openssl(["genrsa", "2048"]).write(toFile: otherKey, atomically: true, encoding: .utf8)
        for (settings, expected) in [
            ("server:\n  tls: {certificate: \(certificate), key: \(otherKey)}\n", "server.tls \(otherKey): cannot be used with \(certificate)"),
            ("server:\n  tls: {certificate: \(otherKey), key: \(key)}\n", "server.tls \(otherKey): "),
            ("server:\n  tls: {certificate: \(directory)/none.crt, key: \(key)}\n", "server.tls.certificate \(directory)/none.crt cannot be read"),
        ] {
            await #expect {
                _ = try await TestServer(settings: settings)
            } throws: { error in
                "\(error)".contains(expected)
            }
        }
    }
}

/// `python3 -m http.server` on an ephemeral loopback port: the site's identity provider publishing its JWKS.
final class StaticWebServer: @unchecked Sendable {
    let process = Process()
    private(set) var baseURL = ""

    init(directory: String) async throws {
        let log = directory + "/../http.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", directory]
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<200 {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let range = text.range(of: "port "), let port = Int(text[range.upperBound...].prefix(while: \.isNumber)) {
                baseURL = "http://127.0.0.1:\(port)"
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        process.terminate()
        throw TestServer.ServerStartFailure(stderr: "python3 -m http.server did not start")
    }

    func stop() {
        if process.isRunning { process.terminate() }
    }

    deinit { stop() }
}

import AsyncHTTPClient
import Foundation
import IMSEngine
import JWTKit
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// Why a request's bearer token was refused; each becomes a 401 naming the reason (never the token).
public enum TokenRejection: Error, Sendable, Equatable, CustomStringConvertible {
    case missing
    case notBearer
    case malformed(String)
    case unsupportedAlgorithm(String)
    case unknownKey(String)
    case badSignature
    case expired
    case notYetValid
    case wrongIssuer(String?)
    case wrongAudience([String])
    case missingClaim(String)

    public var description: String {
        switch self {
        case .missing: "no bearer token: send 'Authorization: Bearer <token>'"
        case .notBearer: "the Authorization header is not a Bearer token"
        case .malformed(let reason): "the token is not a valid JWT: \(reason)"
        case .unsupportedAlgorithm(let alg): "the token's algorithm '\(alg)' is not accepted (accepted: \(TokenVerifier.acceptedAlgorithms.sorted().joined(separator: ", ")))"
        case .unknownKey(let kid): "the token is signed with key '\(kid)', which is not in the site's JWKS"
        case .badSignature: "the token's signature does not verify against the site's JWKS"
        case .expired: "the token has expired"
        case .notYetValid: "the token is not valid yet (nbf)"
        case .wrongIssuer(let issuer): "the token's issuer \(issuer.map { "'\($0)'" } ?? "(none)") is not the one this server trusts"
        case .wrongAudience(let audience): "the token's audience \(audience.isEmpty ? "(none)" : audience.joined(separator: ", ")) is not one this server accepts"
        case .missingClaim(let claim): "the token has no '\(claim)' claim"
        }
    }

    /// The `error` of RFC 6750's `WWW-Authenticate` challenge: none for a request without credentials.
    var challengeError: String? {
        self == .missing ? nil : "invalid_token"
    }
}

/// Who a verified token says made the request (for the access log).
public struct TokenIdentity: Sendable, Equatable {
    public var subject: String?
    public var username: String?

    /// The name the access log records: `preferred_username`, else `sub`.
    public var name: String { username ?? subject ?? "-" }
}

/// Verifies bearer tokens (JWTs signed with RS256/384/512 or ES256/384/512) against the site's JWKS with jwt-kit:
/// the signature, `exp` (required), `nbf`, `iss` and, when the site names audiences, `aud`.
///
/// A JWKS from a URL is fetched at start (a failure stops the server from starting) and fetched again, at most every
/// ``defaultRefetchInterval``, when a token names a key the set does not have, so a site's key rotation needs no restart.
public actor TokenVerifier {
    /// The signature algorithms accepted; `none` and the HMAC ones (a shared secret) never are.
    public static let acceptedAlgorithms: Set<String> = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"]
    /// The shortest time between two fetches of a JWKS URL, by default.
    public static let defaultRefetchInterval: Duration = .seconds(30)

    let settings: ServerSettings.Auth
    let refetchInterval: Duration
    let caCertificate: String?
    let logger: Logger
    private var keys = JWTKeyCollection()
    private var knownKeyIDs: Set<String> = []
    private var lastFetch: ContinuousClock.Instant?

    /// - Parameters:
    ///   - caCertificate: a PEM file trusted, besides the system's roots, for an `https://` JWKS.
    ///   - refetchInterval: the shortest time between two fetches of a JWKS URL.
    public init(settings: ServerSettings.Auth, caCertificate: String? = nil, refetchInterval: Duration = defaultRefetchInterval, logger: Logger) {
        self.settings = settings
        self.refetchInterval = refetchInterval
        self.caCertificate = caCertificate
        self.logger = logger
    }

    /// Loads the JWKS; the server calls it before listening.
    ///
    /// - Throws: ``ServerError/jwks(_:reason:)`` when the set cannot be read, fetched or has no usable key.
    public func load() async throws(ServerError) {
        try await install(try await readJWKS())
    }

    /// The identity of a verified `Authorization` header value.
    public func verify(authorization: String?) async throws(TokenRejection) -> TokenIdentity {
        guard let authorization, !authorization.isEmpty else { throw .missing }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { throw .notBearer }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        let header = try Self.header(of: token)
        guard Self.acceptedAlgorithms.contains(header.alg) else { throw .unsupportedAlgorithm(header.alg) }
        if let kid = header.kid, !knownKeyIDs.contains(kid) {
            await refetchIfAllowed()
            guard knownKeyIDs.contains(kid) else { throw .unknownKey(kid) }
        }
        let claims: AccessTokenClaims
        do {
            claims = try await keys.verify(token, as: AccessTokenClaims.self, iteratingKeys: header.kid == nil)
        } catch let error as DecodingError {
            throw .missingClaim(Self.claimName(error))
        } catch {
            throw .badSignature
        }
        try check(claims, now: Date())
        return TokenIdentity(subject: claims.sub?.value, username: claims.preferredUsername)
    }

    /// The checks after the signature: times with the leeway, issuer, audience.
    func check(_ claims: AccessTokenClaims, now: Date) throws(TokenRejection) {
        let leeway = settings.leewaySeconds ?? ServerSettings.Auth.defaultLeewaySeconds
        guard let exp = claims.exp else { throw .missingClaim("exp") }
        if exp.value.addingTimeInterval(leeway) <= now { throw .expired }
        if let nbf = claims.nbf, nbf.value.addingTimeInterval(-leeway) > now { throw .notYetValid }
        guard claims.iss?.value == settings.issuer else { throw .wrongIssuer(claims.iss?.value) }
        if let accepted = settings.audience {
            let audience = claims.aud?.value ?? []
            guard audience.contains(where: accepted.contains) else { throw .wrongAudience(audience) }
        }
    }

    // MARK: The key set

    private func refetchIfAllowed() async {
        guard settings.jwksIsURL else { return }
        if let lastFetch, lastFetch.duration(to: .now) < refetchInterval { return }
        do {
            try await install(try await readJWKS())
            logger.notice("JWKS fetched again for an unknown key id", metadata: ["jwks": "\(settings.jwks)", "keys": "\(knownKeyIDs.count)"])
        } catch {
            logger.warning("JWKS fetch failed; the keys already loaded stay in use", metadata: ["jwks": "\(settings.jwks)", "error": "\(error)"])
        }
    }

    /// Replaces the key set with `text`'s signing keys. Keys for encryption (`use: enc`) and keys jwt-kit cannot use
    /// are skipped with a log line (Keycloak publishes an RSA-OAEP key beside its signing keys).
    private func install(_ text: String) async throws(ServerError) {
        let jwks: JWKS
        let uses: KeyUses
        do {
            jwks = try JSONDecoder().decode(JWKS.self, from: Data(text.utf8))
            uses = try JSONDecoder().decode(KeyUses.self, from: Data(text.utf8))
        } catch {
            throw .jwks(settings.jwks, reason: "not a JSON Web Key Set (\(Self.firstLine(error)))")
        }
        let collection = JWTKeyCollection()
        var identifiers: Set<String> = []
        for (index, jwk) in jwks.keys.enumerated() {
            let kid = jwk.keyIdentifier?.string ?? "(no kid)"
            if let use = uses.keys[index].use, use != "sig" {
                logger.debug("JWKS key skipped: not a signing key", metadata: ["kid": "\(kid)"])
                continue
            }
            if let alg = jwk.algorithm?.rawValue, !Self.acceptedAlgorithms.contains(alg) {
                logger.debug("JWKS key skipped: algorithm not accepted", metadata: ["kid": "\(kid)", "alg": "\(alg)"])
                continue
            }
            do {
                try await collection.add(jwk: jwk)
                if let id = jwk.keyIdentifier?.string { identifiers.insert(id) }
            } catch {
                logger.warning("JWKS key skipped", metadata: ["kid": "\(kid)", "error": "\(error)"])
            }
        }
        guard !identifiers.isEmpty else { throw .jwks(settings.jwks, reason: "no usable signing key (RSA or EC with a kid)") }
        keys = collection
        knownKeyIDs = identifiers
        lastFetch = .now
    }

    private func readJWKS() async throws(ServerError) -> String {
        guard settings.jwksIsURL else {
            guard let data = FileManager.default.contents(atPath: settings.jwks) else {
                throw .jwks(settings.jwks, reason: "cannot be read")
            }
            return String(decoding: data, as: UTF8.self)
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caCertificate { tls.additionalTrustRoots = [.file(caCertificate)] }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls, timeout: .init(connect: .seconds(5), read: .seconds(10))))
        do {
            defer { _ = client.shutdown() }
            let response = try await client.execute(HTTPClientRequest(url: settings.jwks), timeout: .seconds(15))
            guard response.status == .ok else { throw ServerError.jwks(settings.jwks, reason: "HTTP \(response.status.code)") }
            let body = try await response.body.collect(upTo: 1 << 20)
            return String(buffer: body)
        } catch let error as ServerError {
            throw error
        } catch {
            throw .jwks(settings.jwks, reason: Self.firstLine(error))
        }
    }

    // MARK: Token parts

    struct Header: Decodable {
        var alg: String
        var kid: String?
    }

    /// The JOSE header of `token`, read before verification to choose (or refetch) the key.
    static func header(of token: String) throws(TokenRejection) -> Header {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("expected three dot-separated parts, found \(parts.count)") }
        guard let data = base64URLDecode(parts[0]) else { throw .malformed("the header is not base64url") }
        do {
            return try JSONDecoder().decode(Header.self, from: data)
        } catch {
            throw .malformed("the header is not a JSON object with 'alg'")
        }
    }

    static func base64URLDecode(_ text: Substring) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }

    static func claimName(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, _): key.stringValue
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            context.codingPath.last?.stringValue ?? "payload"
        @unknown default: "payload"
        }
    }

    static func firstLine(_ error: any Error) -> String {
        String(describing: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
    }
}

/// The claims ims reads from an access token. Every check is ``TokenVerifier/check(_:now:)``'s, so that each
/// refusal names its reason; jwt-kit checks the signature.
struct AccessTokenClaims: JWTPayload {
    var exp: ExpirationClaim?
    var nbf: NotBeforeClaim?
    var iss: IssuerClaim?
    var aud: AudienceClaim?
    var sub: SubjectClaim?
    var preferredUsername: String?

    enum CodingKeys: String, CodingKey {
        case exp, nbf, iss, aud, sub
        case preferredUsername = "preferred_username"
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// The `use` of each key of a JWKS, which jwt-kit's `JWK` does not keep.
private struct KeyUses: Decodable {
    struct Key: Decodable { var use: String? }
    var keys: [Key]
}

import Foundation

/// `ims serve`'s settings, under `server:` in ims.yaml:
///
///     server:
///       auth:                                   # bearer tokens (JWT, RS256/ES256 and their 384/512 forms)
///         jwks: https://keycloak.local/realms/shasta/protocol/openid-connect/certs   # or a file: /etc/ims/jwks.json
///         issuer: https://keycloak.local/realms/shasta
///         audience: [shasta, cray]              # optional: the token's aud must name one of these
///         leeway_seconds: 30                    # optional clock skew allowed on exp/nbf (default 30)
///       tls:
///         certificate: /etc/ims/tls/server.crt  # PEM, the server's certificate first, then its chain
///         key: /etc/ims/tls/server.key          # PEM private key
public struct ServerSettings: Sendable, Hashable, Codable {
    /// Where bearer tokens are checked against.
    public struct Auth: Sendable, Hashable, Codable {
        /// A JWKS file path, or an `http(s)://` URL (fetched at start and again when a token names an unknown key).
        public var jwks: String
        /// The `iss` every token must carry.
        public var issuer: String
        /// When set, a token's `aud` must name at least one of these.
        public var audience: [String]?
        /// Clock skew allowed when checking `exp` and `nbf`.
        public var leewaySeconds: Double?

        public static let defaultLeewaySeconds: Double = 30

        enum CodingKeys: String, CodingKey {
            case jwks, issuer, audience
            case leewaySeconds = "leeway_seconds"
        }

        public init(jwks: String, issuer: String, audience: [String]? = nil, leewaySeconds: Double? = nil) {
            self.jwks = jwks
            self.issuer = issuer
            self.audience = audience
            self.leewaySeconds = leewaySeconds
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            jwks = try container.decode(String.self, forKey: .jwks)
            issuer = try container.decode(String.self, forKey: .issuer)
            // `audience: shasta` and `audience: [shasta]` mean the same.
            if let single = try? container.decodeIfPresent(String.self, forKey: .audience) {
                audience = [single]
            } else {
                audience = try container.decodeIfPresent([String].self, forKey: .audience)
            }
            leewaySeconds = try container.decodeIfPresent(Double.self, forKey: .leewaySeconds)
        }

        /// Whether `jwks` is fetched over HTTP(S) rather than read from a file.
        public var jwksIsURL: Bool { jwks.hasPrefix("https://") || jwks.hasPrefix("http://") }
    }

    /// The server's certificate and key.
    public struct TLS: Sendable, Hashable, Codable {
        public var certificate: String
        public var key: String

        public init(certificate: String, key: String) {
            self.certificate = certificate
            self.key = key
        }
    }

    public var auth: Auth?
    public var tls: TLS?

    public init(auth: Auth? = nil, tls: TLS? = nil) {
        self.auth = auth
        self.tls = tls
    }

    /// The keys ims.yaml may use under `server`, `server.auth` and `server.tls`.
    static let settingNames = ["auth", "tls"]
    static let authSettingNames = ["audience", "issuer", "jwks", "leeway_seconds"]
    static let tlsSettingNames = ["certificate", "key"]

    /// Checks what decodes but cannot work: unreadable files, an empty issuer, a negative leeway.
    func check(source: String) throws(EngineError) {
        if let auth {
            if auth.issuer.isEmpty { throw EngineError(.settings, "\(source): server.auth.issuer must not be empty") }
            if !auth.jwksIsURL {
                if auth.jwks.contains("://") {
                    throw EngineError(.settings, "\(source): server.auth.jwks '\(auth.jwks)' must be a file path or an http(s):// URL")
                }
                if !FileManager.default.isReadableFile(atPath: auth.jwks) {
                    throw EngineError(.settings, "\(source): server.auth.jwks \(auth.jwks) cannot be read")
                }
            }
            if let audience = auth.audience, audience.isEmpty || audience.contains(where: \.isEmpty) {
                throw EngineError(.settings, "\(source): server.auth.audience must list at least one non-empty name (or be left out)")
            }
            if let leeway = auth.leewaySeconds, leeway < 0 || leeway > 3600 {
                throw EngineError(.settings, "\(source): server.auth.leeway_seconds must be between 0 and 3600")
            }
        }
        if let tls {
            for (name, path) in [("certificate", tls.certificate), ("key", tls.key)] where !FileManager.default.isReadableFile(atPath: path) {
                throw EngineError(.settings, "\(source): server.tls.\(name) \(path) cannot be read")
            }
        }
    }
}

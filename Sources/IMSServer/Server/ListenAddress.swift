import IMSEngine

/// Where the server listens: a host (an IPv4 or IPv6 address, or a name) and a port (0: any free port).
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    /// The default, `127.0.0.1:9100`.
    public static let `default` = ListenAddress(host: "127.0.0.1", port: 9100)

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `ADDRESS:PORT`: `127.0.0.1:9100`, `localhost:9100`, `[::1]:9100`, `0.0.0.0:0`.
    ///
    /// - Throws: ``ServerError/invalidListenAddress(_:reason:)``.
    public init(parsing text: String) throws(ServerError) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw .invalidListenAddress(text, reason: "no closing ']'") }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw .invalidListenAddress(text, reason: "no port") }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw .invalidListenAddress(text, reason: "no port") }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { throw .invalidListenAddress(text, reason: "an IPv6 address must be in brackets") }
        }
        guard !host.isEmpty else { throw .invalidListenAddress(text, reason: "no address") }
        guard let port = Int(portText), (0...65_535).contains(port) else {
            throw .invalidListenAddress(text, reason: "'\(portText)' is not a port (0-65535)")
        }
        self.init(host: String(host), port: port)
    }

    /// Whether only this machine can reach the address: 127.0.0.0/8, `::1` or `localhost`.
    public var isLoopback: Bool {
        if host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4, octets.allSatisfy({ UInt8($0) != nil }) else { return false }
        return octets[0] == "127"
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// How `ims serve` runs.
public struct ServerConfiguration: Sendable {
    public var listen: ListenAddress
    /// Serve a non-loopback address without authentication (the site's own network controls access).
    public var insecureNoAuth: Bool
    /// Bearer-token verification (`server.auth` in ims.yaml); nil: no authentication.
    public var auth: ServerSettings.Auth?
    /// The certificate and key to serve HTTPS with (`server.tls`); nil: plain HTTP.
    public var tls: ServerSettings.TLS?
    /// A PEM file trusted, besides the system's roots, when fetching an `https://` JWKS (the site's `ca_cert`).
    public var caCertificate: String?
    /// The largest request body accepted (larger: 413).
    public var maxBodySize: Int
    /// The version `/version` reports.
    public var version: String

    /// The default request body limit, 1 MiB (IMS's largest bodies are a few KiB).
    public static let defaultMaxBodySize = 1 << 20

    public init(
        listen: ListenAddress = .default, insecureNoAuth: Bool = false, auth: ServerSettings.Auth? = nil, tls: ServerSettings.TLS? = nil,
        caCertificate: String? = nil, maxBodySize: Int = defaultMaxBodySize, version: String
    ) {
        self.listen = listen
        self.insecureNoAuth = insecureNoAuth
        self.auth = auth
        self.tls = tls
        self.caCertificate = caCertificate
        self.maxBodySize = maxBodySize
        self.version = version
    }

    /// Refuses what must not run: a network address without authentication unless `insecureNoAuth`.
    public func check() throws(ServerError) {
        if !listen.isLoopback && auth == nil && !insecureNoAuth { throw .unauthenticatedNetworkListen(listen.description) }
    }
}

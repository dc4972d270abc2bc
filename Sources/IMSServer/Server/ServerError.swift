/// Why the server cannot start, with what was given.
public enum ServerError: Error, CustomStringConvertible, Sendable, Equatable {
    /// `--listen` is not `ADDRESS:PORT`.
    case invalidListenAddress(String, reason: String)
    /// A non-loopback address without authentication and without `--insecure-no-auth`.
    case unauthenticatedNetworkListen(String)
    /// The JWKS of `server.auth.jwks` cannot be read, fetched or used.
    case jwks(String, reason: String)
    /// The TLS certificate or key of `server.tls` cannot be loaded.
    case tls(String, reason: String)
    /// A remote executor (`slurm`, `remote-build-nodes`) cannot start or reach a runner.
    case executor(String, reason: String)

    /// A stable, dotted identifier of the failure.
    public var code: String {
        switch self {
        case .invalidListenAddress: "server.invalid_listen"
        case .unauthenticatedNetworkListen: "server.insecure_listen"
        case .jwks: "server.jwks"
        case .tls: "server.tls"
        case .executor: "server.executor"
        }
    }

    public var description: String {
        switch self {
        case .invalidListenAddress(let text, let reason):
            "'--listen \(text)': \(reason) (expected ADDRESS:PORT, e.g. 127.0.0.1:9100 or [::1]:9100)"
        case .unauthenticatedNetworkListen(let text):
            "refusing to listen on \(text) without authentication: without auth ims serve listens on loopback only; configure server.auth in ims.yaml (docs/api.md) or pass --insecure-no-auth to serve the network anyway"
        case .jwks(let source, let reason):
            "server.auth.jwks \(source): \(reason)"
        case .tls(let path, let reason):
            "server.tls \(path): \(reason)"
        case .executor(let kind, let reason):
            "executor \(kind): \(reason)"
        }
    }
}

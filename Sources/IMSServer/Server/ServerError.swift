/// Why the server cannot start, with what was given.
public enum ServerError: Error, CustomStringConvertible, Sendable, Equatable {
    /// `--listen` is not `ADDRESS:PORT`.
    case invalidListenAddress(String, reason: String)
    /// A non-loopback address without authentication and without `--insecure-no-auth`.
    case unauthenticatedNetworkListen(String)

    /// A stable, dotted identifier of the failure.
    public var code: String {
        switch self {
        case .invalidListenAddress: "server.invalid_listen"
        case .unauthenticatedNetworkListen: "server.insecure_listen"
        }
    }

    public var description: String {
        switch self {
        case .invalidListenAddress(let text, let reason):
            "'--listen \(text)': \(reason) (expected ADDRESS:PORT, e.g. 127.0.0.1:9100 or [::1]:9100)"
        case .unauthenticatedNetworkListen(let text):
            "refusing to listen on \(text) without authentication: without auth ims serve listens on loopback only; pass --insecure-no-auth to serve the network anyway"
        }
    }
}

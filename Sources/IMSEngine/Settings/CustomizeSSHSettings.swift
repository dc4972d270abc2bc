import Foundation

/// Where customize and debug sessions listen and how the job record names them, under `customize_ssh:` in ims.yaml:
///
///     customize_ssh:
///       listen_address: 10.1.0.5                # the IP address sshd binds (default: customer_access_host when it
///                                               # is an IP address, else 0.0.0.0)
///       port_range: [30000, 30099]              # the first free port of the range (default: an ephemeral port)
///       customer_access_host: ims.example.net   # connection_info.customer_access.host (default: the listen
///                                               # address, or this machine's name when it is a wildcard)
///       cluster_local_host: ims-build.local     # connection_info["cluster.local"].host (default: customer_access_host)
public struct CustomizeSSHSettings: Sendable, Hashable, Codable {
    public var listenAddress: String?
    public var portRange: [Int]?
    public var customerAccessHost: String?
    public var clusterLocalHost: String?

    /// The keys of the section, for the unknown-key check.
    public static let settingNames = ["cluster_local_host", "customer_access_host", "listen_address", "port_range"]

    enum CodingKeys: String, CodingKey {
        case listenAddress = "listen_address"
        case portRange = "port_range"
        case customerAccessHost = "customer_access_host"
        case clusterLocalHost = "cluster_local_host"
    }

    public init(listenAddress: String? = nil, portRange: [Int]? = nil, customerAccessHost: String? = nil, clusterLocalHost: String? = nil) {
        self.listenAddress = listenAddress
        self.portRange = portRange
        self.customerAccessHost = customerAccessHost
        self.clusterLocalHost = clusterLocalHost
    }

    /// Checks values that decode but make no sense.
    public func check(source: String) throws(EngineError) {
        if let address = listenAddress, !Self.isIPAddress(address) {
            throw EngineError(.settings, "\(source): customize_ssh.listen_address '\(address)' is not an IPv4 or IPv6 address")
        }
        if let range = portRange {
            guard range.count == 2, range.allSatisfy({ (1...65535).contains($0) }), range[0] <= range[1] else {
                throw EngineError(.settings, "\(source): customize_ssh.port_range must be [first, last] with 1 <= first <= last <= 65535, got \(range)")
            }
        }
        for (name, value) in [("customer_access_host", customerAccessHost), ("cluster_local_host", clusterLocalHost)] {
            if let value, value.isEmpty || value.contains(where: \.isWhitespace) {
                throw EngineError(.settings, "\(source): customize_ssh.\(name) must be a host name or address, got '\(value)'")
            }
        }
    }

    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}

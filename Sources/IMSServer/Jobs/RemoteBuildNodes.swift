import Foundation
import IMSCatalog

/// The remote build nodes an administrator registered (IMS `/v3/remote-build-nodes`), kept in
/// `<data-dir>/remote-build-nodes.json` in registration order.
///
/// With the `remote-build-nodes` executor, jobs run on these nodes and their status is probed over SSH
/// (``RemoteBuildNodeExecutor``); with another executor the records are kept and a status says nothing was probed.
public actor RemoteBuildNodes {
    /// A registered node.
    public struct Node: Codable, Sendable, Hashable {
        public var xname: String
    }

    /// What ims can say about a node without probing it (IMS's `RemoteBuildNodeStatus`).
    public struct Status: Codable, Sendable, Hashable {
        public var xname: String
        public var nodeArch: String
        public var numCurrentJobs: Int
        public var podmanStatus: String
        public var sshStatus: String
        public var ableToRunJobs: Bool

        /// A registered node as ims sees it: not probed, so unknown and not able to run jobs.
        public init(xname: String) {
            self.xname = xname
            nodeArch = "unknown"
            numCurrentJobs = -1
            podmanStatus = "not checked: the site's executor is not remote-build-nodes"
            sshStatus = "not checked: the site's executor is not remote-build-nodes"
            ableToRunJobs = false
        }
    }

    private let path: String

    /// The registry at `path` (`<data-dir>/remote-build-nodes.json`). The file is read on every access, so nodes
    /// that `ims catalog import-ims` adds while the server runs are seen, and never overwritten.
    public init(path: String) {
        self.path = path
    }

    /// Every node, in registration order (none when the file is missing or unreadable).
    public var all: [Node] { load().map { Node(xname: $0) } }

    /// One node, or nil.
    public func node(_ xname: String) -> Node? { all.first { $0.xname == xname } }

    /// Registers `xname` (registering it again replaces the record, as IMS does).
    public func add(_ xname: String) throws -> Node {
        var xnames = load()
        if !xnames.contains(xname) { xnames.append(xname) }
        try RemoteBuildNodeFile.write(xnames, path: path)
        return Node(xname: xname)
    }

    /// Removes `xname`; returns whether it was registered.
    public func remove(_ xname: String) throws -> Bool {
        var xnames = load()
        guard let index = xnames.firstIndex(of: xname) else { return false }
        xnames.remove(at: index)
        try RemoteBuildNodeFile.write(xnames, path: path)
        return true
    }

    /// Removes every node.
    public func removeAll() throws {
        try RemoteBuildNodeFile.write([], path: path)
    }

    private func load() -> [String] {
        (try? RemoteBuildNodeFile.read(path: path)) ?? []
    }
}

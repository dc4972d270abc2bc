import Foundation

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
    private var nodes: [Node]

    /// Loads the registry at `path` (missing: empty; unreadable: empty, and the next write replaces it).
    public init(path: String) {
        self.path = path
        nodes = (FileManager.default.contents(atPath: path)).flatMap { try? JSONDecoder().decode([Node].self, from: $0) } ?? []
    }

    /// Every node, in registration order.
    public var all: [Node] { nodes }

    /// One node, or nil.
    public func node(_ xname: String) -> Node? { nodes.first { $0.xname == xname } }

    /// Registers `xname` (registering it again replaces the record, as IMS does).
    public func add(_ xname: String) throws -> Node {
        let node = Node(xname: xname)
        if let index = nodes.firstIndex(where: { $0.xname == xname }) { nodes[index] = node } else { nodes.append(node) }
        try save()
        return node
    }

    /// Removes `xname`; returns whether it was registered.
    public func remove(_ xname: String) throws -> Bool {
        guard let index = nodes.firstIndex(where: { $0.xname == xname }) else { return false }
        nodes.remove(at: index)
        try save()
        return true
    }

    /// Removes every node.
    public func removeAll() throws {
        nodes.removeAll()
        try save()
    }

    private func save() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(nodes).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

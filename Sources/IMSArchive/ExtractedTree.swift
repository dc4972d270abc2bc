/// The in-memory model of what an extraction has created so far, used to refuse duplicates, writes
/// through symbolic links and links that leave the destination, before anything touches the disk.
struct ExtractedTree {
    enum Node: Equatable {
        /// A directory; `explicit` when an archive entry named it (rather than implied it as a parent).
        case directory(explicit: Bool)
        /// A regular file. `inode` identifies the file across hard links; `size` is its size when known.
        case file(inode: Int, size: Int64?)
        /// A symbolic link and its raw target.
        case symlink(target: [UInt8])
    }

    private(set) var nodes: [EntryPath: Node] = [:]
    private(set) var symlinks: [EntryPath] = []
    private var nextInode = 0

    subscript(path: EntryPath) -> Node? { nodes[path] }

    mutating func insertDirectory(_ path: EntryPath, explicit: Bool) {
        if case .directory(true) = nodes[path] { return }
        nodes[path] = .directory(explicit: explicit)
    }

    /// Records a new regular file and returns its inode number.
    mutating func insertFile(_ path: EntryPath, size: Int64?) -> Int {
        nextInode += 1
        nodes[path] = .file(inode: nextInode, size: size)
        return nextInode
    }

    mutating func updateFileSize(_ path: EntryPath, size: Int64) {
        if case .file(let inode, _) = nodes[path] { nodes[path] = .file(inode: inode, size: size) }
    }

    mutating func insertHardlink(_ path: EntryPath, to inode: Int, size: Int64?) {
        nodes[path] = .file(inode: inode, size: size)
    }

    mutating func insertSymlink(_ path: EntryPath, target: [UInt8]) {
        nodes[path] = .symlink(target: target)
        symlinks.append(path)
    }

    /// How a link target resolves.
    enum Resolution: Equatable {
        /// Inside the destination (possibly dangling, or a loop that the kernel would refuse).
        case inside
        /// Outside the destination; the associated text says why.
        case outside(String)
    }

    /// Resolves a symbolic link target lexically, relative to the link's directory, against the
    /// destination root.
    ///
    /// With `followingSymlinks`, every component that names a symbolic link already in the tree is
    /// replaced by its target, as the kernel would, so a chain of links each harmless on its own (such
    /// as `a/b -> ..` then `c -> a/b/..`) is caught too. Components that do not exist yet are taken
    /// lexically.
    func resolve(target: [UInt8], of link: EntryPath, followingSymlinks: Bool) -> Resolution {
        if target.first == EntryPath.slash { return .outside("absolute target") }
        var stack = link.parent.components
        var pending = Array(linkTargetComponents(target).reversed())
        var hops = 0
        while let component = pending.popLast() {
            if component == [EntryPath.dot] { continue }
            if component == [EntryPath.dot, EntryPath.dot] {
                if stack.isEmpty { return .outside("target leaves the destination through '..'") }
                stack.removeLast()
                continue
            }
            stack.append(component)
            guard followingSymlinks, case .symlink(let next) = nodes[EntryPath(components: stack)] else { continue }
            hops += 1
            // The kernel gives up after 40 links with ELOOP: nothing can be reached through a loop.
            if hops > 40 { return .inside }
            if next.first == EntryPath.slash { return .outside("target passes through a symbolic link with an absolute target") }
            stack.removeLast()
            pending.append(contentsOf: linkTargetComponents(next).reversed())
        }
        return .inside
    }
}

/// A normalised relative path inside the destination: components joined by `/`, with no empty, `.`
/// or `..` components. Kept as bytes, because archive names need not be UTF-8 and must reach the file
/// system unchanged.
struct EntryPath: Hashable {
    /// The components joined by `/`; empty for the destination root.
    var bytes: [UInt8]
    /// The offset in ``bytes`` at which each component ends (exclusive), in order.
    var componentEnds: [Int]

    /// Why a raw path cannot be used.
    enum Problem: Error, Equatable {
        case absolute
        case dotDot
    }

    static let slash = UInt8(ascii: "/")
    static let dot = UInt8(ascii: ".")

    /// The destination root.
    static let root = EntryPath(bytes: [], componentEnds: [])

    /// Normalises `raw`: drops empty and `.` components and trailing slashes.
    ///
    /// - Returns: The path.
    /// - Throws: The problem that makes it unusable: absolute, or any `..` component, even one that
    ///   would stay inside (libarchive's `ARCHIVE_EXTRACT_SECURE_NODOTDOT` rule).
    static func normalise(_ raw: UnsafeBufferPointer<UInt8>) throws(Problem) -> EntryPath {
        if raw.first == slash { throw .absolute }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(raw.count)
        var ends: [Int] = []
        var start = 0
        var index = 0
        while index <= raw.count {
            if index == raw.count || raw[index] == slash {
                let length = index - start
                if length == 1 && raw[start] == dot {
                    // "." component: skip.
                } else if length == 2 && raw[start] == dot && raw[start + 1] == dot {
                    throw .dotDot
                } else if length > 0 {
                    if !bytes.isEmpty { bytes.append(slash) }
                    bytes.append(contentsOf: UnsafeBufferPointer(rebasing: raw[start..<index]))
                    ends.append(bytes.count)
                }
                start = index + 1
            }
            index += 1
        }
        return EntryPath(bytes: bytes, componentEnds: ends)
    }

    var isRoot: Bool { componentEnds.isEmpty }
    var depth: Int { componentEnds.count }

    /// The offset at which the last component starts (0 for a top-level entry).
    var nameStart: Int {
        componentEnds.count >= 2 ? componentEnds[componentEnds.count - 2] + 1 : 0
    }

    /// The path of the first `count` components.
    func prefix(_ count: Int) -> EntryPath {
        guard count > 0 else { return .root }
        return EntryPath(bytes: Array(bytes[0..<componentEnds[count - 1]]), componentEnds: Array(componentEnds[0..<count]))
    }

    /// The parent path (the root for a top-level entry).
    var parent: EntryPath { prefix(depth - 1) }

    /// The components, as byte arrays.
    var components: [[UInt8]] {
        var result: [[UInt8]] = []
        result.reserveCapacity(componentEnds.count)
        var start = 0
        for end in componentEnds {
            result.append(Array(bytes[start..<end]))
            start = end + 1
        }
        return result
    }

    /// The path for messages (invalid UTF-8 repaired).
    var display: String { String(decoding: bytes, as: UTF8.self) }

    static func == (lhs: EntryPath, rhs: EntryPath) -> Bool { lhs.bytes == rhs.bytes }
    func hash(into hasher: inout Hasher) { hasher.combine(bytes) }
}

extension EntryPath {
    /// Builds a path from components (each non-empty, not `.` or `..`).
    init(components: some Sequence<[UInt8]>) {
        var bytes: [UInt8] = []
        var ends: [Int] = []
        for component in components {
            if !bytes.isEmpty { bytes.append(Self.slash) }
            bytes.append(contentsOf: component)
            ends.append(bytes.count)
        }
        self.init(bytes: bytes, componentEnds: ends)
    }
}

/// Splits a link target into its raw components (empty components dropped; `.` and `..` kept).
func linkTargetComponents(_ target: [UInt8]) -> [[UInt8]] {
    target.split(separator: EntryPath.slash, omittingEmptySubsequences: true).map(Array.init)
}

/// An error of the archive layer: reading, extracting or packing a recipe archive.
///
/// Every error names the archive (or, for packing, the directory or output path) and, when one entry
/// is to blame, that entry. Descriptions never contain file content: only paths, link targets, sizes
/// and libarchive's own messages.
///
/// ```
/// recipe.tgz: entry '../etc/passwd' escapes the destination ('..' in path)
/// ```
public struct ArchiveError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong, for programmatic handling. New codes may be added.
    public enum Code: String, Sendable, Equatable, CaseIterable, Codable {
        /// The input is not a tar-family or zip archive (cpio, 7z, a raw file, an unknown compression).
        case unsupportedFormat = "unsupported_format"
        /// The archive is truncated or damaged, or libarchive could not decode it.
        case corrupt
        /// An entry's path is absolute.
        case absolutePath = "absolute_path"
        /// An entry's path contains a `..` component.
        case pathTraversal = "path_traversal"
        /// A symbolic or hard link resolves outside the destination, or an entry would be written
        /// through a symbolic link.
        case linkEscape = "link_escape"
        /// A device node, FIFO, socket or other non-regular entry (or, when packing, source file).
        case specialFile = "special_file"
        /// The same path appears twice with a different type or content, or an entry needs an earlier
        /// non-directory entry to be a directory.
        case duplicateEntry = "duplicate_entry"
        /// An ``ExtractionLimits`` limit was exceeded.
        case limitExceeded = "limit_exceeded"
        /// An entry is malformed in a way not covered above (no path, an empty link target, a hard
        /// link to something that is not an earlier regular file).
        case invalidEntry = "invalid_entry"
        /// A file-system operation failed.
        case io
        /// The destination already exists and is not an empty directory.
        case destinationExists = "destination_exists"
    }

    /// What went wrong.
    public var code: Code
    /// The archive being read or written, as the caller named it (for packing failures that concern
    /// the source tree, the source directory).
    public var archivePath: String
    /// The entry to blame, as a path inside the archive, if there is one.
    public var entry: String?
    /// A short explanation without the archive or entry name, such as `"'..' in path"`.
    public var reason: String

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: What went wrong.
    ///   - archivePath: The archive (or directory) concerned.
    ///   - entry: The entry to blame, if any.
    ///   - reason: A short explanation; it must not contain file content.
    public init(_ code: Code, archivePath: String, entry: String? = nil, reason: String) {
        self.code = code
        self.archivePath = archivePath
        self.entry = entry
        self.reason = reason
    }

    /// One lowercase sentence fragment: the archive, then the entry if any, then what happened.
    public var description: String {
        let archive = Self.printable(archivePath)
        guard let entry else { return "\(archive): \(reason)" }
        let name = "entry '\(Self.printable(entry))'"
        switch code {
        case .absolutePath, .pathTraversal, .linkEscape:
            return "\(archive): \(name) escapes the destination (\(reason))"
        case .specialFile:
            return "\(archive): \(name) is refused (\(reason))"
        case .duplicateEntry:
            return "\(archive): \(name) conflicts with an earlier entry (\(reason))"
        case .limitExceeded:
            return "\(archive): \(name) exceeds a limit (\(reason))"
        default:
            return "\(archive): \(name): \(reason)"
        }
    }

    /// Escapes control characters so that hostile names cannot rewrite a terminal line.
    static func printable(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value) {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

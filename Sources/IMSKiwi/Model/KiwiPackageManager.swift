/// The package manager a description asks for, normalised to current kiwi spellings.
///
/// Normalisation (`KiwiPackageManager.normalize(_:)`):
///
/// | as written | normalised | note |
/// |---|---|---|
/// | `zypper` | `zypper` | |
/// | `dnf4`, `dnf` | `dnf4` | `dnf` is the pre-7.6 spelling |
/// | `yum` | `dnf4` | legacy, warned |
/// | `dnf5` | `dnf5` | |
/// | `microdnf` | `microdnf` | |
/// | `apt`, `apt-get` | `apt` | `apt-get` is legacy, warned |
/// | `pacman` | `pacman` | |
/// | `apk` | `apk` | |
///
/// Matching ignores case and surrounding whitespace.
public enum KiwiPackageManager: String, Sendable, Hashable, Codable, CaseIterable {
    /// SUSE's zypper.
    case zypper
    /// dnf 4 (also `dnf` and legacy `yum`).
    case dnf4
    /// dnf 5.
    case dnf5
    /// microdnf.
    case microdnf
    /// apt (also legacy `apt-get`).
    case apt
    /// Arch Linux's pacman.
    case pacman
    /// Alpine's apk.
    case apk

    /// The outcome of normalising a written value.
    public struct Normalization: Sendable, Hashable {
        /// The normalised manager, or nil when the spelling is unknown.
        public var manager: KiwiPackageManager?
        /// Whether the spelling is a legacy one that deserves a warning.
        public var isLegacy: Bool
    }

    /// Normalises a `<packagemanager>` value.
    public static func normalize(_ written: String) -> Normalization {
        switch written.kiwiTrimmed.lowercased() {
        case "zypper": Normalization(manager: .zypper, isLegacy: false)
        case "dnf4": Normalization(manager: .dnf4, isLegacy: false)
        case "dnf": Normalization(manager: .dnf4, isLegacy: true)
        case "yum": Normalization(manager: .dnf4, isLegacy: true)
        case "dnf5": Normalization(manager: .dnf5, isLegacy: false)
        case "microdnf": Normalization(manager: .microdnf, isLegacy: false)
        case "apt": Normalization(manager: .apt, isLegacy: false)
        case "apt-get": Normalization(manager: .apt, isLegacy: true)
        case "pacman": Normalization(manager: .pacman, isLegacy: false)
        case "apk": Normalization(manager: .apk, isLegacy: false)
        default: Normalization(manager: nil, isLegacy: false)
        }
    }

    /// The distribution family this package manager implies.
    public var family: KiwiDistroFamily {
        switch self {
        case .zypper: .suse
        case .dnf4, .dnf5, .microdnf: .rhel
        case .apt: .debian
        case .pacman: .arch
        case .apk: .unknown
        }
    }
}

/// A parsed `schemaversion` (`major.minor`).
public struct KiwiSchemaVersion: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The major version.
    public var major: Int
    /// The minor version.
    public var minor: Int

    /// Creates a version.
    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// Parses `"7.4"`; nil for anything else.
    public init?(_ text: String) {
        let parts = text.kiwiTrimmed.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let major = Int(parts[0]), let minor = Int(parts[1]), major >= 0, minor >= 0,
            parts.allSatisfy({ $0.allSatisfy(\.isASCII) })
        else { return nil }
        self.init(major: major, minor: minor)
    }

    /// The oldest version current kiwi reads; older accepted versions are read as this one.
    public static let oldestCurrent = KiwiSchemaVersion(major: 7, minor: 4)
    /// The newest version this engine knows (kiwi 10.3 / 11.1).
    public static let newestKnown = KiwiSchemaVersion(major: 8, minor: 5)

    /// How this engine treats a version.
    public enum Support: Sendable, Hashable {
        /// 7.4 to 8.5.
        case current
        /// 6.0 to 7.3: accepted, read as 7.4, with a warning.
        case legacy
        /// 8.6 to 8.x: accepted with a warning.
        case newer
        /// Below 6.0, or 9.0 and later.
        case unsupported
    }

    /// How this engine treats this version.
    public var support: Support {
        if major < 6 || major > 8 { return .unsupported }
        if self < Self.oldestCurrent { return .legacy }
        if self > Self.newestKnown { return .newer }
        return .current
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.major, lhs.minor) < (rhs.major, rhs.minor)
    }

    public var description: String { "\(major).\(minor)" }
}

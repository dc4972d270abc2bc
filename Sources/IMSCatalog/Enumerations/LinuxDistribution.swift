/// The distribution a recipe builds (IMS `linux_distribution`).
///
/// IMS accepts only `sles12`, `sles15` and `centos7`; ims extends the list to current releases. The value is
/// informational in IMS; ims uses ``family`` to choose plugins.
public enum LinuxDistribution: String, RecordEnumeration {
    case sles12
    case sles15
    case sles16
    case opensuseLeap15 = "opensuse-leap15"
    case opensuseLeap16 = "opensuse-leap16"
    case opensuseTumbleweed = "opensuse-tumbleweed"
    case centos7
    case centos8
    case rhel8
    case rhel9
    case rhel10
    case rocky8
    case rocky9
    case rocky10
    case alma8
    case alma9
    case alma10
    case fedora

    public static let fieldName = "linux_distribution"

    /// The family the distribution belongs to (package manager, repository layout, CA anchors).
    public var family: DistroFamily {
        switch self {
        case .sles12, .sles15, .sles16, .opensuseLeap15, .opensuseLeap16, .opensuseTumbleweed: .suse
        case .centos7, .centos8, .rhel8, .rhel9, .rhel10, .rocky8, .rocky9, .rocky10, .alma8, .alma9, .alma10, .fedora: .rhel
        }
    }
}

/// A family of distributions that build and configure alike.
public enum DistroFamily: String, Codable, Sendable, CaseIterable {
    /// SLES and openSUSE (zypper, `/etc/pki/trust/anchors`).
    case suse
    /// RHEL and its rebuilds, CentOS and Fedora (dnf/yum, `/etc/pki/ca-trust/source/anchors`).
    case rhel
}

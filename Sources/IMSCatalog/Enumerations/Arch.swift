/// A CPU architecture of recipes, images and jobs (IMS `arch`; default `x86_64`).
public enum Arch: String, RecordEnumeration {
    case x86_64
    case aarch64

    public static let fieldName = "arch"

    /// The kernel file name IMS uses for this architecture when a job does not name one
    /// (`vmlinuz` on x86_64, `Image` on aarch64).
    public var defaultKernelFileName: String {
        switch self {
        case .x86_64: "vmlinuz"
        case .aarch64: "Image"
        }
    }
}

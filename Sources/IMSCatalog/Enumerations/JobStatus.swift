/// The status of a job, in IMS's order (`STATUS_TYPES`).
///
/// A create job normally goes `creating` → `fetching_recipe` → `waiting_for_repos` → `building_image` →
/// `packaging_artifacts` → `success`; a customize job `creating` → `fetching_image` → `waiting_on_user` →
/// `packaging_artifacts` → `success`. Like IMS, the catalog does not enforce an order.
public enum JobStatus: String, RecordEnumeration, Comparable {
    case creating
    case fetchingImage = "fetching_image"
    case fetchingRecipe = "fetching_recipe"
    case waitingForRepos = "waiting_for_repos"
    case buildingImage = "building_image"
    case packagingArtifacts = "packaging_artifacts"
    case waitingOnUser = "waiting_on_user"
    case error
    case success

    public static let fieldName = "status"

    /// `error` and `success` end a job.
    public var isTerminal: Bool { self == .error || self == .success }

    /// Every status that does not end a job.
    public static var active: [JobStatus] { allCases.filter { !$0.isTerminal } }

    public static func < (lhs: JobStatus, rhs: JobStatus) -> Bool {
        let order = allCases
        return (order.firstIndex(of: lhs) ?? 0) < (order.firstIndex(of: rhs) ?? 0)
    }
}

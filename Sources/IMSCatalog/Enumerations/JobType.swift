/// What a job does (IMS `job_type`).
public enum JobType: String, RecordEnumeration {
    /// Build a new image from a recipe.
    case create
    /// Change an existing image and store the result as a new image.
    case customize

    public static let fieldName = "job_type"
}

import Foundation
import IMSCatalog

/// The query parameters IMS's API takes, parsed from `(name, value)` pairs (a name may repeat).
public enum QueryParameters {
    /// The filter of `DELETE /jobs?status=…&status=…&job_type=…&age=…`.
    ///
    /// `status` may repeat; an unknown status or job type is a 400, and so is an `age` that is not an age
    /// (IMS ignores such an age and deletes every job; see ``JobFilter/parseAge(_:)``).
    public static func jobDeletionFilter(_ query: [(String, String)]) throws(Problem) -> JobFilter {
        var filter = JobFilter()
        for (name, value) in query {
            switch name {
            case "status":
                guard let status = JobStatus(rawValue: value) else {
                    throw Problem(status: 400, detail: "'\(value)' is not a job status; allowed: \(JobStatus.allowedValues.joined(separator: ", "))")
                }
                filter.statuses.insert(status)
            case "job_type":
                guard let jobType = JobType(rawValue: value) else {
                    throw Problem(status: 400, detail: "'\(value)' is not a job type; allowed: \(JobType.allowedValues.joined(separator: ", "))")
                }
                filter.jobType = jobType
            case "age":
                do {
                    filter.olderThan = try JobFilter.parseAge(value)
                } catch {
                    throw Problem(status: 400, detail: error.description)
                }
            default:
                continue
            }
        }
        return filter
    }

    /// v2 DELETE's `cascade` (default true): whether the linked artifacts are deleted with the record.
    public static func cascade(_ query: [(String, String)]) throws(Problem) -> Bool {
        guard let value = query.last(where: { $0.0 == "cascade" })?.1 else { return true }
        switch value.lowercased() {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw Problem(status: 400, detail: "cascade: '\(value)' is not true or false")
        }
    }
}

import Foundation

/// Everything that can go wrong in the catalog, with the context needed to act on it.
///
/// `description` is a lowercase sentence fragment suitable after `error: `. `code` is a stable dotted
/// identifier (`catalog.not_found`, `catalog.conflict`, …) that the command line prints with `--json`.
public enum CatalogError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No live (or, for `deleted` lookups, deleted) record of `kind` has this id.
    case notFound(kind: RecordKind, id: String)
    /// A value is not one of the allowed values of a field.
    case invalidValue(field: String, value: String, allowed: [String])
    /// A field is missing or malformed (`reason` says how).
    case invalidField(field: String, reason: String)
    /// The record already has a different link; IMS answers 409 here.
    case linkConflict(kind: RecordKind, id: String, current: String, requested: String)
    /// Another record of the same kind already uses this link.
    case linkInUse(kind: RecordKind, link: String, otherID: String)
    /// A record with this id already exists.
    case duplicateID(kind: RecordKind, id: String)
    /// A job cannot be created as requested.
    case invalidJob(reason: String)
    /// The data directory cannot be created or used.
    case dataDirectory(path: String, reason: String)
    /// SQLite or GRDB failed; `operation` says what the catalog was doing.
    case database(operation: String, message: String)
    /// A stored row cannot be read back (written by a newer ims, or edited by hand).
    case corruptRow(kind: RecordKind, id: String, reason: String)
    /// An IMS data file (or one record in it, at `index`) cannot be imported; nothing was imported.
    case importData(file: String, index: Int?, reason: String)
    /// `ims catalog restore` will not replace the catalog (a server or job is running, the backup is from a newer
    /// ims, or it is not a catalog).
    case restoreRefused(backup: String, reason: String)
    /// `ims catalog export-ims` cannot write its files (they exist, or the directory is unusable).
    case exportFailed(path: String, reason: String)

    /// The kinds of records the catalog keeps.
    public enum RecordKind: String, Sendable, Equatable {
        case recipe, image, publicKey = "public key", job
    }

    /// A stable, dotted, lowercase identifier for the kind of failure.
    public var code: String {
        switch self {
        case .notFound: "catalog.not_found"
        case .invalidValue, .invalidField, .invalidJob: "catalog.invalid"
        case .linkConflict, .linkInUse, .duplicateID: "catalog.conflict"
        case .dataDirectory: "catalog.unavailable"
        case .database: "catalog.database"
        case .corruptRow: "catalog.corrupt"
        case .importData: "catalog.import_invalid"
        case .restoreRefused: "catalog.restore_refused"
        case .exportFailed: "catalog.export_failed"
        }
    }

    public var description: String {
        switch self {
        case .notFound(let kind, let id):
            "no \(kind.rawValue) with id \(id)"
        case .invalidValue(let field, let value, let allowed):
            "'\(value)' is not a valid \(field); allowed: \(allowed.joined(separator: ", "))"
        case .invalidField(let field, let reason):
            "\(field): \(reason)"
        case .linkConflict(let kind, let id, let current, let requested):
            "\(kind.rawValue) \(id) already has the link \(current); refusing to replace it with \(requested) (delete the link first)"
        case .linkInUse(let kind, let link, let otherID):
            "the link \(link) is already used by \(kind.rawValue) \(otherID)"
        case .duplicateID(let kind, let id):
            "a \(kind.rawValue) with id \(id) already exists"
        case .invalidJob(let reason):
            "cannot create the job: \(reason)"
        case .dataDirectory(let path, let reason):
            "cannot use the data directory \(path): \(reason)"
        case .database(let operation, let message):
            "catalog database error while \(operation): \(message)"
        case .corruptRow(let kind, let id, let reason):
            "the stored \(kind.rawValue) \(id) cannot be read: \(reason)"
        case .importData(let file, let index, let reason):
            "\(file)\(index.map { " record \($0)" } ?? ""): \(reason); nothing was imported"
        case .restoreRefused(let backup, let reason):
            "not restoring \(backup): \(reason); the catalog was not changed"
        case .exportFailed(let path, let reason):
            "cannot export to \(path): \(reason)"
        }
    }
}

import Foundation
import GRDB
import IMSProtocol

/// What `ims catalog import-ims` did, or with `--dry-run` would do.
public struct IMSImportReport: Sendable, Encodable, Hashable {
    /// Counts for one kind of record.
    public struct Counts: Sendable, Codable, Hashable {
        /// Records in the IMS files.
        public var read = 0
        /// Records new to the catalog (imported, or to be imported in a dry run).
        public var added = 0
        /// Records the catalog already holds exactly so (a second import changes nothing).
        public var unchanged = 0
        /// Records that conflict with the catalog or with each other.
        public var conflicts = 0

        public init() {}
    }

    /// A record that cannot be imported as it is; while there is one, nothing is imported.
    public struct Conflict: Sendable, Codable, Hashable {
        /// `recipe`, `image`, `public key`, `job`.
        public var kind: String
        public var id: String
        /// The IMS file and index of the incoming record.
        public var source: IMSRecordSource
        /// What conflicts, naming both records.
        public var reason: String
        /// The IMS fields whose values differ from the catalog's record of the same id.
        public var fields: [String]
        /// The other record: the catalog's record of the same id, or the record already using the link.
        public var other: String?
    }

    public var directory: String
    public var dryRun: Bool
    /// Whether records were written (false in a dry run, with conflicts, or when nothing was new).
    public var imported: Bool
    public var files: [IMSDataFile]
    /// Counts by table: `recipes`, `images`, `public_keys`, `jobs`, `remote_build_nodes`.
    public var tables: [String: Counts]
    public var conflicts: [Conflict]
    /// Jobs imported in a status that does not end a job: IMS was still running them, ims does not.
    public var unfinishedJobs: [String]
    /// Whether the live records' links were checked against the store (`--verify-links`).
    public var linksVerified = false
    /// Live images whose manifest or artifacts, and live recipes whose archive, the store lacks (rule `store`).
    /// Such records are imported all the same, and listed here.
    public var linkProblems: [Catalog.Problem] = []

    /// True when there is no conflict.
    public var ok: Bool { conflicts.isEmpty }

    enum CodingKeys: String, CodingKey {
        case directory, ok, imported, files, tables, conflicts
        case dryRun = "dry_run"
        case unfinishedJobs = "unfinished_jobs"
        case linksVerified = "links_verified"
        case linkProblems = "link_problems"
    }

    public init(directory: String, dryRun: Bool, files: [IMSDataFile]) {
        self.directory = directory
        self.dryRun = dryRun
        imported = false
        self.files = files
        tables = [:]
        conflicts = []
        unfinishedJobs = []
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(directory, forKey: .directory)
        try c.encode(ok, forKey: .ok)
        try c.encode(dryRun, forKey: .dryRun)
        try c.encode(imported, forKey: .imported)
        try c.encode(files, forKey: .files)
        try c.encode(tables, forKey: .tables)
        try c.encode(conflicts, forKey: .conflicts)
        try c.encode(unfinishedJobs, forKey: .unfinishedJobs)
        try c.encode(linksVerified, forKey: .linksVerified)
        try c.encode(linkProblems, forKey: .linkProblems)
    }
}

extension Catalog {
    /// Imports IMS's records (read with ``IMSData/read(directory:)``), keeping every id, time and field.
    ///
    /// All or nothing, in one transaction: a record whose id the catalog already holds with the same IMS fields is
    /// left as it is (so importing twice changes nothing); one whose fields differ, or a live record whose link
    /// another live record already uses, is a conflict, and while there is any conflict nothing is imported. With
    /// `dryRun` nothing is written either; the report says what would happen. Remote build nodes are not catalog
    /// records: ``IMSImport`` merges them into the data directory's registry.
    public func importIMSRecords(_ data: IMSData, directory: String, dryRun: Bool) throws(CatalogError) -> IMSImportReport {
        let body = { (db: Database) throws -> IMSImportReport in
            var report = IMSImportReport(directory: directory, dryRun: dryRun, files: data.files)
            let planner = ImportPlanner(db: db)
            let recipes = try planner.plan(data.recipes, table: "recipes", kind: .recipe, linkTable: "recipes", report: &report,
                                          exists: { try Catalog.fetchRecipe(db, $0, scope: .any) }, fields: { IMSRecordFields.object($0) }, link: { $0.deleted == nil ? $0.link : nil })
            let images = try planner.plan(data.images, table: "images", kind: .image, linkTable: "images", report: &report,
                                         exists: { try Catalog.fetchImage(db, $0, scope: .any) }, fields: { IMSRecordFields.object($0) }, link: { $0.deleted == nil ? $0.link : nil })
            let keys = try planner.plan(data.publicKeys, table: "public_keys", kind: .publicKey, linkTable: nil, report: &report,
                                       exists: { try Catalog.fetchPublicKey(db, $0, scope: .any) }, fields: { IMSRecordFields.object($0) }, link: { _ in nil })
            let jobs = try planner.plan(data.jobs, table: "jobs", kind: .job, linkTable: nil, report: &report,
                                       exists: { try Catalog.fetchJob(db, $0) }, fields: { IMSRecordFields.object($0) }, link: { _ in nil })
            report.unfinishedJobs = jobs.filter { !$0.status.isTerminal }.map(\.id.imsString)
            guard report.ok, !dryRun else { return report }
            for recipe in recipes { try Catalog.insertRecipe(db, recipe) }
            try Catalog.insertImages(db, images)
            for key in keys { try Catalog.insertPublicKey(db, key) }
            for job in jobs { try Catalog.insertJob(db, job) }
            report.imported = !(recipes.isEmpty && images.isEmpty && keys.isEmpty && jobs.isEmpty)
            return report
        }
        if dryRun {
            return try read("checking an import of IMS records from \(directory)", body)
        }
        return try write("importing IMS records from \(directory)", body)
    }

    /// Every record in IMS's form, for `export-ims`: live and soft-deleted recipes, images and public keys, and jobs.
    public func imsExportRecords() throws(CatalogError) -> (recipes: [RecipeRecord], images: [ImageRecord], publicKeys: [PublicKeyRecord], jobs: [JobRecord]) {
        (try recipes() + recipes(deleted: true), try images() + images(deleted: true),
         try publicKeys() + publicKeys(deleted: true), try jobs())
    }
}

/// Sorts incoming records into new, unchanged and conflicting ones, within one transaction.
private struct ImportPlanner {
    let db: Database

    func plan<Record>(
        _ incoming: [Sourced<Record>], table: String, kind: CatalogError.RecordKind, linkTable: String?,
        report: inout IMSImportReport, exists: (UUID) throws -> Record, fields: (Record) -> [String: JSONValue],
        link: (Record) -> ArtifactLink?
    ) throws -> [Record] where Record: Identifiable & Sendable & Hashable, Record.ID == UUID {
        var counts = IMSImportReport.Counts()
        counts.read = incoming.count
        var added: [Record] = []
        added.reserveCapacity(incoming.count)
        var incomingLinks: [String: Sourced<Record>] = [:]
        let present = try db.cachedStatement(sql: "SELECT 1 FROM \(table) WHERE id = ?")
        for item in incoming {
            let id = item.record.id
            if try Bool.fetchOne(present, arguments: [id.imsString]) == true {
                let existing = try exists(id)
                let differences = IMSRecordFields.differences(fields(existing), fields(item.record))
                if differences.isEmpty {
                    counts.unchanged += 1
                } else {
                    counts.conflicts += 1
                    report.conflicts.append(IMSImportReport.Conflict(
                        kind: kind.rawValue, id: id.imsString, source: item.source,
                        reason: "the catalog already holds \(kind.rawValue) \(id.imsString) with other values for \(differences.joined(separator: ", "))",
                        fields: differences, other: id.imsString))
                }
                continue
            }
            if let linkTable, let link = link(item.record) {
                if let first = incomingLinks[link.path] {
                    counts.conflicts += 1
                    report.conflicts.append(IMSImportReport.Conflict(
                        kind: kind.rawValue, id: id.imsString, source: item.source,
                        reason: "live \(kind.rawValue)s \(first.record.id.imsString) (\(first.source)) and \(id.imsString) share the link \(link.path)",
                        fields: ["link"], other: first.record.id.imsString))
                    continue
                }
                incomingLinks[link.path] = item
                if let other = try String.fetchOne(
                    try db.cachedStatement(sql: "SELECT id FROM \(linkTable) WHERE link_path = ? AND deleted IS NULL AND id <> ? LIMIT 1"),
                    arguments: [link.path, id.imsString])
                {
                    counts.conflicts += 1
                    report.conflicts.append(IMSImportReport.Conflict(
                        kind: kind.rawValue, id: id.imsString, source: item.source,
                        reason: "the link \(link.path) is already used by the catalog's live \(kind.rawValue) \(other)",
                        fields: ["link"], other: other))
                    continue
                }
            }
            counts.added += 1
            added.append(item.record)
        }
        report.tables[table] = counts
        return added
    }
}

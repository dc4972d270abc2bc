import Foundation

/// A record read from an IMS data file, with where it came from.
public struct Sourced<Record: Sendable & Hashable>: Sendable, Hashable {
    public var record: Record
    public var source: IMSRecordSource

    public init(_ record: Record, source: IMSRecordSource) {
        self.record = record
        self.source = source
    }
}

/// Every record of an IMS data directory, decoded and checked, ready to import.
///
/// Reading is all or nothing: a file that is not a JSON array of records, or one record that IMS's schema would
/// refuse (a missing name, an id that is not a UUID, an unknown enumeration value, a timestamp that is not one, a
/// soft-deleted record without its `deleted` time), fails the whole read with an error naming the file and the
/// record's index, so nothing is imported from a directory that is partly broken.
public struct IMSData: Sendable {
    /// Live and soft-deleted recipes.
    public var recipes: [Sourced<RecipeRecord>] = []
    /// Live and soft-deleted images.
    public var images: [Sourced<ImageRecord>] = []
    /// Live and soft-deleted public keys.
    public var publicKeys: [Sourced<PublicKeyRecord>] = []
    public var jobs: [Sourced<JobRecord>] = []
    /// Remote build nodes' xnames, in file order.
    public var remoteBuildNodes: [Sourced<String>] = []
    /// Each IMS file found: read, or superseded by a newer version of its table.
    public var files: [IMSDataFile] = []

    public init() {}

    /// Reads an IMS data directory.
    ///
    /// - Throws: ``CatalogError/importData(file:index:reason:)`` for an unreadable directory, file or record, and
    ///   for an id that appears twice (in one table, or live and deleted at once).
    public static func read(directory: String) throws(CatalogError) -> IMSData {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw CatalogError.importData(file: directory, index: nil, reason: "cannot list the directory: \((error as NSError).localizedDescription)")
        }
        var newest: [IMSTable: (file: String, version: String)] = [:]
        var found: [(file: String, table: IMSTable, version: String)] = []
        for name in names.sorted() {
            guard let (table, version) = IMSTable.parse(fileName: name) else { continue }
            found.append((name, table, version))
            if let current = newest[table], !IMSTable.versionPrecedes(current.version, version) { continue }
            newest[table] = (name, version)
        }
        guard !found.isEmpty else {
            throw CatalogError.importData(
                file: directory, index: nil,
                reason: "no IMS data files here (expected files such as v2.1_images.json and v2.2_recipes.json, as in IMS's /var/ims/data)")
        }
        var data = IMSData()
        for (name, table, version) in found {
            if let chosen = newest[table], chosen.file != name {
                data.files.append(IMSDataFile(file: name, table: table, version: version, disposition: .superseded, supersededBy: chosen.file))
            }
        }
        for table in IMSTable.allCases {
            guard let chosen = newest[table] else { continue }
            let path = directory + "/" + chosen.file
            let count: Int
            switch table {
            case .recipes, .deletedRecipes:
                let records: [Sourced<RecipeRecord>] = try read(table, path: path, file: chosen.file, deleted: \.deleted) { record throws(CatalogError) in
                    try checkName(record.name)
                    try record.link?.validate()
                }
                count = records.count
                data.recipes += records
            case .images, .deletedImages:
                let records: [Sourced<ImageRecord>] = try read(table, path: path, file: chosen.file, deleted: \.deleted) { record throws(CatalogError) in
                    try checkName(record.name)
                    try record.link?.validate()
                }
                count = records.count
                data.images += records
            case .publicKeys, .deletedPublicKeys:
                let records: [Sourced<PublicKeyRecord>] = try read(table, path: path, file: chosen.file, deleted: \.deleted) { record throws(CatalogError) in
                    try checkName(record.name)
                    guard !record.publicKey.isEmpty else { throw CatalogError.invalidField(field: "public_key", reason: "must not be empty") }
                }
                count = records.count
                data.publicKeys += records
            case .jobs:
                let records: [Sourced<JobRecord>] = try read(table, path: path, file: chosen.file, deleted: nil) { record throws(CatalogError) in
                    guard !record.imageRootArchiveName.isEmpty else {
                        throw CatalogError.invalidField(field: "image_root_archive_name", reason: "must not be empty")
                    }
                }
                count = records.count
                data.jobs += records
            case .remoteBuildNodes:
                let records: [Sourced<RemoteBuildNodeFields>] = try read(table, path: path, file: chosen.file, deleted: nil) { node throws(CatalogError) in
                    guard !node.xname.isEmpty else { throw CatalogError.invalidField(field: "xname", reason: "must not be empty") }
                }
                count = records.count
                data.remoteBuildNodes += records.map { Sourced($0.record.xname, source: $0.source) }
            }
            data.files.append(IMSDataFile(file: chosen.file, table: table, version: chosen.version, disposition: .used, records: count))
        }
        try requireUniqueIDs(data.recipes.map { ($0.record.id, $0.source) })
        try requireUniqueIDs(data.images.map { ($0.record.id, $0.source) })
        try requireUniqueIDs(data.publicKeys.map { ($0.record.id, $0.source) })
        try requireUniqueIDs(data.jobs.map { ($0.record.id, $0.source) })
        return data
    }

    /// The number of records of every kind.
    public var recordCount: Int { recipes.count + images.count + publicKeys.count + jobs.count + remoteBuildNodes.count }

    // MARK: - Reading

    struct RemoteBuildNodeFields: Decodable, Sendable, Hashable {
        var xname: String
    }

    /// One table's records with their sources: decoded, `deleted` required in a deleted table and dropped from a
    /// live one (IMS's live schemas have no such field), and each checked by `check`.
    static func read<Record: Decodable & Sendable & Hashable>(
        _ table: IMSTable, path: String, file: String, deleted: WritableKeyPath<Record, Date?>?,
        check: (Record) throws(CatalogError) -> Void
    ) throws(CatalogError) -> [Sourced<Record>] {
        let records: [Record] = try decode(path: path, file: file)
        var sourced: [Sourced<Record>] = []
        sourced.reserveCapacity(records.count)
        for (index, var record) in records.enumerated() {
            let source = IMSRecordSource(file: file, index: index)
            if let deleted {
                if table.holdsDeletedRecords {
                    guard record[keyPath: deleted] != nil else {
                        throw CatalogError.importData(file: file, index: index, reason: "deleted: missing (a soft-deleted record needs the time it was deleted)")
                    }
                } else {
                    record[keyPath: deleted] = nil
                }
            }
            do {
                try check(record)
            } catch {
                throw CatalogError.importData(file: file, index: index, reason: error.description)
            }
            sourced.append(Sourced(record, source: source))
        }
        return sourced
    }

    static func decode<Record: Decodable>(path: String, file: String) throws(CatalogError) -> [Record] {
        guard let bytes = FileManager.default.contents(atPath: path) else {
            throw CatalogError.importData(file: file, index: nil, reason: "cannot read the file")
        }
        do {
            return try JSONDecoder().decode([Record].self, from: bytes)
        } catch let error as DecodingError {
            let (index, reason) = describe(error)
            throw CatalogError.importData(file: file, index: index, reason: reason)
        } catch {
            throw CatalogError.importData(file: file, index: nil, reason: String(describing: error))
        }
    }

    /// The record index and a sentence for a decoding error (`name: missing`, `arch: …`).
    static func describe(_ error: DecodingError) -> (index: Int?, reason: String) {
        let path: [any CodingKey]
        let reason: String
        switch error {
        case .keyNotFound(let key, let context):
            path = context.codingPath + [key]
            reason = "missing"
        case .typeMismatch(let type, let context):
            path = context.codingPath
            reason = "expected \(describe(type))"
        case .valueNotFound(let type, let context):
            path = context.codingPath
            reason = "is null, expected \(describe(type))"
        case .dataCorrupted(let context):
            path = context.codingPath
            reason = context.debugDescription
        @unknown default:
            return (nil, String(describing: error))
        }
        guard let first = path.first, let index = first.intValue else {
            return (nil, path.isEmpty ? "not a JSON array of records (\(reason))" : "\(fieldPath(path)): \(reason)")
        }
        let field = fieldPath(Array(path.dropFirst()))
        return (index, field.isEmpty ? "not a record (\(reason))" : "\(field): \(reason)")
    }

    static func fieldPath(_ path: [any CodingKey]) -> String {
        path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop { $0 == "." }.description
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is Int32.Type, is Int64.Type, is Double.Type: "a number"
        case is [Any].Type: "an array"
        default: "\(type)"
        }
    }

    static func checkName(_ name: String) throws(CatalogError) {
        guard !name.isEmpty else { throw CatalogError.invalidField(field: "name", reason: "must not be empty") }
    }

    static func requireUniqueIDs(_ ids: [(UUID, IMSRecordSource)]) throws(CatalogError) {
        var seen: [UUID: IMSRecordSource] = [:]
        seen.reserveCapacity(ids.count)
        for (id, source) in ids {
            if let first = seen[id] {
                throw CatalogError.importData(
                    file: source.file, index: source.index,
                    reason: "id \(id.imsString) is also the id of \(first) (an id names one record, live or deleted)")
            }
            seen[id] = source
        }
    }
}

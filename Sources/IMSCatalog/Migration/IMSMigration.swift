import Foundation
import IMSProtocol

/// Moving a site's records from IMS's data directory into ims (`ims catalog import-ims`) and back
/// (`ims catalog export-ims`).
public enum IMSMigration {
    /// Reads an IMS data directory and imports it: the catalog's records in one transaction, then the remote build
    /// nodes into the data directory's registry (added to the nodes already there). Nothing is written in a dry run
    /// or when a record conflicts.
    ///
    /// - Throws: ``CatalogError/importData(file:index:reason:)`` for a broken file or record (nothing imported).
    public static func importDirectory(
        _ directory: String, into catalog: Catalog, dataDirectory: DataDirectory, dryRun: Bool
    ) throws(CatalogError) -> IMSImportReport {
        try importData(IMSData.read(directory: directory), from: directory, into: catalog, dataDirectory: dataDirectory, dryRun: dryRun)
    }

    /// ``importDirectory(_:into:dataDirectory:dryRun:)`` for records already read from `directory`.
    public static func importData(
        _ data: IMSData, from directory: String, into catalog: Catalog, dataDirectory: DataDirectory, dryRun: Bool
    ) throws(CatalogError) -> IMSImportReport {
        var report = try catalog.importIMSRecords(data, directory: directory, dryRun: dryRun)
        var nodes = IMSImportReport.Counts()
        nodes.read = data.remoteBuildNodes.count
        var registered = try RemoteBuildNodeFile.read(path: dataDirectory.remoteBuildNodesPath)
        var known = Set(registered)
        for node in data.remoteBuildNodes {
            if known.insert(node.record).inserted {
                nodes.added += 1
                registered.append(node.record)
            } else {
                nodes.unchanged += 1
            }
        }
        report.tables["remote_build_nodes"] = nodes
        if report.ok, !dryRun, nodes.added > 0 {
            try RemoteBuildNodeFile.write(registered, path: dataDirectory.remoteBuildNodesPath)
            report.imported = true
        }
        return report
    }

    /// Writes the catalog's records (and the data directory's remote build nodes) as IMS's data files, current
    /// versions only (``IMSTable/currentFileName``), each written whole and renamed into place.
    ///
    /// - Parameter overwrite: replace IMS files already in `directory`; without it, any one of them is refused, so an
    ///   IMS data directory is never overwritten by mistake.
    /// - Returns: the files written, with their record counts.
    public static func exportDirectory(
        _ directory: String, from catalog: Catalog, dataDirectory: DataDirectory, overwrite: Bool
    ) throws(CatalogError) -> [IMSDataFile] {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw CatalogError.exportFailed(path: directory, reason: (error as NSError).localizedDescription)
            }
        } else if !isDirectory.boolValue {
            throw CatalogError.exportFailed(path: directory, reason: "not a directory")
        }
        if !overwrite {
            let existing = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
                .filter { IMSTable.parse(fileName: $0) != nil }.sorted()
            if !existing.isEmpty {
                throw CatalogError.exportFailed(
                    path: directory,
                    reason: "it already holds IMS data files (\(existing.joined(separator: ", "))); choose an empty directory or pass --overwrite")
            }
        }
        let records = try catalog.imsExportRecords()
        let nodes = try RemoteBuildNodeFile.read(path: dataDirectory.remoteBuildNodesPath)
        var tables: [IMSTable: [[String: JSONValue]]] = [:]
        for recipe in records.recipes {
            tables[recipe.deleted == nil ? .recipes : .deletedRecipes, default: []].append(IMSRecordFields.object(recipe))
        }
        for image in records.images {
            tables[image.deleted == nil ? .images : .deletedImages, default: []].append(IMSRecordFields.object(image))
        }
        for key in records.publicKeys {
            tables[key.deleted == nil ? .publicKeys : .deletedPublicKeys, default: []].append(IMSRecordFields.object(key))
        }
        tables[.jobs] = records.jobs.map { IMSRecordFields.object($0) }
        tables[.remoteBuildNodes] = nodes.map { IMSRecordFields.object(remoteBuildNode: $0) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var written: [IMSDataFile] = []
        for table in IMSTable.allCases {
            let objects = tables[table] ?? []
            let path = directory + "/" + table.currentFileName
            do {
                try encoder.encode(objects.map(JSONValue.object)).write(to: URL(fileURLWithPath: path), options: .atomic)
            } catch {
                throw CatalogError.exportFailed(path: path, reason: (error as NSError).localizedDescription)
            }
            written.append(IMSDataFile(file: table.currentFileName, table: table, version: table.currentVersion, disposition: .used, records: objects.count))
        }
        return written
    }
}

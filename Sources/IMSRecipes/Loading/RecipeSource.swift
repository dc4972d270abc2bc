import Foundation
import IMSArchive

/// Where a recipe comes from: a directory, or an archive that is unpacked safely.
public enum RecipeSource {
    /// Makes a private working copy of the recipe at `path` in `directory` (which must not exist) and
    /// returns it. Archives are extracted with `IMSArchive`'s safe extractor; directories are copied,
    /// so rendering and rewriting never touch the original.
    public static func workingCopy(
        of path: String, in directory: String, limits: ExtractionLimits = .default
    ) throws(RecipeError) -> (directory: String, report: ExtractionReport?) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw RecipeError(.notFound, file: path, "no such file or directory")
        }
        if isDirectory.boolValue {
            do {
                try FileManager.default.createDirectory(
                    atPath: (directory as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try FileManager.default.copyItem(atPath: path, toPath: directory)
            } catch {
                throw RecipeError(.io, file: path, "cannot copy the recipe directory: \(error.localizedDescription)")
            }
            return (directory, nil)
        }
        do {
            try FileManager.default.createDirectory(
                atPath: (directory as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let report = try ArchiveExtractor(limits: limits).extract(archive: path, to: directory)
            return (directory, report)
        } catch let error as ArchiveError {
            throw RecipeError(.io, file: path, error.description)
        } catch {
            throw RecipeError(.io, file: path, "\(error)")
        }
    }
}

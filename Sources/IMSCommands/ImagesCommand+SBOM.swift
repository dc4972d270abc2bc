import ArgumentParser
import Foundation
import IMSCatalog
import IMSEngine
import IMSStore

extension ImagesCommand {
    /// Reads an image's SBOM artifact (type `application/spdx+json` in its manifest) from the store.
    static func sbomData(_ imageID: UUID, options: CatalogOptions, context: CommandContext) async throws -> Data {
        let image = try options.openCatalog(context).image(imageID, scope: .any)
        guard let link = image.link else {
            throw CLIError.failed("image.sbom.missing", "image \(imageID.imsString) has no manifest link, so no SBOM")
        }
        let store = try options.openStore(context)
        let (manifest, _) = try await ImageArtifacts(store: store).readManifest(url: link.path)
        guard let artifact = manifest.artifacts.first(where: { $0.type == ImageArtifactType.sbom.mediaType }) else {
            throw CLIError.failed(
                "image.sbom.missing",
                "image \(imageID.imsString)'s manifest lists no SBOM (\(ImageArtifactType.sbom.mediaType)): it was built before ims recorded SBOMs, or by another tool")
        }
        let key = try store.requireKey(for: artifact.link.path)
        return try await store.read(key, limit: 256 << 20)
    }

    static func sbom(_ imageID: UUID, options: CatalogOptions, context: CommandContext) async throws -> ImageSBOM {
        let data = try await sbomData(imageID, options: options, context: context)
        do { return try ImageSBOM.parse(data) } catch {
            throw CLIError.failed("image.sbom.invalid", "the SBOM of image \(imageID.imsString): \(error.message)")
        }
    }

    static func packageRows(_ packages: [ImageSBOM.Package]) -> [[String]] {
        packages.map { [$0.name, $0.version, $0.arch ?? "-", $0.supplier ?? "-", $0.license ?? "-", $0.repository ?? "-"] }
    }

    struct SBOM: IMSCommand {
        static let configuration = CommandConfiguration(
            commandName: "sbom",
            abstract: "Print an image's SBOM: the SPDX 2.3 document, or its packages as a table.",
            discussion: """
                Every image ims builds or customizes carries an SPDX 2.3 JSON document listing its packages (name, \
                epoch, version, release, arch, vendor, license, the repository each came from and the package file's \
                digest), stored next to the rootfs and listed in its manifest as type application/spdx+json.

                Examples:
                    ims images sbom <image-id>                      # the SPDX document
                    ims images sbom <image-id> --format table       # NAME VERSION ARCH SUPPLIER LICENSE REPOSITORY
                    ims images sbom <image-id> --format table --json  # the packages as JSON
                """)

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Argument(help: ArgumentHelp("The image id.", valueName: "id")) var id: String
        @Option(help: "spdx-json (default: the document as stored) or table.", transform: choiceOption([("spdx-json", "spdx-json"), ("table", "table")]))
        var format: String = "spdx-json"

        func run(_ context: CommandContext) async throws {
            let imageID = try RecordsCLI.uuid(id, kind: "image")
            try await RecordsCLI.run(json: json, context: context) {
                if format == "spdx-json" {
                    var data = try await ImagesCommand.sbomData(imageID, options: options, context: context)
                    if data.last != 0x0A { data.append(0x0A) }
                    context.write(data)
                    return
                }
                let sbom = try await ImagesCommand.sbom(imageID, options: options, context: context)
                if json {
                    try context.json(sbom.packages)
                    return
                }
                context.line(RecordsCLI.table(["NAME", "VERSION", "ARCH", "SUPPLIER", "LICENSE", "REPOSITORY"], ImagesCommand.packageRows(sbom.packages)))
                context.line("\(sbom.packages.count) package(s)")
            }
        }
    }

    struct Diff: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the packages added, removed and changed from one image to another (from their SBOMs).",
            discussion: """
                Example:
                    ims images diff <old-image-id> <new-image-id>
                    ims images diff <old-image-id> <new-image-id> --json   # {added, removed, changed, unchanged}
                Exit status 0 whether or not the images differ; 1 when an image or its SBOM cannot be read.
                """)

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Argument(help: ArgumentHelp("The image to compare from.", valueName: "id1")) var from: String
        @Argument(help: ArgumentHelp("The image to compare to.", valueName: "id2")) var to: String

        func run(_ context: CommandContext) async throws {
            let fromID = try RecordsCLI.uuid(from, kind: "image")
            let toID = try RecordsCLI.uuid(to, kind: "image")
            try await RecordsCLI.run(json: json, context: context) {
                let old = try await ImagesCommand.sbom(fromID, options: options, context: context)
                let new = try await ImagesCommand.sbom(toID, options: options, context: context)
                let difference = old.difference(to: new)
                if json {
                    try context.json(difference)
                    return
                }
                for package in difference.added { context.line("+ \(package.name) \(package.version)\(package.arch.map { " \($0)" } ?? "")") }
                for package in difference.removed { context.line("- \(package.name) \(package.version)\(package.arch.map { " \($0)" } ?? "")") }
                for change in difference.changed { context.line("~ \(change.name)\(change.arch.map { " \($0)" } ?? ""): \(change.from) -> \(change.to)") }
                context.line("\(difference.added.count) added, \(difference.removed.count) removed, \(difference.changed.count) changed, \(difference.unchanged) unchanged")
            }
        }
    }
}

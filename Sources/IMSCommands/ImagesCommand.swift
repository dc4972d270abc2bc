import ArgumentParser
import Foundation
import IMSCatalog
import IMSEngine
import IMSStore

/// `ims images …`: image records (IMS `/images`).
struct ImagesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "images",
        abstract: "Register, list, inspect, change and delete image records.",
        discussion: """
            An image record names an image and links to its manifest.json, which lists the rootfs, kernel, \
            initrd and boot parameters in the artifact store. Setting a link validates the manifest as IMS does.
            """,
        subcommands: [Create.self, List.self, Describe.self, Update.self, Delete.self, Undelete.self, SBOM.self, Diff.self, SeedBenchmark.self]
    )

    static func describe(_ image: ImageRecord, _ context: CommandContext) {
        var fields: [(String, String)] = [
            ("id", image.id.imsString), ("name", image.name), ("created", IMSTimestamp.string(image.created)),
            ("arch", image.arch.rawValue),
            ("link", image.link.map { "\($0.path) (type \($0.type.rawValue), etag \($0.etag.isEmpty ? "-" : $0.etag))" } ?? "-"),
            ("metadata", image.metadata.isEmpty ? "-" : image.metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")),
        ]
        if let deleted = image.deleted { fields.append(("deleted", IMSTimestamp.string(deleted))) }
        RecordsCLI.printFields(fields, context)
    }

    /// Validates a manifest link through the store (IMS §6.3), printing ETag warnings.
    static func validatedLink(_ url: String, context: CommandContext, store: any ArtifactStore) async throws -> ArtifactLink {
        let (link, warnings) = try await RecordLinks.imageLink(url, store: store)
        for warning in warnings { context.warning(warning) }
        return link
    }
}

extension ImagesCommand {
    struct Create: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register an image record (IMS POST /images).",
            discussion: """
                --link names an existing manifest.json in the store; it is validated first (version 1.0, every \
                artifact present, exactly one rootfs).

                Example:
                    ims images create --name compute --link file:///var/lib/ims/store/boot-images/<id>/manifest.json
                """)

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Option(help: "The image's name.") var name: String
        @Option(help: ArgumentHelp("The URL of the image's manifest.json in the store.", valueName: "url")) var link: String?
        @Option(help: "The architecture.", transform: enumerationOption(Arch.self)) var arch: Arch = .x86_64
        @Option(help: ArgumentHelp("A metadata entry KEY=VALUE (repeatable).", valueName: "key=value")) var metadata: [String] = []

        func validate() throws {
            if name.isEmpty { throw ValidationError("'--name' must not be empty") }
            _ = try RecordsCLI.pairs(metadata, option: "--metadata")
        }

        func run(_ context: CommandContext) async throws {
            try await RecordsCLI.run(json: options.json, context: context) {
                let catalog = try options.openCatalog(context)
                var record = ImageRecord(name: name, arch: arch)
                for (key, value) in try RecordsCLI.pairs(metadata, option: "--metadata") { record.metadata[key] = value }
                if let link { record.link = try await ImagesCommand.validatedLink(link, context: context, store: try options.openStore(context)) }
                let created = try catalog.createImage(record)
                if options.json { RecordsCLI.printJSON(created, context) } else { context.line("created image \(created.id.imsString) (\(created.name))") }
            }
        }
    }

    struct List: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "List image records, oldest first.",
            discussion: "With --deleted, list soft-deleted images instead.")

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Flag(help: "List soft-deleted images.") var deleted = false

        func run(_ context: CommandContext) async throws {
            try await RecordsCLI.run(json: options.json, context: context) {
                let catalog = try options.openCatalog(context)
                if options.json {
                    // Straight from SQLite to stdout: the same bytes as encoding the records, several times faster.
                    try catalog.writeImagesJSON(deleted: deleted) { chunk in context.write(Data(buffer: chunk)) }
                    return
                }
                let images = try catalog.images(deleted: deleted)
                let rows = images.map { image in
                    [image.id.imsString, image.name, image.arch.rawValue, RecordsCLI.date(deleted ? image.deleted : image.created),
                     image.metadata.isEmpty ? "-" : image.metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","),
                     image.link?.path ?? "-"]
                }
                context.write(Data(RecordsCLI.table(["ID", "NAME", "ARCH", deleted ? "DELETED" : "CREATED", "METADATA", "LINK"], rows).utf8))
            }
        }
    }

    struct Describe: IMSCommand {
        static let configuration = CommandConfiguration(abstract: "Show one image record (live or soft-deleted).")

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Argument(help: ArgumentHelp("The image id.", valueName: "id")) var id: String

        func run(_ context: CommandContext) async throws {
            let imageID = try RecordsCLI.uuid(id, kind: "image")
            try await RecordsCLI.run(json: options.json, context: context) {
                let image = try options.openCatalog(context).image(imageID, scope: .any)
                if options.json { RecordsCLI.printJSON(image, context) } else { ImagesCommand.describe(image, context) }
            }
        }
    }

    struct Update: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change an image record (IMS PATCH: link, arch, metadata).",
            discussion: """
                --link validates the manifest through the store and sets it; the link the image already has is \
                accepted again (no-op), a different one is a conflict (exit 1, code catalog.conflict), and a \
                manifest another image links to is refused. --metadata-set upserts, --metadata-remove removes \
                (a missing key is fine); sets apply before removes. All changes apply together or not at all.

                Example:
                    ims images update <id> --metadata-set tag=prod --metadata-remove old
                """)

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Argument(help: ArgumentHelp("The image id.", valueName: "id")) var id: String
        @Option(help: ArgumentHelp("The URL of the image's manifest.json in the store.", valueName: "url")) var link: String?
        @Option(help: "The architecture.", transform: enumerationOption(Arch.self)) var arch: Arch?
        @Option(help: "A new name.") var name: String?
        @Option(help: ArgumentHelp("Set a metadata entry KEY=VALUE (repeatable).", valueName: "key=value")) var metadataSet: [String] = []
        @Option(help: ArgumentHelp("Remove a metadata key (repeatable).", valueName: "key")) var metadataRemove: [String] = []

        func validate() throws {
            _ = try RecordsCLI.pairs(metadataSet, option: "--metadata-set")
            if metadataRemove.contains(where: \.isEmpty) { throw ValidationError("'--metadata-remove' takes a non-empty key") }
        }

        func run(_ context: CommandContext) async throws {
            let imageID = try RecordsCLI.uuid(id, kind: "image")
            try await RecordsCLI.run(json: options.json, context: context) {
                let catalog = try options.openCatalog(context)
                var update = ImageUpdate(arch: arch, name: name)
                update.metadata = try RecordsCLI.pairs(metadataSet, option: "--metadata-set").map { MetadataChange.set($0.0, $0.1) }
                    + metadataRemove.map(MetadataChange.remove)
                if let link {
                    update.link = try await RecordLinks.forUpdate(link, current: try catalog.image(imageID).link) { url in
                        try await ImagesCommand.validatedLink(url, context: context, store: try options.openStore(context))
                    }
                }
                let updated = try catalog.updateImage(imageID, update)
                if options.json { RecordsCLI.printJSON(updated, context) } else { ImagesCommand.describe(updated, context) }
            }
        }
    }

    struct Delete: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Soft-delete an image (or delete it for good with --permanent).",
            discussion: """
                A soft delete keeps every field and moves the manifest and every artifact it lists under \
                deleted/, writing deleted/<id>/deleted_manifest.json; 'ims images undelete ID' restores them. \
                --permanent deletes every artifact, the manifest and the record.
                """)

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Argument(help: ArgumentHelp("The image id.", valueName: "id")) var id: String
        @Flag(help: "Delete the record and its artifacts for good.") var permanent = false

        func run(_ context: CommandContext) async throws {
            let imageID = try RecordsCLI.uuid(id, kind: "image")
            try await RecordsCLI.run(json: options.json, context: context) {
                let lifecycle = RecordLifecycle(catalog: try options.openCatalog(context), store: try options.openStore(context))
                if permanent {
                    let removal = try await lifecycle.deleteImagePermanently(imageID)
                    if let unstored = removal.unstoredLink {
                        context.warning("\(unstored) is not in the store \(lifecycle.store.url); only the record was deleted")
                    }
                    if options.json { RecordsCLI.printJSON(removal.record, context) } else { context.line("deleted image \(imageID.imsString) permanently") }
                    return
                }
                let deleted = try await lifecycle.softDeleteImage(imageID)
                if options.json {
                    RecordsCLI.printJSON(deleted, context)
                } else {
                    context.line("deleted image \(imageID.imsString) (restore it with 'ims images undelete \(imageID.imsString)')")
                }
            }
        }
    }

    struct Undelete: IMSCommand {
        static let configuration = CommandConfiguration(abstract: "Restore a soft-deleted image with every field and its artifacts.")

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Argument(help: ArgumentHelp("The image id.", valueName: "id")) var id: String

        func run(_ context: CommandContext) async throws {
            let imageID = try RecordsCLI.uuid(id, kind: "image")
            try await RecordsCLI.run(json: options.json, context: context) {
                let restored = try await RecordLifecycle(catalog: try options.openCatalog(context), store: try options.openStore(context)).undeleteImage(imageID)
                if options.json {
                    RecordsCLI.printJSON(restored, context)
                } else {
                    context.line("restored image \(imageID.imsString) (\(restored.name))")
                }
            }
        }
    }

    /// Hidden: fills a catalog with synthetic images for scripts/bench-catalog.
    struct SeedBenchmark: IMSCommand {
        static let configuration = CommandConfiguration(
            commandName: "seed-benchmark", abstract: "Add synthetic image records (benchmarking only).", shouldDisplay: false)

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Option(help: "How many images to add.") var count: Int = 100_000

        func validate() throws {
            if count < 1 { throw ValidationError("'--count' must be at least 1") }
        }

        func run(_ context: CommandContext) async throws {
            try await RecordsCLI.run(json: options.json, context: context) {
                let catalog = try options.openCatalog(context)
                let storeRoot = options.dataDirectory(context).storePath
                let start = IMSTimestamp.now().addingTimeInterval(-Double(count))
                var added = 0
                while added < count {
                    let batch = min(10_000, count - added)
                    let records = (0..<batch).map { offset -> ImageRecord in
                        let index = added + offset
                        let id = UUID()
                        var record = ImageRecord(
                            id: id, created: start.addingTimeInterval(Double(index)), name: "bench-image-\(index)",
                            link: ArtifactLink(
                                path: "file://\(storeRoot)/boot-images/\(id.imsString)/manifest.json",
                                etag: String(format: "%032x", index), type: .file),
                            arch: index % 5 == 0 ? .aarch64 : .x86_64)
                        if index % 4 == 0 { record.metadata = ["tag": "bench", "index": String(index)] }
                        return record
                    }
                    try catalog.createImages(records)
                    added += batch
                }
                context.line("added \(added) images to \(options.dataDirectory(context).catalogPath)")
            }
        }
    }
}

import IMSArchive
import ArgumentParser
import Foundation
import IMSCatalog
import IMSEngine
import IMSKiwi
import IMSStore

extension RecipesCommand {
    /// The commands that work on recipe records (create, list, describe, update, delete, undelete).
    static let recordCommands: [any ParsableCommand.Type] = [
        RecordCreate.self, RecordList.self, RecordDescribe.self, RecordUpdate.self, RecordDelete.self, RecordUndelete.self,
    ]

    /// `ims recipes create`: register a recipe (IMS `POST /recipes`), storing its archive.
    struct RecordCreate: IMSCommand {
        static let configuration = CommandConfiguration(
            commandName: "create",
            abstract: "Register a recipe, storing its archive in the artifact store.",
            discussion: """
                With --file, the archive is stored at recipes/<id>/recipe.tar.gz in the 'ims' bucket and becomes \
                the recipe's link; if storing fails, no record is created. With --link, the object must already \
                exist in the store. Prints the new record.

                Examples:
                    ims recipes create --name compute --file compute.tar.gz --linux-distribution sles15
                    ims recipes create --name rocky --file rocky.tgz --linux-distribution rocky9 --arch aarch64 \\
                        --template-dictionary CSM_RELEASE=1.6 --require-dkms false --json
                """)

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Option(help: "The recipe's name.") var name: String
        @Option(help: ArgumentHelp("A recipe archive to store (a file).", valueName: "path")) var file: String?
        @Option(help: ArgumentHelp("An existing object in the store to link instead.", valueName: "url")) var link: String?
        @Option(help: ArgumentHelp("The distribution the recipe builds.", valueName: "distro"), transform: enumerationOption(LinuxDistribution.self))
        var linuxDistribution: LinuxDistribution
        @Option(help: "The architecture (x86_64 or aarch64).", transform: enumerationOption(Arch.self)) var arch: Arch = .x86_64
        @Option(help: ArgumentHelp("A template variable KEY=VALUE (repeatable, in order).", valueName: "key=value"))
        var templateDictionary: [String] = []
        @Option(help: ArgumentHelp("Whether builds need DKMS (true or false).", valueName: "bool")) var requireDkms: String = "true"
        @Option(help: "kiwi-ng or packer.", transform: enumerationOption(RecipeType.self)) var recipeType: RecipeType = .kiwiNG

        func validate() throws {
            if file != nil && link != nil { throw ValidationError("give either '--file' or '--link', not both") }
            if name.isEmpty { throw ValidationError("'--name' must not be empty") }
            _ = try RecordsCLI.bool(requireDkms)
            _ = try RecordsCLI.pairs(templateDictionary, option: "--template-dictionary")
        }

        func run(_ context: CommandContext) async throws {
            try await RecordsCLI.run(json: options.json, context: context) {
                let catalog = try options.openCatalog(context)
                let store = try options.openStore(context)
                var record = RecipeRecord(
                    name: name, recipeType: recipeType, linuxDistribution: linuxDistribution,
                    templateDictionary: try RecordsCLI.pairs(templateDictionary, option: "--template-dictionary").map { TemplateVariable(key: $0.0, value: $0.1) },
                    requireDKMS: try RecordsCLI.bool(requireDkms), arch: arch)
                var storedKey: ObjectKey?
                if let file {
                    var isDirectory: ObjCBool = false
                    guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) else {
                        throw CLIError.input("\(file): no such file")
                    }
                    var archive = file
                    var scratch: String?
                    if isDirectory.boolValue {
                        do {
                            _ = try KiwiLoader.locateDescription(in: file)
                        } catch {
                            throw CLIError.input("\(file) is a directory without a KIWI description (config.xml, image/config.xml or *.kiwi); give a recipe directory or archive")
                        }
                        // A recipe directory is packed reproducibly first (sorted, normalised owners and times).
                        let directory = NSTemporaryDirectory() + "ims-pack-" + UUID().uuidString.lowercased()
                        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                        scratch = directory
                        archive = directory + "/recipe.tar.gz"
                        do {
                            _ = try ArchivePacker.pack(directory: file, to: archive)
                        } catch {
                            try? FileManager.default.removeItem(atPath: directory)
                            throw CLIError.input("\(file): \(error)")
                        }
                    }
                    defer { if let scratch { try? FileManager.default.removeItem(atPath: scratch) } }
                    let object = try await RecipeArtifacts(store: store).store(recipeID: record.id, archive: archive)
                    storedKey = object.key
                    record.link = try ArtifactLink(url: object.url, etag: object.etag)
                } else if let link {
                    record.link = try await RecordsCLI.storedLink(link, store: store)
                }
                let created: RecipeRecord
                do {
                    created = try catalog.createRecipe(record)
                } catch {
                    if let storedKey { try? await store.delete(storedKey) }  // nothing half-registered
                    throw error
                }
                if options.json {
                    RecordsCLI.printJSON(created, context)
                } else {
                    context.line("created recipe \(created.id.imsString) (\(created.name))")
                    if let link = created.link { context.line("link: \(link.path)") }
                }
            }
        }
    }

    /// `ims recipes list`.
    struct RecordList: IMSCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "List recipe records, oldest first.",
            discussion: "With --deleted, list soft-deleted recipes instead (restore one with 'ims recipes undelete ID').")

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Flag(help: "List soft-deleted recipes.") var deleted = false

        func run(_ context: CommandContext) async throws {
            try await RecordsCLI.run(json: options.json, context: context) {
                let recipes = try options.openCatalog(context).recipes(deleted: deleted)
                if options.json {
                    RecordsCLI.printJSON(recipes, context)
                    return
                }
                let rows = recipes.map { recipe in
                    [recipe.id.imsString, recipe.name, recipe.linuxDistribution.rawValue, recipe.arch.rawValue, recipe.recipeType.rawValue,
                     RecordsCLI.date(deleted ? recipe.deleted : recipe.created), recipe.link?.path ?? "-"]
                }
                context.write(Data(RecordsCLI.table(["ID", "NAME", "DISTRO", "ARCH", "TYPE", deleted ? "DELETED" : "CREATED", "LINK"], rows).utf8))
            }
        }
    }

    /// `ims recipes describe ID`.
    struct RecordDescribe: IMSCommand {
        static let configuration = CommandConfiguration(commandName: "describe", abstract: "Show one recipe record (live or soft-deleted).")

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Argument(help: ArgumentHelp("The recipe id.", valueName: "id")) var id: String

        func run(_ context: CommandContext) async throws {
            let recipeID = try RecordsCLI.uuid(id, kind: "recipe")
            try await RecordsCLI.run(json: options.json, context: context) {
                let recipe = try options.openCatalog(context).recipe(recipeID, scope: .any)
                if options.json {
                    RecordsCLI.printJSON(recipe, context)
                } else {
                    RecipesCommand.describe(recipe, context)
                }
            }
        }
    }

    static func describe(_ recipe: RecipeRecord, _ context: CommandContext) {
        var fields: [(String, String)] = [
            ("id", recipe.id.imsString), ("name", recipe.name), ("created", IMSTimestamp.string(recipe.created)),
            ("recipe_type", recipe.recipeType.rawValue), ("linux_distribution", "\(recipe.linuxDistribution.rawValue) (\(recipe.linuxDistribution.family.rawValue) family)"),
            ("arch", recipe.arch.rawValue), ("require_dkms", String(recipe.requireDKMS)),
            ("link", recipe.link.map { "\($0.path) (type \($0.type.rawValue), etag \($0.etag.isEmpty ? "-" : $0.etag))" } ?? "-"),
            ("template_dictionary", recipe.templateDictionary.isEmpty ? "-" : recipe.templateDictionary.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")),
        ]
        if let deleted = recipe.deleted { fields.append(("deleted", IMSTimestamp.string(deleted))) }
        RecordsCLI.printFields(fields, context)
    }

    /// `ims recipes update ID` (IMS recipe PATCH).
    struct RecordUpdate: IMSCommand {
        static let configuration = CommandConfiguration(
            commandName: "update", abstract: "Change a recipe record (IMS PATCH).",
            discussion: """
                --link sets the recipe's link: the object must exist in the store and no other recipe may use it; \
                setting the link the recipe already has does nothing, and a different link when one is set is a \
                conflict (exit 1, code catalog.conflict). --template-dictionary replaces the whole list \
                (--clear-template-dictionary empties it). All changes apply together or not at all.
                """)

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Argument(help: ArgumentHelp("The recipe id.", valueName: "id")) var id: String
        @Option(help: "A new name.") var name: String?
        @Option(help: ArgumentHelp("The URL of the recipe archive in the store.", valueName: "url")) var link: String?
        @Option(help: ArgumentHelp("A template variable KEY=VALUE (repeatable); replaces the list.", valueName: "key=value"))
        var templateDictionary: [String] = []
        @Flag(help: "Replace the template dictionary with an empty one.") var clearTemplateDictionary = false
        @Option(help: "The architecture.", transform: enumerationOption(Arch.self)) var arch: Arch?
        @Option(help: ArgumentHelp("true or false.", valueName: "bool")) var requireDkms: String?
        @Option(help: ArgumentHelp("The distribution.", valueName: "distro"), transform: enumerationOption(LinuxDistribution.self))
        var linuxDistribution: LinuxDistribution?

        func validate() throws {
            if clearTemplateDictionary && !templateDictionary.isEmpty {
                throw ValidationError("give either '--template-dictionary' or '--clear-template-dictionary', not both")
            }
            if let requireDkms { _ = try RecordsCLI.bool(requireDkms) }
            _ = try RecordsCLI.pairs(templateDictionary, option: "--template-dictionary")
        }

        func run(_ context: CommandContext) async throws {
            let recipeID = try RecordsCLI.uuid(id, kind: "recipe")
            try await RecordsCLI.run(json: options.json, context: context) {
                let catalog = try options.openCatalog(context)
                var update = RecipeUpdate(arch: arch, requireDKMS: try requireDkms.map(RecordsCLI.bool), name: name, linuxDistribution: linuxDistribution)
                if clearTemplateDictionary { update.templateDictionary = [] }
                if !templateDictionary.isEmpty {
                    update.templateDictionary = try RecordsCLI.pairs(templateDictionary, option: "--template-dictionary").map { TemplateVariable(key: $0.0, value: $0.1) }
                }
                if let link {
                    update.link = try await RecordLinks.forUpdate(link, current: try catalog.recipe(recipeID).link) { url in
                        try await RecordsCLI.storedLink(url, store: try options.openStore(context))
                    }
                }
                let updated = try catalog.updateRecipe(recipeID, update)
                if options.json { RecordsCLI.printJSON(updated, context) } else { RecipesCommand.describe(updated, context) }
            }
        }
    }

    /// `ims recipes delete ID`.
    struct RecordDelete: IMSCommand {
        static let configuration = CommandConfiguration(
            commandName: "delete", abstract: "Soft-delete a recipe (or delete it for good with --permanent).",
            discussion: """
                A soft delete keeps every field of the record and moves its archive under deleted/ in the store; \
                'ims recipes undelete ID' restores both. --permanent removes the archive and the record, live or \
                soft-deleted.
                """)

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Argument(help: ArgumentHelp("The recipe id.", valueName: "id")) var id: String
        @Flag(help: "Delete the record and its archive for good.") var permanent = false

        func run(_ context: CommandContext) async throws {
            let recipeID = try RecordsCLI.uuid(id, kind: "recipe")
            try await RecordsCLI.run(json: options.json, context: context) {
                let lifecycle = RecordLifecycle(catalog: try options.openCatalog(context), store: try options.openStore(context))
                if permanent {
                    let removal = try await lifecycle.deleteRecipePermanently(recipeID)
                    if let unstored = removal.unstoredLink {
                        context.warning("\(unstored) is not in the store \(lifecycle.store.url); only the record was deleted")
                    }
                    if options.json { RecordsCLI.printJSON(removal.record, context) } else { context.line("deleted recipe \(recipeID.imsString) permanently") }
                    return
                }
                let deleted = try await lifecycle.softDeleteRecipe(recipeID)
                if options.json {
                    RecordsCLI.printJSON(deleted, context)
                } else {
                    context.line("deleted recipe \(recipeID.imsString) (restore it with 'ims recipes undelete \(recipeID.imsString)')")
                }
            }
        }
    }

    /// `ims recipes undelete ID`.
    struct RecordUndelete: IMSCommand {
        static let configuration = CommandConfiguration(
            commandName: "undelete", abstract: "Restore a soft-deleted recipe with every field and its archive.")

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Argument(help: ArgumentHelp("The recipe id.", valueName: "id")) var id: String

        func run(_ context: CommandContext) async throws {
            let recipeID = try RecordsCLI.uuid(id, kind: "recipe")
            try await RecordsCLI.run(json: options.json, context: context) {
                let restored = try await RecordLifecycle(catalog: try options.openCatalog(context), store: try options.openStore(context)).undeleteRecipe(recipeID)
                if options.json {
                    RecordsCLI.printJSON(restored, context)
                } else {
                    context.line("restored recipe \(recipeID.imsString) (\(restored.name))")
                }
            }
        }
    }
}

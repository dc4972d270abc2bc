import ArgumentParser
import Foundation
import IMSCatalog

/// `ims public-keys …`: SSH public keys jobs install for access (IMS `/public-keys`).
struct PublicKeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "public-keys",
        abstract: "Register, list, inspect and delete SSH public keys for jobs.",
        subcommands: [Create.self, List.self, Describe.self, Delete.self, Undelete.self]
    )

    static func describe(_ key: PublicKeyRecord, _ context: CommandContext) {
        var fields: [(String, String)] = [
            ("id", key.id.imsString), ("name", key.name), ("created", IMSTimestamp.string(key.created)), ("public_key", key.publicKey),
        ]
        if let deleted = key.deleted { fields.append(("deleted", IMSTimestamp.string(deleted))) }
        RecordsCLI.printFields(fields, context)
    }
}

extension PublicKeysCommand {
    struct Create: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a public key from an authorized_keys line.",
            discussion: """
                The file holds one authorized_keys line: optional options, a key type (ssh-rsa, ssh-ed25519, \
                ecdsa-sha2-nistp256/384/521, sk-…@openssh.com), the base64 key, an optional comment.

                Example:
                    ims public-keys create --name admin --public-key ~/.ssh/id_ed25519.pub
                """)

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Option(help: "The key's name.") var name: String
        @Option(help: ArgumentHelp("A file holding the authorized_keys line ('-' for stdin).", valueName: "file")) var publicKey: String

        func validate() throws {
            if name.isEmpty { throw ValidationError("'--name' must not be empty") }
        }

        func run(_ context: CommandContext) async throws {
            try await RecordsCLI.run(json: options.json, context: context) {
                let data: Data
                if publicKey == "-" {
                    data = context.stdin.readDataToEndOfFile()
                } else {
                    guard let contents = FileManager.default.contents(atPath: publicKey) else {
                        throw CLIError.input("\(publicKey): cannot read the file")
                    }
                    data = contents
                }
                guard data.count <= 64 * 1024, let text = String(data: data, encoding: .utf8) else {
                    throw CLIError.input("\(publicKey): not a public key file (expected one authorized_keys line)")
                }
                let line: String
                do {
                    line = try PublicKeyRecord.validateAuthorizedKey(text)
                } catch {
                    throw CLIError.input("\(publicKey): \(error)")
                }
                let created = try options.openCatalog(context).createPublicKey(PublicKeyRecord(name: name, publicKey: line))
                if options.json { RecordsCLI.printJSON(created, context) } else { context.line("created public key \(created.id.imsString) (\(created.name))") }
            }
        }
    }

    struct List: IMSCommand {
        static let configuration = CommandConfiguration(abstract: "List public keys, oldest first.")

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Flag(help: "List soft-deleted keys.") var deleted = false

        func run(_ context: CommandContext) async throws {
            try await RecordsCLI.run(json: options.json, context: context) {
                let keys = try options.openCatalog(context).publicKeys(deleted: deleted)
                if options.json {
                    RecordsCLI.printJSON(keys, context)
                    return
                }
                let rows = keys.map { key -> [String] in
                    let fields = key.publicKey.split(separator: " ")
                    let summary = fields.count > 2 ? "\(fields[0]) …\(fields[1].suffix(8)) \(fields[2...].joined(separator: " "))" : String(key.publicKey.prefix(40))
                    return [key.id.imsString, key.name, RecordsCLI.date(deleted ? key.deleted : key.created), summary]
                }
                context.write(Data(RecordsCLI.table(["ID", "NAME", deleted ? "DELETED" : "CREATED", "KEY"], rows).utf8))
            }
        }
    }

    struct Describe: IMSCommand {
        static let configuration = CommandConfiguration(abstract: "Show one public key (live or soft-deleted).")

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Argument(help: ArgumentHelp("The public key id.", valueName: "id")) var id: String

        func run(_ context: CommandContext) async throws {
            let keyID = try RecordsCLI.uuid(id, kind: "public key")
            try await RecordsCLI.run(json: options.json, context: context) {
                let key = try options.openCatalog(context).publicKey(keyID, scope: .any)
                if options.json { RecordsCLI.printJSON(key, context) } else { PublicKeysCommand.describe(key, context) }
            }
        }
    }

    struct Delete: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Soft-delete a public key (or delete it for good with --permanent).")

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Argument(help: ArgumentHelp("The public key id.", valueName: "id")) var id: String
        @Flag(help: "Delete the record for good.") var permanent = false

        func run(_ context: CommandContext) async throws {
            let keyID = try RecordsCLI.uuid(id, kind: "public key")
            try await RecordsCLI.run(json: options.json, context: context) {
                let catalog = try options.openCatalog(context)
                let key = permanent ? try catalog.deletePublicKeyPermanently(keyID) : try catalog.softDeletePublicKey(keyID)
                if options.json {
                    RecordsCLI.printJSON(key, context)
                } else {
                    context.line(permanent ? "deleted public key \(keyID.imsString) permanently" : "deleted public key \(keyID.imsString) (restore it with 'ims public-keys undelete \(keyID.imsString)')")
                }
            }
        }
    }

    struct Undelete: IMSCommand {
        static let configuration = CommandConfiguration(abstract: "Restore a soft-deleted public key.")

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Argument(help: ArgumentHelp("The public key id.", valueName: "id")) var id: String

        func run(_ context: CommandContext) async throws {
            let keyID = try RecordsCLI.uuid(id, kind: "public key")
            try await RecordsCLI.run(json: options.json, context: context) {
                let key = try options.openCatalog(context).undeletePublicKey(keyID)
                if options.json { RecordsCLI.printJSON(key, context) } else { context.line("restored public key \(keyID.imsString) (\(key.name))") }
            }
        }
    }
}

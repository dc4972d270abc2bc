import ArgumentParser
import Foundation
import IMSEngine
import IMSPluginHost
import IMSProtocol
import IMSStore

/// `ims store …`: operate on artifacts by URL, in the local store or in S3 (through the store plugin).
struct StoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "List, upload, download, delete and presign artifacts by URL.",
        discussion: """
            URLs are s3://BUCKET/KEY (S3, through the org.ims.store.s3 plugin) or file:///ROOT/BUCKET/KEY (the local \
            store rooted at ROOT). S3 settings come from the site settings' `s3:` section (<config-dir>/ims.yaml) and \
            the options below; credentials only ever from a file.

            Examples:
                ims store ls s3://boot-images/ --endpoint http://127.0.0.1:8333 --credentials s3.json
                ims store put rootfs.sqsh s3://boot-images/test/rootfs --json
                ims store presign s3://boot-images/test/rootfs --expires 600
            """,
        subcommands: [List.self, Put.self, Get.self, Remove.self, Presign.self]
    )

    struct Options: ParsableArguments {
        @Option(name: .customLong("config-dir"), help: ArgumentHelp("The site configuration directory (default: $IMS_CONFIG_DIR, else /etc/ims).", valueName: "dir"))
        var configDir: String?
        @Option(help: ArgumentHelp("The S3 endpoint, e.g. https://rgw.local.", valueName: "url")) var endpoint: String?
        @Option(help: "The S3 signing region.") var region: String?
        @Option(help: ArgumentHelp("A JSON file {\"access_key\", \"secret_key\"}.", valueName: "file")) var credentials: String?
        @Option(help: ArgumentHelp("A CA bundle (PEM) for the endpoint's TLS.", valueName: "file")) var caBundle: String?
        @Option(help: "path (default) or virtual addressing.", transform: choiceOption([("path", "path"), ("virtual", "virtual")])) var addressingStyle: String?
        @Option(name: .customLong("plugin-path"), help: ArgumentHelp("Search this plugin directory first (repeatable).", valueName: "dir")) var pluginPaths: [String] = []
        @Flag(help: "Print JSON.") var json = false

        func open(_ url: String, context: CommandContext) throws -> (any ArtifactStore, ObjectKey?) {
            let directory = EngineOptions.siteDirectory(configDir: configDir, environment: context.environment)
            var settings: SiteSettings
            do { settings = try SiteSettings.load(file: directory + "/ims.yaml", optional: true) } catch {
                throw CLIErrors.report(error, json: json, exit: CLIExitCode.dataError, context: context)
            }
            var s3 = settings.s3 ?? S3Settings()
            if let endpoint { s3.endpointURL = endpoint }
            if let region { s3.region = region }
            if let credentials { s3.credentialsFile = credentials }
            if let caBundle { s3.caBundle = caBundle }
            if let addressingStyle { s3.addressingStyle = addressingStyle }
            settings.s3 = s3
            let plugins = PluginCatalog(searchPath: PluginSearchPath.standard(
                explicit: pluginPaths + (settings.pluginPath ?? []), environment: context.environment, executablePath: context.executablePath))
            if url.hasPrefix("s3://") {
                let bucket = url.dropFirst(5).split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
                do {
                    let store = try PluginArtifactStore(url: "s3://" + bucket, settings: s3, plugins: plugins)
                    return (store, store.key(for: url))
                } catch {
                    throw CLIErrors.report(error, json: json, exit: CLIExitCode.unavailable, context: context)
                }
            }
            guard url.hasPrefix("file://") else { throw ValidationError("'\(url)' is not an s3:// or file:// URL") }
            // file:///ROOT/BUCKET/KEY: find the store root by walking up to a directory holding the known buckets.
            let path = String(url.dropFirst("file://".count))
            var root = (path as NSString).deletingLastPathComponent
            while root != "/" && !root.isEmpty {
                let name = (root as NSString).lastPathComponent
                if name == ObjectKey.imagesBucket || name == ObjectKey.recipesBucket { root = (root as NSString).deletingLastPathComponent; break }
                root = (root as NSString).deletingLastPathComponent
            }
            do {
                let store = try LocalArtifactStore(root: root)
                return (store, store.key(for: url))
            } catch {
                throw CLIErrors.report(error, json: json, exit: CLIExitCode.unavailable, context: context)
            }
        }
    }


    static func objectJSON(_ object: StoredObject) -> JSONValue {
        .object([
            "url": .string(object.url), "key": .string(object.key.key), "bucket": .string(object.key.bucket),
            "size": .number(Double(object.size)), "md5": .string(object.md5), "sha256": .string(object.sha256),
            "etag": .string(object.etag), "metadata": .object(object.metadata.mapValues(JSONValue.string)),
        ])
    }

    static func requireKey(_ key: ObjectKey?, _ url: String) throws -> ObjectKey {
        guard let key else { throw ValidationError("'\(url)' does not name an object (s3://BUCKET/KEY)") }
        return key
    }
}

extension StoreCommand {
    struct List: IMSCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the objects under a URL prefix.")
        @OptionGroup var options: Options
        var json: Bool { options.json }
        @Argument(help: "s3://BUCKET[/PREFIX]") var url: String

        func run(_ context: CommandContext) async throws {
            let (store, _) = try options.open(url, context: context)
            let rest = url.hasPrefix("s3://") ? String(url.dropFirst(5)) : ""
            let parts = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            let bucketName = parts.first.map(String.init) ?? ""
            let logical = (store as? PluginArtifactStore).map { s3 -> String in
                bucketName == s3.bucketName(ObjectKey.recipesBucket) ? ObjectKey.recipesBucket : (bucketName == s3.bucketName(ObjectKey.imagesBucket) ? ObjectKey.imagesBucket : bucketName)
            } ?? bucketName
            let prefix = parts.count > 1 ? String(parts[1]) : ""
            try await RecordsCLI.run(json: options.json, context: context) {
                let objects = try await store.list(bucket: logical, prefix: prefix)
                if options.json {
                    try context.json(JSONValue.array(objects.map(StoreCommand.objectJSON)))
                } else {
                    for object in objects { context.line("\(String(object.size).padding(toLength: 12, withPad: " ", startingAt: 0)) \(object.etag.padding(toLength: 36, withPad: " ", startingAt: 0)) \(object.url)") }
                    context.line("\(objects.count) object(s)")
                }
            }
        }
    }

    struct Put: IMSCommand {
        static let configuration = CommandConfiguration(abstract: "Upload a file (multipart when large); prints its etag, md5 and sha256.")
        @OptionGroup var options: Options
        var json: Bool { options.json }
        @Argument(help: "The file.") var file: String
        @Argument(help: "s3://BUCKET/KEY") var url: String

        func run(_ context: CommandContext) async throws {
            let (store, key) = try options.open(url, context: context)
            let objectKey = try StoreCommand.requireKey(key, url)
            guard FileManager.default.fileExists(atPath: file) else {
                throw CLIError.input("\(file): no such file")
            }
            try await RecordsCLI.run(json: options.json, context: context) {
                let object = try await store.put(file: file, key: objectKey)
                if options.json { try context.json(StoreCommand.objectJSON(object)) } else { context.line("stored \(object.url) (\(object.size) bytes, etag \(object.etag), md5 \(object.md5))") }
            }
        }
    }

    struct Get: IMSCommand {
        static let configuration = CommandConfiguration(abstract: "Download an object into a file, verifying its md5.")
        @OptionGroup var options: Options
        var json: Bool { options.json }
        @Argument(help: "s3://BUCKET/KEY") var url: String
        @Argument(help: "The file to write.") var file: String

        func run(_ context: CommandContext) async throws {
            let (store, key) = try options.open(url, context: context)
            let objectKey = try StoreCommand.requireKey(key, url)
            try await RecordsCLI.run(json: options.json, context: context) {
                let absolute = context.absolutePath(file)
                let object = try await store.get(objectKey, to: absolute)
                if options.json { try context.json(StoreCommand.objectJSON(object)) } else { context.line("wrote \(file) (\(object.size) bytes, md5 \(object.md5))") }
            }
        }
    }

    struct Remove: IMSCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Delete an object (a missing one is not an error).")
        @OptionGroup var options: Options
        var json: Bool { options.json }
        @Argument(help: "s3://BUCKET/KEY") var url: String

        func run(_ context: CommandContext) async throws {
            let (store, key) = try options.open(url, context: context)
            let objectKey = try StoreCommand.requireKey(key, url)
            try await RecordsCLI.run(json: options.json, context: context) {
                try await store.delete(objectKey)
                if options.json { try context.json(JSONValue.object(["deleted": .string(url)])) } else { context.line("deleted \(url)") }
            }
        }
    }

    struct Presign: IMSCommand {
        static let configuration = CommandConfiguration(abstract: "Print a presigned GET URL for an S3 object.")
        @OptionGroup var options: Options
        var json: Bool { options.json }
        @Argument(help: "s3://BUCKET/KEY") var url: String
        @Option(help: "Lifetime in seconds.") var expires: Int = 3600

        func run(_ context: CommandContext) async throws {
            let (store, key) = try options.open(url, context: context)
            let objectKey = try StoreCommand.requireKey(key, url)
            guard let s3 = store as? PluginArtifactStore else { throw ValidationError("presign needs an s3:// URL") }
            try await RecordsCLI.run(json: options.json, context: context) {
                let presigned = try await s3.presign(objectKey, expiresSeconds: expires)
                if options.json { try context.json(JSONValue.object(["url": .string(presigned), "expires_seconds": .number(Double(expires))])) } else { context.line(presigned) }
            }
        }
    }
}

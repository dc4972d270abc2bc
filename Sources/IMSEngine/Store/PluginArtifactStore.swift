import Crypto
import Foundation
#if canImport(Glibc)
    import Glibc
#endif
import IMSPluginHost
import IMSProtocol
import IMSStore

/// S3 settings (`s3:` in the site settings), used with `store: s3://BUCKET`.
///
///     store: s3://boot-images
///     s3:
///       endpoint_url: https://rgw.local
///       region: us-east-1
///       addressing_style: path
///       ca_bundle: /etc/ims/site-ca.pem
///       credentials_file: /etc/ims/s3-credentials.json   # {"access_key": …, "secret_key": …}
///       images_bucket: boot-images
///       recipes_bucket: ims
///       part_size_bytes: 67108864
///       multipart_threshold_bytes: 67108864   # default: images go in one server-verified request up to 5 GiB
///       max_concurrency: 4
///       max_attempts: 5
public struct S3Settings: Sendable, Hashable, Codable {
    public var endpointURL: String?
    public var region: String?
    public var addressingStyle: String?
    public var caBundle: String?
    public var credentialsFile: String?
    public var imagesBucket: String?
    public var recipesBucket: String?
    public var partSizeBytes: Int?
    /// Objects of this size or more go multipart. Unset, uploads with the host's digests go in one request
    /// (up to 5 GiB) that the server verifies whole; see docs/s3.md.
    public var multipartThresholdBytes: Int?
    public var maxConcurrency: Int?
    public var maxAttempts: Int?
    /// The store plugin to use (default `org.ims.store.s3`).
    public var plugin: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case region, plugin
        case endpointURL = "endpoint_url"
        case addressingStyle = "addressing_style"
        case caBundle = "ca_bundle"
        case credentialsFile = "credentials_file"
        case imagesBucket = "images_bucket"
        case recipesBucket = "recipes_bucket"
        case partSizeBytes = "part_size_bytes"
        case multipartThresholdBytes = "multipart_threshold_bytes"
        case maxConcurrency = "max_concurrency"
        case maxAttempts = "max_attempts"
    }

    public init() {}

    /// The setting names of the `s3:` section.
    public static let settingNames: [String] = CodingKeys.allCases.map(\.rawValue).sorted()
}

/// An `ArtifactStore` whose operations are carried out by a store plugin (`store/v1`), one call per operation.
///
/// Credentials are read from `credentials_file` and handed to the plugin only as its declared secret
/// `s3-credentials`, a 0600 file for that one call: never in argv, the environment or logs.
public struct PluginArtifactStore: ArtifactStore {
    public let plugin: ResolvedPlugin
    public let settings: S3Settings
    private let credentials: Data
    private let scratch: String
    public let url: String
    public var linkType: String { "s3" }

    /// - Parameter url: `s3://BUCKET` (the images bucket, unless `images_bucket` says otherwise).
    public init(url: String, settings: S3Settings, plugins: PluginCatalog) throws(StoreError) {
        guard let file = settings.credentialsFile, let data = FileManager.default.contents(atPath: file) else {
            throw StoreError.unsupportedStore(url: url, reason: "set s3.credentials_file (a JSON file with access_key and secret_key) in the site settings, or --s3-credentials")
        }
        do {
            plugin = try plugins.resolve(settings.plugin ?? "org.ims.store.s3")
        } catch {
            throw StoreError.unsupportedStore(url: url, reason: error.description)
        }
        var effective = settings
        let bucket = url.dropFirst("s3://".count).split(separator: "/").first.map(String.init)
        if effective.imagesBucket == nil, let bucket, !bucket.isEmpty { effective.imagesBucket = bucket }
        self.settings = effective
        self.credentials = data
        self.url = url
        scratch = NSTemporaryDirectory() + "ims-s3-" + UUID().uuidString.lowercased().prefix(8)
    }

    // MARK: Keys and URLs

    /// The real bucket name for one of ims's logical buckets.
    public func bucketName(_ logical: String) -> String {
        switch logical {
        case ObjectKey.imagesBucket: settings.imagesBucket ?? logical
        case ObjectKey.recipesBucket: settings.recipesBucket ?? logical
        default: logical
        }
    }

    public func url(for key: ObjectKey) -> String { "s3://\(bucketName(key.bucket))/\(key.key)" }

    public func key(for url: String) -> ObjectKey? {
        guard url.hasPrefix("s3://") else { return nil }
        let rest = url.dropFirst("s3://".count)
        guard let slash = rest.firstIndex(of: "/") else { return nil }
        var bucket = String(rest[..<slash])
        let key = String(rest[rest.index(after: slash)...])
        if bucket == bucketName(ObjectKey.imagesBucket) { bucket = ObjectKey.imagesBucket }
        if bucket == bucketName(ObjectKey.recipesBucket) { bucket = ObjectKey.recipesBucket }
        return try? ObjectKey(bucket: bucket, key: key)
    }

    // MARK: Operations

    public func put(_ source: ArtifactSource, key: ObjectKey, metadata: [String: String]) async throws(StoreError) -> StoredObject {
        let file: String
        var temporary: String?
        switch source {
        case .file(let path):
            file = path
        case .bytes(let data):
            let path = try makeScratch() + "/upload-" + UUID().uuidString.prefix(8)
            guard FileManager.default.createFile(atPath: path, contents: data) else {
                throw StoreError.io(operation: "write", path: path, message: "cannot stage the upload")
            }
            file = path
            temporary = path
        case .stream(let stream):
            let path = try makeScratch() + "/upload-" + UUID().uuidString.prefix(8)
            FileManager.default.createFile(atPath: path, contents: nil)
            guard let handle = FileHandle(forWritingAtPath: path) else {
                throw StoreError.io(operation: "write", path: path, message: "cannot stage the upload")
            }
            do {
                for try await chunk in stream { try handle.write(contentsOf: chunk) }
                try handle.close()
            } catch {
                try? handle.close()
                try? FileManager.default.removeItem(atPath: path)
                throw StoreError.sourceFailed(key: key.description, message: "\(error)")
            }
            file = path
            temporary = path
        }
        defer { if let temporary { try? FileManager.default.removeItem(atPath: temporary) } }
        // The server (in one request, by default) or the plugin (multipart) proves the bytes sent are the bytes these
        // digests describe; neither computes the md5 again. Digests the caller already has (the packager's) are not recomputed here either.
        var fullMetadata = metadata
        if fullMetadata["md5sum"] == nil || fullMetadata["sha256sum"] == nil {
            let digests = try ArtifactDigests.ofFile(file)
            if let given = fullMetadata["md5sum"], given.lowercased() != digests.md5 {
                throw StoreError.checksumMismatch(url: url(for: key), expected: "md5 " + given, actual: "md5 " + digests.md5)
            }
            fullMetadata["md5sum"] = digests.md5
            fullMetadata["sha256sum"] = digests.sha256
        }
        let sha256 = fullMetadata["sha256sum"]?.lowercased() ?? ""
        let input = ArtifactRef(path: file, kind: .file, digest: "sha256:" + sha256)
        let result = try await call("put", url: url(for: key), inputs: ["file": input], extra: [
            "metadata": .object(fullMetadata.mapValues(JSONValue.string)),
        ])
        return object(key, facts: result.facts, metadata: fullMetadata)
    }

    public func get(_ key: ObjectKey, to path: String) async throws(StoreError) -> StoredObject {
        let result = try await call("get", url: url(for: key), inputs: [:], extra: [:])
        guard let downloaded = result.outputs["file"] else {
            throw StoreError.io(operation: "get", path: url(for: key), message: "the store plugin returned no file")
        }
        do {
            try? FileManager.default.removeItem(atPath: path)
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try FileManager.default.moveItem(atPath: downloaded.path, toPath: path)
        } catch {
            throw StoreError.io(operation: "move", path: path, message: error.localizedDescription)
        }
        var stored = object(key, facts: result.facts, metadata: result.facts["metadata"]?.objectValue?.compactMapValues(\.stringValue) ?? [:])
        if stored.md5.isEmpty, let md5 = Self.md5(of: path) { stored.md5 = md5 }
        return stored
    }

    public func read(_ key: ObjectKey, limit: Int64) async throws(StoreError) -> Data {
        if let head = try await head(key), head.size > limit {
            throw StoreError.tooLarge(url: url(for: key), size: head.size, limit: limit)
        }
        let path = try makeScratch() + "/read-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try await get(key, to: path)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StoreError.io(operation: "read", path: path, message: "cannot read the download")
        }
        return data
    }

    public func head(_ key: ObjectKey) async throws(StoreError) -> StoredObject? {
        do {
            let result = try await call("head", url: url(for: key), inputs: [:], extra: [:])
            let metadata = result.facts["metadata"]?.objectValue?.compactMapValues(\.stringValue) ?? [:]
            return object(key, facts: result.facts, metadata: metadata)
        } catch {
            if case .notFound = error { return nil }
            throw error
        }
    }

    public func delete(_ key: ObjectKey) async throws(StoreError) {
        _ = try await call("delete", url: url(for: key), inputs: [:], extra: [:])
    }

    public func copy(_ source: ObjectKey, to destination: ObjectKey) async throws(StoreError) -> StoredObject {
        let result = try await call("copy", url: url(for: source), inputs: [:], extra: ["destination_url": .string(url(for: destination))])
        return object(destination, facts: result.facts, metadata: [:])
    }

    public func move(_ source: ObjectKey, to destination: ObjectKey) async throws(StoreError) -> StoredObject {
        // store/v1's operations have no `move`: a copy that deletes its source after verifying the copy.
        let result = try await call("copy", url: url(for: source), inputs: [:], extra: ["destination_url": .string(url(for: destination)), "delete_source": true])
        return object(destination, facts: result.facts, metadata: [:])
    }

    public func list(bucket: String, prefix: String) async throws(StoreError) -> [StoredObject] {
        let result = try await call("list", url: "s3://\(bucketName(bucket))/\(prefix)", inputs: [:], extra: [:])
        var objects = result.facts["objects"]?.arrayValue ?? []
        if result.facts["complete_in_facts"]?.boolValue == false, let listing = result.outputs["listing"],
            let data = FileManager.default.contents(atPath: listing.path), let full = try? JSONDecoder().decode(JSONValue.self, from: data)
        {
            objects = full["objects"]?.arrayValue ?? full.arrayValue ?? objects
        }
        return objects.compactMap { entry -> StoredObject? in
            guard let name = entry["key"]?.stringValue, let key = try? ObjectKey(bucket: bucket, key: name) else { return nil }
            let etag = entry["etag"]?.stringValue ?? ""
            return StoredObject(
                key: key, url: url(for: key), size: Int64(entry["size"]?.numberValue ?? 0),
                md5: etag.contains("-") ? "" : etag, sha256: "", etag: etag)
        }
    }

    /// A presigned GET URL.
    public func presign(_ key: ObjectKey, expiresSeconds: Int) async throws(StoreError) -> String {
        let result = try await call("presign", url: url(for: key), inputs: [:], extra: ["expires_seconds": .number(Double(expiresSeconds))])
        guard let presigned = result.facts["url"]?.stringValue else {
            throw StoreError.io(operation: "presign", path: url(for: key), message: "no URL returned")
        }
        return presigned
    }

    // MARK: Plugin calls

    private func call(_ operation: String, url objectURL: String, inputs: [String: ArtifactRef], extra: [String: JSONValue]) async throws(StoreError) -> PhaseResult {
        var config: [String: JSONValue] = ["operation": .string(operation), "url": .string(objectURL)]
        if let value = settings.endpointURL { config["endpoint_url"] = .string(value) }
        if let value = settings.region { config["region"] = .string(value) }
        if let value = settings.addressingStyle { config["addressing_style"] = .string(value) }
        if let value = settings.caBundle { config["ca_bundle"] = .string(value) }
        if let value = settings.partSizeBytes { config["part_size_bytes"] = .number(Double(value)) }
        if let value = settings.multipartThresholdBytes { config["multipart_threshold_bytes"] = .number(Double(value)) }
        if let value = settings.maxConcurrency { config["max_concurrency"] = .number(Double(value)) }
        if let value = settings.maxAttempts { config["max_attempts"] = .number(Double(value)) }
        for (name, value) in extra { config[name] = value }
        let workspace = try makeScratch() + "/call-" + UUID().uuidString.lowercased().prefix(8)
        defer { try? FileManager.default.removeItem(atPath: workspace) }
        // Inputs must be inside the call's workspace: hard-link them in (copy across file systems).
        var staged: [String: ArtifactRef] = [:]
        for (name, input) in inputs {
            let directory = workspace + "/phases/store/in"
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let inside = directory + "/" + name
            if Glibc.link(input.path, inside) != 0 {
                do { try FileManager.default.copyItem(atPath: input.path, toPath: inside) } catch {
                    throw StoreError.io(operation: "stage", path: input.path, message: error.localizedDescription)
                }
            }
            staged[name] = ArtifactRef(path: inside, kind: input.kind)
        }
        let request = InvocationRequest(
            phase: "store", config: .object(config), inputs: staged, workspaceRoot: workspace, step: "store",
            secrets: ["s3-credentials": credentials])
        let outcome: InvocationOutcome
        do {
            outcome = try await PluginInvoker.invoke(plugin, request)
        } catch {
            throw StoreError.unsupportedStore(url: objectURL, reason: error.description)
        }
        switch outcome.status {
        case .succeeded(var result):
            // The call's workspace is removed: move the files the caller needs out of it first.
            for (name, artifact) in result.outputs where artifact.kind == .file {
                let kept = try makeScratch() + "/out-" + UUID().uuidString.prefix(8) + "-" + (artifact.path as NSString).lastPathComponent
                guard (try? FileManager.default.moveItem(atPath: artifact.path, toPath: kept)) != nil else { continue }
                result.outputs[name]?.path = kept
            }
            return result
        case .described:
            throw StoreError.io(operation: operation, path: objectURL, message: "the store plugin answered with describe")
        case .failed(let error):
            if error.code == "store.not_found" { throw StoreError.notFound(url: objectURL) }
            if error.code == "store.checksum_mismatch" {
                throw StoreError.checksumMismatch(
                    url: objectURL, expected: error.details?["expected"]?.stringValue ?? "?", actual: error.details?["actual"]?.stringValue ?? "?")
            }
            throw StoreError.io(operation: operation, path: objectURL, message: "\(error.message) [\(error.code), \(error.category.rawValue)]")
        }
    }

    private func object(_ key: ObjectKey, facts: [String: JSONValue], metadata: [String: String]) -> StoredObject {
        let etag = facts["etag"]?.stringValue ?? ""
        let md5 = facts["md5"]?.stringValue ?? metadata["md5sum"] ?? (etag.contains("-") ? "" : etag)
        return StoredObject(
            key: key, url: url(for: key), size: Int64(facts["size"]?.numberValue ?? 0), md5: md5,
            sha256: facts["sha256"]?.stringValue ?? "", etag: etag, metadata: metadata)
    }

    private func makeScratch() throws(StoreError) -> String {
        do {
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        } catch {
            throw StoreError.io(operation: "create", path: scratch, message: error.localizedDescription)
        }
        return scratch
    }

    /// Streaming md5 of a file, hex.
    static func md5(of path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        var hasher = Insecure.MD5()
        while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}

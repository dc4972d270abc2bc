import CIMSSystem
import Crypto
import Dispatch
import Foundation
import IMSProtocol

#if canImport(Glibc)
    import Glibc
#endif

/// A plugin written in Swift. Conform a `@main` type and implement `run`.
///
///     @main struct Greeter: PhasePlugin {
///         static let identity = PluginIdentity(id: "org.example.greeter", version: "1.0.0")
///         static let phases = [PluginDescription.Phase(name: "hello", payloads: ["custom/v1"])]
///         static func run(_ context: PluginContext) async throws -> PhaseResult {
///             context.log(.info, "hello")
///             return PhaseResult()
///         }
///     }
public protocol PhasePlugin {
    /// The plugin's id and version; must match plugin.json.
    static var identity: PluginIdentity { get }
    /// The phases and payloads; must match plugin.json.
    static var phases: [PluginDescription.Phase] { get }
    /// Wire protocol majors the plugin speaks.
    static var protocolVersions: [Int] { get }
    /// Features the plugin uses when the host offers them.
    static var features: [String] { get }
    /// Runs one phase. Throw `PluginFailure` for a structured error.
    static func run(_ context: PluginContext) async throws -> PhaseResult
    /// Undoes what `run` left behind. Must be idempotent and succeed when there is nothing to do.
    static func cleanup(_ context: PluginContext) async throws -> PhaseResult
}

extension PhasePlugin {
    public static var protocolVersions: [Int] { WireFormat.supportedVersions }
    public static var features: [String] {
        [WireFormat.Feature.cancelMessage, WireFormat.Feature.cleanup, WireFormat.Feature.progress]
    }
    public static func cleanup(_ context: PluginContext) async throws -> PhaseResult { PhaseResult() }

    /// The entry point: speaks the protocol and calls `run` or `cleanup`.
    public static func main() async {
        let code = await PluginRuntime.run(Self.self, arguments: CommandLine.arguments)
        exit(code)
    }
}

/// Helpers for plugin authors.
public enum PluginFiles {
    /// `sha256:<hex>` of a file's content, streamed.
    public static func sha256Digest(ofFile path: String) throws -> (digest: String, size: Int64) {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw PluginFailure(code: "x.sdk.unreadable", category: .internal, message: "cannot read \(path)")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        var size: Int64 = 0
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
            size += Int64(chunk.count)
        }
        return ("sha256:" + hasher.finalize().map { String(format: "%02x", $0) }.joined(), size)
    }

    /// A file artifact with its digest and size filled in.
    public static func fileArtifact(_ path: String, mediaType: String? = nil) throws -> ArtifactRef {
        let (digest, size) = try sha256Digest(ofFile: path)
        return ArtifactRef(path: path, kind: .file, mediaType: mediaType, digest: digest, size: size)
    }
}

enum PluginRuntime {
    static func usage(_ name: String) -> Int32 {
        let text = """
            \(name) is an ims plugin; it speaks JSON over stdin/stdout and is started by the ims host.
            usage: \(name) describe|run|cleanup   (with IMS_PLUGIN=1 set by the host)
            Try: ims plugins run <plugin-dir> --phase <name> --request <file>

            """
        FileHandle.standardError.write(Data(text.utf8))
        return PluginExitCode.usage
    }

    static func run<P: PhasePlugin>(_ plugin: P.Type, arguments: [String]) async -> Int32 {
        let name = (arguments.first as NSString?)?.lastPathComponent ?? "plugin"
        guard ProcessInfo.processInfo.environment["IMS_PLUGIN"] != nil, arguments.count == 2,
            let verb = PluginVerb(rawValue: arguments[1])
        else {
            return usage(name)
        }
        let channel = ProtocolChannel()
        if verb == .describe {
            let description = PluginDescription(
                plugin: P.identity, protocol: .init(versions: P.protocolVersions, features: P.features), phases: P.phases)
            return channel.send(.describe(description)) ? PluginExitCode.success : PluginExitCode.failure
        }

        let reader = StdinLineReader()
        guard let line = reader.nextLine() else {
            channel.send(.error(ErrorInfo(code: HostErrorCode.badRequest, category: .protocol, message: "no request on stdin")))
            return PluginExitCode.protocolError
        }
        let request: PluginRequest
        switch decodeRequest(line, supported: P.protocolVersions) {
        case .failure(let failure):
            channel.send(.error(failure.info))
            return PluginExitCode.protocolError
        case .success(let decoded):
            request = decoded
        }
        let offered = Set(request.protocol.features)
        channel.send(.hello(Hello(plugin: P.identity, protocolVersion: request.protocol.version, features: P.features.filter(offered.contains))))

        let context = PluginContext(request: request, channel: channel)
        let work = Task {
            try await (verb == .cleanup ? P.cleanup(context) : P.run(context))
        }
        watchForCancellation(reader: reader, context: context, work: work)

        do {
            let result = try await work.value
            channel.send(.result(result))
            return PluginExitCode.success
        } catch let failure as PluginFailure {
            channel.send(.error(failure.info))
        } catch is CancellationError {
            channel.send(.error(PluginFailure.cancelled("the host asked the plugin to stop").info))
        } catch {
            channel.send(.error(ErrorInfo(code: "x.sdk.unexpected", category: .internal, message: "\(error)")))
        }
        return PluginExitCode.failure
    }

    /// Listens for a `cancel` line or EOF on stdin, and for SIGTERM.
    static func watchForCancellation(reader: StdinLineReader, context: PluginContext, work: Task<PhaseResult, any Error>) {
        let decoder = JSONDecoder()
        let thread = Thread {
            while let line = reader.nextLine() {
                if let envelope = try? decoder.decode(HostEnvelope.self, from: Data(line)), case .cancel(let cancel) = envelope.message {
                    context.markCancelled(cancel.reason)
                    work.cancel()
                    return
                }
            }
            context.markCancelled("the host closed stdin")
            work.cancel()
        }
        thread.start()
        signal(SIGTERM, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        source.setEventHandler {
            context.markCancelled("SIGTERM")
            work.cancel()
        }
        source.resume()
        terminationSource = source
    }

    nonisolated(unsafe) static var terminationSource: (any DispatchSourceSignal)?

    static func decodeRequest(_ line: [UInt8], supported: [Int]) -> Result<PluginRequest, PluginFailure> {
        let data = Data(line)
        guard let raw = try? JSONDecoder().decode(JSONValue.self, from: data), raw.objectValue != nil else {
            return .failure(PluginFailure(code: HostErrorCode.badRequest, category: .protocol, message: "the request line is not a JSON object"))
        }
        if let requested = raw["data"]?["protocol"]?["version"]?.numberValue, !supported.contains(Int(requested)) {
            return .failure(PluginFailure(
                code: HostErrorCode.unsupportedVersion, category: .protocol,
                message: "this plugin speaks protocol \(supported.map(String.init).joined(separator: ", ")); the host asked for \(Int(requested))",
                details: ["supported": .array(supported.map { .number(Double($0)) }), "requested": .number(requested)]))
        }
        do {
            let envelope = try JSONDecoder().decode(HostEnvelope.self, from: data)
            guard case .request(let request) = envelope.message else {
                return .failure(PluginFailure(code: HostErrorCode.badRequest, category: .protocol, message: "the first line must be a request"))
            }
            return .success(request)
        } catch {
            return .failure(PluginFailure(code: HostErrorCode.badRequest, category: .protocol, message: "the request is incomplete or malformed: \(error)"))
        }
    }
}

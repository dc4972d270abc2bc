import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import IMSCatalog
import IMSEngine
import IMSStore
import Logging
import NIOCore
import NIOSSL

/// `ims serve`: IMS's REST API on Hummingbird 2, over an engine environment (catalog, store, settings) and the
/// detached job runner, the same ones the command line uses.
public struct IMSServer: Sendable {
    public var configuration: ServerConfiguration
    public var environment: EngineEnvironment
    public var runner: DetachedJobRunner
    public var logger: Logger

    /// - Parameters:
    ///   - environment: the catalog, store and site settings; `jobsDirectory` holds job workspaces and runner logs.
    ///   - runner: how jobs are started (`ims jobs run` with the same data directory, site directory and plugins).
    public init(configuration: ServerConfiguration, environment: EngineEnvironment, runner: DetachedJobRunner, logger: Logger) {
        self.configuration = configuration
        self.environment = environment
        self.runner = runner
        self.logger = logger
    }

    /// How often the job executor reaps finished runners and starts waiting jobs.
    static let executorInterval: Duration = .milliseconds(250)

    /// Runs until SIGTERM or SIGINT: then it stops accepting connections, finishes requests in flight and returns;
    /// job runners are separate processes and keep running.
    ///
    /// - Parameter onListening: called once the socket is bound, with the URL scheme (`http` or `https`), the address
    ///   and the actual port (for port 0).
    public func run(onListening: @escaping @Sendable (_ scheme: String, _ host: String, _ port: Int) async -> Void = { _, _, _ in }) async throws {
        try configuration.check()
        // Everything that can refuse to start does so before the socket is bound.
        var tokens: TokenVerifier?
        if let auth = configuration.auth {
            let verifier = TokenVerifier(settings: auth, caCertificate: configuration.caCertificate, logger: logger)
            try await verifier.load()
            tokens = verifier
        }
        let server = try Self.httpServer(tls: configuration.tls)
        let executorSettings = environment.settings.executor ?? ExecutorSettings()
        do {
            try executorSettings.check(source: "ims.yaml", store: environment.store.url)
        } catch {
            throw ServerError.executor(executorSettings.effectiveKind.rawValue, reason: "\(error)")
        }
        let registry = RemoteBuildNodes(path: DataDirectory(path: runner.dataDirectory).remoteBuildNodesPath)
        let (remote, plan) = try remoteExecutor(executorSettings, registry: registry)
        let executor = JobExecutor(
            runner: runner, catalog: environment.catalog, jobsDirectory: environment.jobsDirectory,
            limit: environment.settings.maxConcurrentJobs ?? SiteSettings.defaultMaxConcurrentJobs, remote: remote, plan: plan, logger: logger)
        await executor.recover()
        let services = APIServices(
            catalog: environment.catalog, store: environment.store, jobs: executor,
            remoteBuildNodes: registry, nodeProbe: remote as? RemoteBuildNodeExecutor,
            jobsDirectory: environment.jobsDirectory, version: configuration.version, executorSettings: executorSettings, logger: logger)
        let responder = APIResponder(
            handler: APIHandler(services: services), maxBodySize: configuration.maxBodySize, tokens: tokens, logger: logger)
        let listen = configuration.listen
        let scheme = configuration.tls == nil ? "http" : "https"
        let application = Application(
            responder: responder,
            server: server,
            configuration: ApplicationConfiguration(address: .hostname(listen.host, port: listen.port), serverName: nil),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? listen.port
                let shown = listen.host.contains(":") ? "[\(listen.host)]" : listen.host
                await executor.setServerURL("\(scheme)://\(shown):\(port)")
                await onListening(scheme, listen.host, port)
            },
            logger: logger)
        let ticker = Task {
            while !Task.isCancelled {
                await executor.tick()
                try? await Task.sleep(for: Self.executorInterval)
            }
        }
        defer { ticker.cancel() }
        try await application.runService()
    }

    /// The executor of the site's choice (none for `local`) and what its runners are given.
    func remoteExecutor(_ settings: ExecutorSettings, registry: RemoteBuildNodes) throws(ServerError) -> ((any RemoteExecutor)?, RemoteRunnerPlan?) {
        let kind = settings.effectiveKind
        guard kind != .local else { return (nil, nil) }
        let plan = try RemoteRunnerPlan.make(settings: environment.settings, store: environment.store.url, executable: runner.executable)
        switch kind {
        case .local:
            return (nil, nil)
        case .slurm:
            let minutes = Int((plan.jobTimeoutSeconds / 60).rounded(.up))
            let slurm = SlurmExecutor(
                settings: settings.slurm ?? ExecutorSettings.Slurm(), outputDirectory: environment.jobsDirectory,
                defaultTimeLimitMinutes: max(1, minutes), logger: logger)
            return (slurm, plan)
        case .remoteBuildNodes:
            let nodes = RemoteBuildNodeExecutor(
                settings: settings.remoteBuildNodes ?? ExecutorSettings.RemoteBuildNodes(), registry: registry,
                catalog: environment.catalog, runnerCommand: plan.runnerCommand, logger: logger)
            return (nodes, plan)
        }
    }

    /// HTTP/1.1, or HTTPS with the site's certificate chain and key (TLS 1.2 or later).
    static func httpServer(tls: ServerSettings.TLS?) throws(ServerError) -> HTTPServerBuilder {
        guard let tls else { return .http1() }
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(tls.certificate)
        } catch {
            throw .tls(tls.certificate, reason: "not a PEM certificate (\(error))")
        }
        guard !chain.isEmpty else { throw .tls(tls.certificate, reason: "no certificate in the file") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: tls.key, format: .pem)
        } catch {
            throw .tls(tls.key, reason: "not a PEM private key (\(error))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        do {
            // Building the context checks that the key belongs to the certificate.
            _ = try NIOSSLContext(configuration: configuration)
            return try .tls(.http1(), tlsConfiguration: configuration)
        } catch {
            throw .tls(tls.key, reason: "cannot be used with \(tls.certificate) (\(error))")
        }
    }
}

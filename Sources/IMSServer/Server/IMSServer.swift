import Foundation
import Hummingbird
import IMSCatalog
import IMSEngine
import Logging
import NIOCore

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
    /// - Parameter onListening: called once the socket is bound, with the address and the actual port (for port 0).
    public func run(onListening: @escaping @Sendable (String, Int) async -> Void = { _, _ in }) async throws {
        try configuration.check()
        let executor = JobExecutor(
            runner: runner, catalog: environment.catalog, jobsDirectory: environment.jobsDirectory,
            limit: environment.settings.maxConcurrentJobs ?? SiteSettings.defaultMaxConcurrentJobs, logger: logger)
        await executor.recover()
        let services = APIServices(
            catalog: environment.catalog, store: environment.store, jobs: executor,
            remoteBuildNodes: RemoteBuildNodes(path: runner.dataDirectory + "/remote-build-nodes.json"),
            jobsDirectory: environment.jobsDirectory, version: configuration.version, logger: logger)
        let responder = APIResponder(handler: APIHandler(services: services), maxBodySize: configuration.maxBodySize, logger: logger)
        let listen = configuration.listen
        let application = Application(
            responder: responder,
            configuration: ApplicationConfiguration(address: .hostname(listen.host, port: listen.port), serverName: nil),
            onServerRunning: { channel in
                await onListening(listen.host, channel.localAddress?.port ?? listen.port)
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
}

import ArgumentParser
import Foundation
import IMSCatalog
import IMSEngine
import IMSServer
import Logging

/// `ims serve`: IMS's REST API over this machine's catalog, store and engine.
struct ServeCommand: IMSCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve IMS's REST API (for cray ims, CFS, SAT and automation).",
        discussion: """
            Serves /v3, /v2 and the unversioned v2 paths, /version and /healthz, at the root and under /apis/ims \
            (the API gateway's prefix that cray uses), from the same catalog, store and site settings as the \
            command line. Jobs created through the API run as their own 'ims jobs run' processes, at most \
            max_concurrent_jobs (ims.yaml) at once; they keep running when the server stops. With \
            'executor: {kind: slurm}' or 'executor: {kind: remote-build-nodes}' in ims.yaml they run on other hosts \
            instead, as 'ims jobs run-remote' reporting through the API (docs/scale-out.md).

            Authentication and TLS come from the site settings (ims.yaml, see docs/api.md):
                server:
                  auth: {jwks: https://keycloak/realms/shasta/protocol/openid-connect/certs, \
            issuer: https://keycloak/realms/shasta, audience: [shasta]}
                  tls: {certificate: /etc/ims/tls/server.crt, key: /etc/ims/tls/server.key}
            With server.auth, every request but /healthz/* and /openapi.yaml needs 'Authorization: Bearer <JWT>' \
            (RS256/ES256), checked for signature, expiry, issuer and audience; anything else is a 401. Without \
            it the server listens on loopback only: a non-loopback --listen is refused unless --insecure-no-auth \
            is given. SIGTERM or SIGINT stop it gracefully. Access logs go to stderr.

            Examples:
                ims serve
                ims serve --listen 0.0.0.0:9100 --data-dir /var/lib/ims --config-dir /etc/ims
                cray config set core hostname=http://127.0.0.1:9100 && cray init --no-auth
            """)

    @OptionGroup var engine: EngineOptions
    var json: Bool { engine.json }

    @Option(help: ArgumentHelp("The address and port to listen on (port 0: any free port).", valueName: "addr:port"))
    var listen: String = ListenAddress.default.description

    @Flag(help: "Allow a non-loopback --listen without authentication (the site's network must control access).")
    var insecureNoAuth = false

    @Option(help: ArgumentHelp("The largest request body accepted, in bytes (larger: 413).", valueName: "bytes"))
    var maxBodySize: Int = ServerConfiguration.defaultMaxBodySize

    func validate() throws {
        if maxBodySize < 1 { throw ValidationError("'--max-body-size' must be at least 1") }
    }

    func run(_ context: CommandContext) async throws {
        let address = try ListenAddress(parsing: listen)
        // Held (shared) while the server runs, so `ims catalog restore` cannot replace the catalog under it.
        let dataDirectory = engine.catalog.dataDirectory(context)
        try dataDirectory.create()
        guard let lock = try DataDirectoryLock.acquire(dataDirectory, mode: .shared) else {
            throw CLIError(
                code: "ims.busy", message: "a catalog restore is replacing \(dataDirectory.catalogPath); start the server when it has finished",
                exitCode: CLIExitCode.unavailable)
        }
        defer { withExtendedLifetime(lock) {} }
        let environment = try engine.environment(context)
        let settings = environment.settings
        let configuration = ServerConfiguration(
            listen: address, insecureNoAuth: insecureNoAuth, auth: settings.server?.auth, tls: settings.server?.tls,
            caCertificate: settings.caCert, maxBodySize: maxBodySize, version: IMSRootCommand.configuration.version)
        try configuration.check()
        var logger = Logger(label: "ims.serve")
        if context.environment["IMS_LOG_LEVEL"] == nil { logger.logLevel = .info }
        let server = IMSServer(configuration: configuration, environment: environment, runner: engine.detachedRunner(context), logger: logger)
        let stdout = context.stdout
        try await server.run { scheme, host, port in
            // One line automation can wait for (tests start the server on port 0 and read the port here).
            let shown = host.contains(":") ? "[\(host)]" : host
            stdout.write(Data("ims serve: listening on \(scheme)://\(shown):\(port)\n".utf8))
        }
    }
}

import ArgumentParser
import Foundation
import IMSCatalog
import IMSEngine
import IMSServer
import Logging

extension JobsCommand {
    /// `ims jobs run-remote ID --server URL --secrets-stdin`: the runner an executor starts on a build host.
    struct RunRemote: IMSCommand {
        static let configuration = CommandConfiguration(
            commandName: "run-remote",
            abstract: "Run a job for an ims server on this build host (started by the slurm and remote-build-nodes executors).",
            discussion: """
                Fetches the job from the server (GET /v3/jobs/ID/runner), runs its pipeline here with this host's \
                plugins against the server's store, reports status, events and sessions at least every heartbeat, \
                and delivers the result; the server registers the image after checking its manifest in the store.

                The secrets come on stdin (--secrets-stdin) or from a file only this user can read (--secrets-file), \
                never as arguments: {"token": "<the job's runner token>", "store": "s3://bucket", "s3": \
                {"endpoint_url", "region", "access_key", "secret_key"}}. --config-dir is this host's site directory \
                (its CA, DNS and plugin settings); the store in it is replaced by the server's.

                Exit status: 0 when the job succeeded and the server took the result, 1 when it failed, 3 when the \
                server stopped this runner (the job was cancelled, deleted or timed out), 69 when the server could \
                not be reached.
                """,
            shouldDisplay: false)

        @OptionGroup var engine: EngineOptions
        var json: Bool { engine.json }
        @Argument(help: "The job id.") var id: String
        @Option(help: ArgumentHelp("The server's URL as this host reaches it.", valueName: "url")) var server: String
        @Flag(help: "Read the secrets (JSON) from stdin.") var secretsStdin = false
        @Option(help: ArgumentHelp("Read the secrets (JSON) from this file (mode 0600 or stricter).", valueName: "file")) var secretsFile: String?
        @Option(help: ArgumentHelp("Where the runner works (default: $TMPDIR/ims-runner-ID).", valueName: "dir")) var workDir: String?
        @Flag(help: "Keep the work directory after a successful job.") var keepWorkDir = false

        func validate() throws {
            guard secretsStdin != (secretsFile != nil) else { throw ValidationError("give exactly one of --secrets-stdin and --secrets-file") }
            guard server.hasPrefix("http://") || server.hasPrefix("https://") else { throw ValidationError("'--server \(server)' is not an http:// or https:// URL") }
        }

        func run(_ context: CommandContext) async throws {
            let jobID = try JobsCommand.parseID(id)
            var logger = Logger(label: "ims.runner")
            logger[metadataKey: "job_id"] = .string(jobID.imsString)
            let secrets = try readSecrets(context)
            let site = try engine.siteSettings(context)
            let client = RunnerClient(serverURL: server, jobID: jobID, token: secrets.token, caCertificate: site.caCert)
            let bundle: RunnerBundle
            do {
                bundle = try await client.fetch()
            } catch {
                Output.write(Data("ims jobs run-remote: \(error.description)\n".utf8), to: context.stderr)
                if case .refused = error { throw CLIExitCode.refused }
                throw CLIExitCode.unavailable
            }
            // A scratch data directory of the runner's own: its catalog holds this job only.
            let work = workDir.map(context.absolutePath) ?? (NSTemporaryDirectory() + "ims-runner-" + jobID.imsString)
            try? FileManager.default.removeItem(atPath: work)
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            var overrides = SiteSettings()
            overrides.store = secrets.store
            if let access = secrets.s3 {
                var s3 = site.s3 ?? S3Settings()
                s3.endpointURL = access.endpointURL ?? s3.endpointURL
                s3.region = access.region ?? s3.region
                s3.addressingStyle = access.addressingStyle ?? s3.addressingStyle
                if access.accessKey != nil || access.secretKey != nil {
                    let credentials = work + "/s3-credentials.json"
                    try writePrivate(credentials, JSONSerialization.data(withJSONObject: ["access_key": access.accessKey ?? "", "secret_key": access.secretKey ?? ""]))
                    s3.credentialsFile = credentials
                }
                if let pem = access.caBundlePEM {
                    let bundlePath = work + "/s3-ca.pem"
                    try writePrivate(bundlePath, Data(pem.utf8))
                    s3.caBundle = bundlePath
                }
                overrides.s3 = s3
            }
            var options = engine
            options.catalog.dataDir = work + "/data"
            options.catalog.store = secrets.store
            var environment = try options.environment(context, overrides: overrides)
            // The work directory is scratch: a cache there would only cost copies. The node's own cache, when its
            // ims.yaml names one (cache.directory), outlives the job and serves the next one on this node.
            if site.cache?.directory == nil { environment.phaseCache = nil }
            try RemoteJobRunner.seed(environment.catalog, with: bundle)
            logger.info("running job for \(server)", metadata: ["work_dir": "\(work)"])
            let ending = await RemoteJobRunner(client: client, environment: environment, bundle: bundle, logger: logger).run()
            // The store's keys never outlive the run, even when a failed job's work directory is kept.
            try? FileManager.default.removeItem(atPath: work + "/s3-credentials.json")
            switch ending {
            case .delivered(let status):
                logger.info("result delivered", metadata: ["status": "\(status.rawValue)"])
                if status == .success, !keepWorkDir { try? FileManager.default.removeItem(atPath: work) }
                if status != .success { throw CLIExitCode.failure }
            case .stoppedByServer(let reason):
                Output.write(Data("ims jobs run-remote: the server stopped this runner: \(reason)\n".utf8), to: context.stderr)
                throw CLIExitCode.refused
            case .undelivered(let reason):
                Output.write(Data("ims jobs run-remote: the result could not be delivered: \(reason)\n".utf8), to: context.stderr)
                throw CLIExitCode.unavailable
            }
        }

        private func readSecrets(_ context: CommandContext) throws -> RunnerSecrets {
            let data: Data
            if let secretsFile {
                let path = context.absolutePath(secretsFile)
                let mode: Int
                do {
                    mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? 0o777
                } catch {
                    throw ValidationError("--secrets-file \(path): \(error.localizedDescription)")
                }
                guard mode & 0o077 == 0 else {
                    throw ValidationError("--secrets-file \(path) is readable by others (mode \(String(mode & 0o777, radix: 8))): make it 0600")
                }
                guard let contents = FileManager.default.contents(atPath: path) else { throw ValidationError("--secrets-file \(path) cannot be read") }
                data = contents
            } else {
                data = context.stdin.readDataToEndOfFile()
            }
            do {
                return try JSONDecoder().decode(RunnerSecrets.self, from: data)
            } catch {
                throw ValidationError("the runner's secrets are not valid JSON {\"token\", \"store\", \"s3\"}: \(error)")
            }
        }

        private func writePrivate(_ path: String, _ data: Data) throws {
            guard FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600]) else {
                throw ValidationError("cannot write \(path)")
            }
        }
    }
}

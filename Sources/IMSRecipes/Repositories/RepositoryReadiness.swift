import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// A repository to probe: where its metadata should answer.
public struct RepositoryProbe: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Codable { case rpmMD = "rpm-md", apt, other }

    public var alias: String?
    public var source: String
    public var kind: Kind
    /// For apt repositories: the distribution (suite), e.g. `bookworm`.
    public var distribution: String?

    public init(alias: String?, source: String, kind: Kind, distribution: String? = nil) {
        self.alias = alias
        self.source = source
        self.kind = kind
        self.distribution = distribution
    }

    /// Whether the repository is reached over http(s); others (dir://, obs://, …) are not probed.
    public var isHTTP: Bool {
        let lower = source.lowercased()
        return lower.hasPrefix("http://") || lower.hasPrefix("https://")
    }

    /// The metadata URLs that prove the repository is ready; any one answering is enough.
    public var metadataURLs: [String] {
        let base = source.hasSuffix("/") ? String(source.dropLast()) : source
        switch kind {
        case .rpmMD, .other:
            return [base + "/repodata/repomd.xml"]
        case .apt:
            let root = distribution.map { base + "/dists/" + $0 } ?? base
            return [root + "/InRelease", root + "/Release"]
        }
    }
}

/// The state of one repository after waiting.
public struct RepositoryStatus: Sendable, Hashable, Codable {
    public var alias: String?
    public var source: String
    public var ready: Bool
    /// The URL that answered, or the last one tried.
    public var url: String?
    /// Why it is not ready (HTTP status, TLS failure, DNS, timeout…).
    public var reason: String?
    public var attempts: Int
    /// `sha256:<hex>` of the metadata index that answered (`repodata/repomd.xml`): the phase cache's view of the
    /// repository's content at this moment.
    public var metadataDigest: String?

    enum CodingKeys: String, CodingKey {
        case alias, source, ready, url, reason, attempts
        case metadataDigest = "metadata_digest"
    }
}

/// The outcome of waiting for a recipe's repositories.
public struct RepositoryReadinessReport: Sendable, Hashable, Codable {
    public var ready: Bool
    public var repositories: [RepositoryStatus]
    /// Repositories that are not http(s) and were not probed.
    public var skipped: [String]
    public var seconds: Double
}

/// Waits until every http(s) repository answers for its metadata (`repodata/repomd.xml` for rpm-md,
/// `InRelease`/`Release` for apt), trusting an extra CA bundle, with an overall timeout and a poll interval.
/// A recipe with no http(s) repositories passes at once (IMS fails those).
public struct RepositoryReadiness: Sendable {
    public var caBundlePath: String?
    public var timeout: Duration
    public var pollInterval: Duration
    public var requestTimeout: Duration

    public init(caBundlePath: String? = nil, timeout: Duration = .seconds(500), pollInterval: Duration = .seconds(10), requestTimeout: Duration = .seconds(10)) {
        self.caBundlePath = caBundlePath
        self.timeout = timeout
        self.pollInterval = pollInterval
        self.requestTimeout = requestTimeout
    }

    /// Probes until all are ready or the timeout passes; `progress` hears about every round.
    public func wait(
        for probes: [RepositoryProbe], progress: (@Sendable ([RepositoryStatus]) -> Void)? = nil
    ) async throws(RecipeError) -> RepositoryReadinessReport {
        let started = ContinuousClock.now
        let http = probes.filter(\.isHTTP)
        let skipped = probes.filter { !$0.isHTTP }.map { $0.alias ?? $0.source }
        let statuses = http.map { RepositoryStatus(alias: $0.alias, source: $0.source, ready: false, url: nil, reason: "not probed yet", attempts: 0) }
        if http.isEmpty {
            return RepositoryReadinessReport(ready: true, repositories: [], skipped: skipped, seconds: 0)
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caBundlePath {
            guard FileManager.default.isReadableFile(atPath: caBundlePath) else {
                throw RecipeError(.io, file: caBundlePath, "cannot read the CA bundle")
            }
            do {
                let extra = try NIOSSLCertificate.fromPEMFile(caBundlePath)
                tls.trustRoots = .default
                tls.additionalTrustRoots = [.certificates(extra)]
            } catch {
                throw RecipeError(.io, file: caBundlePath, "not a PEM certificate bundle")
            }
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = .init(connect: .init(requestTimeout), read: .init(requestTimeout))
        configuration.redirectConfiguration = .follow(max: 5, allowCycles: false)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let report = await poll(http, statuses: statuses, skipped: skipped, client: client, started: started, progress: progress)
        try? await client.shutdown()
        return report
    }

    private func poll(
        _ http: [RepositoryProbe], statuses initial: [RepositoryStatus], skipped: [String], client: HTTPClient,
        started: ContinuousClock.Instant, progress: (@Sendable ([RepositoryStatus]) -> Void)?
    ) async -> RepositoryReadinessReport {
        var statuses = initial
        let requestTimeout = self.requestTimeout
        while true {
            await withTaskGroup(of: (Int, RepositoryStatus).self) { group in
                for (index, probe) in http.enumerated() where !statuses[index].ready {
                    let previous = statuses[index]
                    group.addTask {
                        (index, await Self.probe(probe, previous: previous, client: client, timeout: requestTimeout))
                    }
                }
                for await (index, status) in group { statuses[index] = status }
            }
            progress?(statuses)
            let elapsed = started.duration(to: .now)
            let allReady = statuses.allSatisfy(\.ready)
            if allReady || elapsed + pollInterval > timeout || Task.isCancelled {
                if !allReady {
                    for index in statuses.indices where !statuses[index].ready {
                        statuses[index].reason = (statuses[index].reason ?? "not ready") + " (gave up after \(Self.seconds(elapsed)) s)"
                    }
                }
                return RepositoryReadinessReport(ready: allReady, repositories: statuses, skipped: skipped, seconds: Self.seconds(elapsed))
            }
            try? await Task.sleep(for: pollInterval)
        }
    }

    static func probe(_ probe: RepositoryProbe, previous: RepositoryStatus, client: HTTPClient, timeout: Duration) async -> RepositoryStatus {
        var status = previous
        status.attempts += 1
        var reasons: [String] = []
        for url in probe.metadataURLs {
            status.url = url
            do {
                var request = HTTPClientRequest(url: url)
                request.method = .GET
                let response = try await client.execute(request, timeout: .init(timeout))
                // Read at most a little of the body: the index, whose digest stands for the repository's content.
                let body = try? await response.body.collect(upTo: 1 << 20)
                if (200..<300).contains(response.status.code) {
                    status.ready = true
                    status.reason = nil
                    status.metadataDigest = body.map { "sha256:" + SHA256.hash(data: Data($0.readableBytesView)).map { String(format: "%02x", $0) }.joined() }
                    return status
                }
                reasons.append("\(url) answered HTTP \(response.status.code) \(response.status.reasonPhrase)")
            } catch {
                reasons.append("\(url): \(describe(error))")
            }
        }
        status.reason = reasons.joined(separator: "; ")
        return status
    }

    /// A short, human account of a transport error (TLS failures are called out explicitly).
    static func describe(_ error: any Error) -> String {
        if let ssl = error as? NIOSSLError {
            return "TLS handshake failed (\(ssl)); is the site CA trusted? pass it with --ca-bundle"
        }
        let text = String(describing: error)
        if text.contains("handshakeFailed") || text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("certificate") {
            return "TLS certificate verification failed (\(text)); is the site CA trusted? pass it with --ca-bundle"
        }
        if let clientError = error as? HTTPClientError {
            if clientError == .connectTimeout || clientError == .readTimeout || clientError == .deadlineExceeded {
                return "timed out"
            }
            return "\(clientError)"
        }
        if text.contains("connectionRefused") || text.contains("Connection refused") { return "connection refused" }
        return text
    }

    static func seconds(_ duration: Duration) -> Double {
        ((Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18) * 10).rounded() / 10
    }
}

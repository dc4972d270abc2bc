import Foundation
import IMSEngine
import Testing

@Suite("Site settings")
struct SiteSettingsTests {
    private func write(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "ims-settings-\(UUID().uuidString).yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("the s3 section decodes every documented setting, the multipart threshold included")
    func s3Settings() throws {
        let path = try write("""
            store: s3://boot-images
            s3:
              endpoint_url: https://rgw.local
              credentials_file: /etc/ims/s3.json
              part_size_bytes: 33554432
              multipart_threshold_bytes: 67108864
              max_concurrency: 8
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let settings = try SiteSettings.load(file: path)
        #expect(settings.s3?.multipartThresholdBytes == 67_108_864)
        #expect(settings.s3?.partSizeBytes == 33_554_432 && settings.s3?.maxConcurrency == 8)
    }

    @Test("a misspelt s3 setting is refused with its name and the known ones, not ignored")
    func unknownS3Setting() throws {
        let path = try write("s3:\n  endpoint_url: https://rgw.local\n  multipart_treshold_bytes: 1\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try SiteSettings.load(file: path)
            Issue.record("a misspelt setting was accepted")
        } catch {
            #expect(error.description.contains("unknown setting 's3.multipart_treshold_bytes'"))
            #expect(error.description.contains("multipart_threshold_bytes"))
        }
    }

    @Test("max_concurrent_jobs is read and must be at least 1")
    func maxConcurrentJobs() throws {
        let path = try write("max_concurrent_jobs: 2\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try SiteSettings.load(file: path).maxConcurrentJobs == 2)
        let zero = try write("max_concurrent_jobs: 0\n")
        defer { try? FileManager.default.removeItem(atPath: zero) }
        #expect(throws: EngineError.self) { try SiteSettings.load(file: zero) }
    }

    @Test("customize_ssh is read from ims.yaml, and unknown keys and bad values are refused by name")
    func customizeSSHSettings() throws {
        let path = try write("customize_ssh: {listen_address: 10.1.0.5, port_range: [30000, 30099], customer_access_host: ims.example.net, cluster_local_host: ims.local}\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try SiteSettings.load(file: path).customizeSSH == CustomizeSSHSettings(
            listenAddress: "10.1.0.5", portRange: [30000, 30099], customerAccessHost: "ims.example.net", clusterLocalHost: "ims.local"))
        for (text, message) in [
            ("customize_ssh: {port_rang: [1, 2]}\n", "unknown setting 'customize_ssh.port_rang'"),
            ("customize_ssh: {listen_address: ims.example.net}\n", "customize_ssh.listen_address 'ims.example.net' is not an IPv4 or IPv6 address"),
            ("customize_ssh: {port_range: [30000]}\n", "customize_ssh.port_range must be [first, last]"),
        ] {
            let bad = try write(text)
            defer { try? FileManager.default.removeItem(atPath: bad) }
            do { _ = try SiteSettings.load(file: bad); Issue.record("\(text) was accepted") } catch { #expect(error.description.contains(message), "\(error.description)") }
        }
    }

    @Test("the cache section: defaults, a size, a directory, and mistakes refused by name")
    func cacheSettings() throws {
        #expect(CacheSettings().isEnabled)
        #expect(CacheSettings().maxBytes == 20 * 1024 * 1024 * 1024)
        #expect(CacheSettings().directory(dataDirectory: "/var/lib/ims") == "/var/lib/ims/cache")
        let path = try write("cache: {enabled: false, max_size_gib: 0.5, directory: /var/cache/ims}\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let cache = try #require(try SiteSettings.load(file: path).cache)
        #expect(!cache.isEnabled && cache.maxBytes == 512 * 1024 * 1024)
        #expect(cache.directory(dataDirectory: "/var/lib/ims") == "/var/cache/ims")
        for (text, message) in [
            ("cache: {enabeld: false}\n", "unknown setting 'cache.enabeld'"),
            ("cache: {max_size_gib: -1}\n", "cache.max_size_gib must be 0 or more"),
            ("cache: {directory: cache}\n", "cache.directory must be an absolute path"),
        ] {
            let bad = try write(text)
            defer { try? FileManager.default.removeItem(atPath: bad) }
            do { _ = try SiteSettings.load(file: bad); Issue.record("\(text) was accepted") } catch { #expect(error.description.contains(message), "\(error.description)") }
        }
    }

    @Test("the server section: auth and tls decode, an audience may be one string, and mistakes are refused by name")
    func serverSettings() throws {
        let jwks = try write("{\"keys\": []}")
        defer { try? FileManager.default.removeItem(atPath: jwks) }
        let good = try write("server:\n  auth: {jwks: \(jwks), issuer: https://idp/realms/shasta, audience: shasta, leeway_seconds: 5}\n  tls: {certificate: \(jwks), key: \(jwks)}\n")
        defer { try? FileManager.default.removeItem(atPath: good) }
        let settings = try SiteSettings.load(file: good)
        #expect(settings.server?.auth == ServerSettings.Auth(jwks: jwks, issuer: "https://idp/realms/shasta", audience: ["shasta"], leewaySeconds: 5))
        #expect(settings.server?.tls == ServerSettings.TLS(certificate: jwks, key: jwks))
        let url = try write("server:\n  auth: {jwks: 'https://idp/certs', issuer: x, audience: [a, b]}\n")
        defer { try? FileManager.default.removeItem(atPath: url) }
        #expect(try SiteSettings.load(file: url).server?.auth?.jwksIsURL == true)
        for (text, message) in [
            ("server:\n  auth: {jwks: \(jwks), issuer: x, audiance: [a]}\n", "unknown setting 'server.auth.audiance'"),
            ("server:\n  tsl: {}\n", "unknown setting 'server.tsl'"),
            ("server:\n  auth: {jwks: /nonexistent/jwks.json, issuer: x}\n", "server.auth.jwks /nonexistent/jwks.json cannot be read"),
            ("server:\n  auth: {jwks: 'ftp://idp/certs', issuer: x}\n", "must be a file path or an http(s):// URL"),
            ("server:\n  auth: {jwks: \(jwks), issuer: ''}\n", "server.auth.issuer must not be empty"),
            ("server:\n  auth: {jwks: \(jwks), issuer: x, audience: []}\n", "server.auth.audience must list"),
            ("server:\n  auth: {jwks: \(jwks)}\n", "missing 'issuer'"),
            ("server:\n  tls: {certificate: /nonexistent.crt, key: \(jwks)}\n", "server.tls.certificate /nonexistent.crt cannot be read"),
        ] {
            let path = try write(text)
            defer { try? FileManager.default.removeItem(atPath: path) }
            #expect(throws: EngineError.self, "\(text)") { try SiteSettings.load(file: path) }
            do { _ = try SiteSettings.load(file: path) } catch { #expect(error.description.contains(message), "\(error.description)") }
        }
    }
}

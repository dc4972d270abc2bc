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
}

import Foundation
import IMSCatalog
import Testing

@Suite("Enumerations and timestamps")
struct EnumerationTests {
    @Test("unknown linux_distribution values are refused with the allowed list")
    func unknownDistribution() {
        #expect(throws: CatalogError.invalidValue(field: "linux_distribution", value: "ubuntu", allowed: LinuxDistribution.allowedValues)) {
            try LinuxDistribution.parse("ubuntu")
        }
        var message = ""
        do {
            _ = try LinuxDistribution.parse("ubuntu")
        } catch {
            message = error.description
        }
        #expect(message.contains("sles15") && message.contains("rocky10") && message.contains("opensuse-tumbleweed"))
    }

    @Test("every distribution has a family", arguments: LinuxDistribution.allCases)
    func families(distribution: LinuxDistribution) {
        let suse: Set<LinuxDistribution> = [.sles12, .sles15, .sles16, .opensuseLeap15, .opensuseLeap16, .opensuseTumbleweed]
        #expect(distribution.family == (suse.contains(distribution) ? .suse : .rhel))
    }

    @Test("enums keep IMS's values and order")
    func imsValues() throws {
        #expect(JobStatus.allowedValues == [
            "creating", "fetching_image", "fetching_recipe", "waiting_for_repos", "building_image",
            "packaging_artifacts", "waiting_on_user", "error", "success",
        ])
        #expect(RecipeType.allowedValues == ["kiwi-ng", "packer"])
        #expect(Arch.allowedValues == ["x86_64", "aarch64"])
        #expect(JobType.allowedValues == ["create", "customize"])
        #expect(try Arch.parse("aarch64").defaultKernelFileName == "Image")
        #expect(Arch.x86_64.defaultKernelFileName == "vmlinuz")
        #expect(JobStatus.creating < JobStatus.success)
        #expect(throws: CatalogError.self) { try Arch.parse("arm64") }
    }

    @Test("timestamps format as ISO 8601 with microseconds and parse back")
    func timestamps() throws {
        let micros: Int64 = 1_735_732_800_123_456  // 2025-01-01T12:00:00.123456Z
        #expect(IMSTimestamp.string(microseconds: micros) == "2025-01-01T12:00:00.123456+00:00")
        #expect(IMSTimestamp.parseMicroseconds("2025-01-01T12:00:00.123456+00:00") == micros)
        #expect(IMSTimestamp.parseMicroseconds("2025-01-01T12:00:00.123456") == micros)
        #expect(IMSTimestamp.parseMicroseconds("2025-01-01 13:00:00.123456+01:00") == micros)
        #expect(IMSTimestamp.parseMicroseconds("2025-01-01T12:00:00Z") == micros - 123_456)
        #expect(IMSTimestamp.string(microseconds: 0) == "1970-01-01T00:00:00.000000+00:00")
        #expect(IMSTimestamp.string(microseconds: 951_782_400_000_001) == "2000-02-29T00:00:00.000001+00:00")
        #expect(IMSTimestamp.parse("yesterday") == nil)
        // Dates beyond what Int64 microseconds hold clamp instead of trapping.
        #expect(IMSTimestamp.microseconds(Date(timeIntervalSince1970: -1e300)) == Int64.min)
        #expect(IMSTimestamp.microseconds(Date(timeIntervalSince1970: 1e300)) == Int64.max)
        let now = IMSTimestamp.now()
        #expect(IMSTimestamp.parse(IMSTimestamp.string(now)) == now)
    }

    @Test("job ages parse like IMS's age filter")
    func ages() throws {
        #expect(try JobFilter.parseAge("1d") == 86_400)
        #expect(try JobFilter.parseAge("6h") == 21_600)
        #expect(try JobFilter.parseAge("2w") == 1_209_600)
        #expect(try JobFilter.parseAge("30m") == 1800)
        #expect(try JobFilter.parseAge("3days") == 259_200)
        #expect(throws: CatalogError.self) { try JobFilter.parseAge("d1") }
        #expect(throws: CatalogError.self) { try JobFilter.parseAge("5y") }
        // Compound ages add up (IMS's regex mis-reads them).
        #expect(try JobFilter.parseAge("1d6h") == 108_000)
        #expect(try JobFilter.parseAge("1w2d3h4m") == 604_800 + 172_800 + 10_800 + 240)
        #expect(try JobFilter.parseAge("2days12hours") == 216_000)
        // An age longer than any job can be old is capped at 100 years (it selects the same jobs: none), never
        // turned into a timestamp that overflows; text longer than 64 characters is refused.
        #expect(try JobFilter.parseAge("5200w") == 5200 * 604_800)
        #expect(throws: CatalogError.self) { try JobFilter.parseAge(String(repeating: "0", count: 64) + "d") }
        for huge in ["99999999999w", "5300w", "99999999999999999999999d", "36600d", "1d0h911413879995w290686h"] {
            #expect(try JobFilter.parseAge(huge) == JobFilter.longestAge, "\(huge)")
        }
        for bad in ["", "h", "1d6", "1d-6h", "6hx", "1.5d", " "] {
            #expect(throws: CatalogError.self, "\(bad)") { try JobFilter.parseAge(bad) }
        }
    }

    @Test("authorized_keys lines are checked")
    func publicKeys() throws {
        let ed25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f user@host"
        #expect(try PublicKeyRecord.validateAuthorizedKey(ed25519 + "\n") == ed25519)
        #expect(try PublicKeyRecord.validateAuthorizedKey("no-pty " + ed25519) == "no-pty " + ed25519)
        #expect(throws: CatalogError.self) { try PublicKeyRecord.validateAuthorizedKey("") }
        #expect(throws: CatalogError.self) { try PublicKeyRecord.validateAuthorizedKey("hello world") }
        #expect(throws: CatalogError.self) { try PublicKeyRecord.validateAuthorizedKey("ssh-rsa !!!notbase64") }
        // A base64 body holding a different key type.
        #expect(throws: CatalogError.self) {
            try PublicKeyRecord.validateAuthorizedKey("ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f")
        }
    }

    @Test("data directory resolution: flag, IMS_DATA_DIR, root, XDG, home")
    func dataDirectory() {
        #expect(DataDirectory.resolve(explicit: "/x", environment: ["IMS_DATA_DIR": "/y"], isRoot: true).path == "/x")
        #expect(DataDirectory.resolve(explicit: nil, environment: ["IMS_DATA_DIR": "/y/"], isRoot: true).path == "/y")
        #expect(DataDirectory.resolve(explicit: nil, environment: ["XDG_DATA_HOME": "/xdg"], isRoot: true).path == "/var/lib/ims")
        #expect(DataDirectory.resolve(explicit: nil, environment: ["XDG_DATA_HOME": "/xdg", "HOME": "/h"], isRoot: false).path == "/xdg/ims")
        #expect(DataDirectory.resolve(explicit: nil, environment: ["HOME": "/h"], isRoot: false).path == "/h/.local/share/ims")
        let directory = DataDirectory(path: "/d")
        #expect(directory.catalogPath == "/d/catalog.sqlite")
        #expect(directory.storeURL == "file:///d/store")
    }
}

import Foundation
import IMSKiwi
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Hostile XML", .timeLimit(.minutes(1)))
struct KiwiHostileXMLTests {
    static let passwdMarker: String = {
        // A line of the host's /etc/passwd that must never show up in any output.
        let text = (try? String(contentsOfFile: "/etc/passwd", encoding: .utf8)) ?? "root:x:0:0:"
        return text.split(separator: "\n").first.map(String.init) ?? "root:x:0:0:"
    }()

    /// Everything a caller could print: thrown error, diagnostics, report JSON.
    func everything(_ directory: String) -> String {
        var output = KiwiValidator.validate(directory: directory).map(\.description).joined(separator: "\n")
        do {
            let description = try KiwiLoader.load(directory: directory)
            let report = KiwiInspector.report(description, profile: nil, arch: nil)
            output += String(decoding: (try? report.jsonData()) ?? Data(), as: UTF8.self)
            output += "\(description)"
        } catch {
            output += "\(error)"
        }
        return output
    }

    @Test("billion laughs is refused at the first entity declaration, quickly")
    func billionLaughs() throws {
        var entities = #"<!ENTITY lol0 "lol">"#
        for level in 1...9 {
            let previous = String(repeating: "&lol\(level - 1);", count: 10)
            entities += "\n<!ENTITY lol\(level) \"\(previous)\">"
        }
        let xml = """
            <?xml version="1.0"?>
            <!DOCTYPE image [
            \(entities)
            ]>
            <image name="&lol9;" schemaversion="7.4"><description/></image>
            """
        let clock = ContinuousClock()
        let start = clock.now
        let error = try #require(KiwiFixtures.kiwiError { _ = try KiwiFixtures.load(xml) })
        #expect(clock.now - start < .seconds(2))
        #expect(error.code == .xmlEntityDeclaration)
        #expect(error.primary?.line == 3)
        #expect(error.description.contains("config.xml:3: error:"))
        #expect(!error.description.contains("lollol"))
    }

    @Test("XXE: an external entity is refused and the file's content never appears")
    func externalEntity() throws {
        let xml = """
            <?xml version="1.0"?>
            <!DOCTYPE image [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
            <image name="&xxe;" schemaversion="7.4"><description><author>&xxe;</author></description></image>
            """
        try KiwiFixtures.withTemporaryDirectory { directory in
            try KiwiFixtures.write(xml, to: "config.xml", in: directory)
            let error = try #require(KiwiFixtures.kiwiError { _ = try KiwiLoader.load(directory: directory) })
            #expect(error.code == .xmlEntityDeclaration)
            #expect(error.description.contains("xxe"))
            #expect(!everything(directory).contains(Self.passwdMarker))
        }
    }

    @Test("XXE through a parameter entity is refused too")
    func parameterEntity() throws {
        let xml = """
            <?xml version="1.0"?>
            <!DOCTYPE image [ <!ENTITY % p SYSTEM "file:///etc/passwd"> %p; ]>
            <image name="x" schemaversion="7.4"/>
            """
        try KiwiFixtures.withTemporaryDirectory { directory in
            try KiwiFixtures.write(xml, to: "config.xml", in: directory)
            let error = try #require(KiwiFixtures.kiwiError { _ = try KiwiLoader.load(directory: directory) })
            #expect(error.code == .xmlEntityDeclaration)
            #expect(!everything(directory).contains(Self.passwdMarker))
        }
    }

    @Test("an undeclared entity reference is not resolved: the XML is refused as malformed")
    func undeclaredEntity() throws {
        let xml = KiwiFixtures.description(name: "&passwd;")
        let error = try #require(KiwiFixtures.kiwiError { _ = try KiwiFixtures.load(xml) })
        #expect(error.code == .xmlMalformed)
        #expect(error.primary?.line == 2)
    }

    @Test("an external DTD is ignored: never loaded, no default attributes, a warning")
    func externalDTD() throws {
        try KiwiFixtures.withTemporaryDirectory { directory in
            // A DTD that would inject a default attribute if it were ever loaded.
            try KiwiFixtures.write(
                #"<!ATTLIST image displayname CDATA "from-the-dtd">"#, to: "evil.dtd", in: directory)
            let xml = KiwiFixtures.description().replacingOccurrences(
                of: "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n",
                with: "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!DOCTYPE image SYSTEM \"file://\(directory)/evil.dtd\">\n")
            try KiwiFixtures.write(xml, to: "config.xml", in: directory)
            let description = try KiwiLoader.load(directory: directory)
            #expect(description.displayName == nil)
            #expect(description.diagnostics.with(.xmlDoctypeIgnored).first?.line == 2)
            // And one pointing at /etc/passwd: nothing of it shows up.
            try KiwiFixtures.write(
                xml.replacingOccurrences(of: "file://\(directory)/evil.dtd", with: "file:///etc/passwd"), to: "config.xml",
                in: directory)
            #expect(!everything(directory).contains(Self.passwdMarker))
        }
    }

    @Test("a network DTD is never fetched")
    func networkDTD() throws {
        // A listening socket on loopback: any fetch attempt would connect to it.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(listener >= 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0)
        try #require(listen(listener, 8) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        let port = Int(UInt16(bigEndian: address.sin_port))
        _ = fcntl(listener, F_SETFL, fcntl(listener, F_GETFL) | O_NONBLOCK)

        let xml = KiwiFixtures.description().replacingOccurrences(
            of: "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n",
            with: "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!DOCTYPE image PUBLIC \"-//x//y\" \"http://127.0.0.1:\(port)/evil.dtd\">\n")
        let description = try KiwiFixtures.load(xml)
        #expect(description.name == "test")
        #expect(description.diagnostics.with(.xmlDoctypeIgnored).count == 1)
        let connection = accept(listener, nil, nil)
        #expect(connection < 0, "the parser connected to the DTD server")
        if connection >= 0 { close(connection) }
    }

    @Test("deep nesting is refused at the depth limit")
    func deepNesting() throws {
        let depth = 5000
        let xml = "<image name=\"x\" schemaversion=\"7.4\">" + String(repeating: "<a>", count: depth)
            + String(repeating: "</a>", count: depth) + "</image>"
        let error = try #require(KiwiFixtures.kiwiError { _ = try KiwiFixtures.load(xml) })
        #expect(error.code == .xmlTooDeep)
        // A lower configured limit is enforced by our own hook.
        let shallow = "<image name=\"x\" schemaversion=\"7.4\">" + String(repeating: "<a>", count: 20)
            + String(repeating: "</a>", count: 20) + "</image>"
        let limited = try #require(
            KiwiFixtures.kiwiError { _ = try KiwiFixtures.load(shallow, options: .init(maxDepth: 10)) })
        #expect(limited.code == .xmlTooDeep)
        #expect(limited.description.contains("10 levels"))
        _ = try KiwiFixtures.load(shallow, options: .init(maxDepth: 30))
    }

    @Test("too many elements is refused")
    func tooManyElements() throws {
        let packages = (0..<500).map { "<package name=\"p\($0)\"/>" }.joined()
        let xml = KiwiFixtures.description(body: "<packages type=\"image\">\(packages)</packages>")
        let error = try #require(KiwiFixtures.kiwiError { _ = try KiwiFixtures.load(xml, options: .init(maxElements: 100)) })
        #expect(error.code == .xmlTooManyElements)
        #expect(try KiwiFixtures.load(xml).packageSections.count == 2)
    }

    @Test("a file over the size limit is refused without being parsed")
    func hugeFile() throws {
        try KiwiFixtures.withTemporaryDirectory { directory in
            let padding = String(repeating: "<!-- padding padding padding padding padding padding padding -->\n", count: 270_000)
            let xml = KiwiFixtures.description(body: padding)
            #expect(xml.utf8.count > 16 * 1024 * 1024)
            try KiwiFixtures.write(xml, to: "config.xml", in: directory)
            let error = try #require(KiwiFixtures.kiwiError { _ = try KiwiLoader.load(directory: directory) })
            #expect(error.code == .fileTooLarge)
            #expect(error.description.contains(directory + "/config.xml"))
            let small = try #require(
                KiwiFixtures.kiwiError { _ = try KiwiLoader.load(directory: directory, options: .init(maxFileSize: 1024)) })
            #expect(small.code == .fileTooLarge)
        }
    }

    @Test("an include that escapes the recipe is refused")
    func includeEscapes() throws {
        for from in ["this://../../etc/passwd", "this://../../../../../../../../etc/passwd", "../outside.xml"] {
            let xml = KiwiFixtures.description(body: "<include from=\"\(from)\"/>")
            try KiwiFixtures.withTemporaryDirectory { root in
                let directory = root + "/recipe"
                try KiwiFixtures.write(xml, to: "config.xml", in: directory)
                try KiwiFixtures.write("<image><repository><source path=\"x\"/></repository></image>", to: "outside.xml", in: root)
                let error = try #require(KiwiFixtures.kiwiError { _ = try KiwiLoader.load(directory: directory) })
                #expect(error.code == .includeEscapes, "\(from)")
                #expect(error.primary?.line == 19, "\(from)")
                #expect(!everything(directory).contains(Self.passwdMarker))
            }
        }
    }

    @Test("an include through a symbolic link that leaves the recipe is refused")
    func includeSymlinkEscapes() throws {
        try KiwiFixtures.withTemporaryDirectory { directory in
            try KiwiFixtures.write(KiwiFixtures.description(body: "<include from=\"this://link.xml\"/>"), to: "config.xml", in: directory)
            try FileManager.default.createSymbolicLink(atPath: directory + "/link.xml", withDestinationPath: "/etc/passwd")
            let error = try #require(KiwiFixtures.kiwiError { _ = try KiwiLoader.load(directory: directory) })
            #expect(error.code == .includeEscapes)
            #expect(!everything(directory).contains(Self.passwdMarker))
        }
    }

    @Test("an absolute include outside the recipe is refused without looking at the file")
    func includeAbsolute() throws {
        let xml = KiwiFixtures.description(body: "<include from=\"/etc/passwd\"/>")
        try KiwiFixtures.withTemporaryDirectory { directory in
            try KiwiFixtures.write(xml, to: "config.xml", in: directory)
            let error = try #require(KiwiFixtures.kiwiError { _ = try KiwiLoader.load(directory: directory) })
            #expect(error.code == .includeMissing)
            #expect(!everything(directory).contains(Self.passwdMarker))
        }
    }

    @Test("include cycles are detected, including a file that includes itself")
    func includeCycle() throws {
        try KiwiFixtures.withTemporaryDirectory { directory in
            try KiwiFixtures.write(KiwiFixtures.description(body: "<include from=\"this://a.xml\"/>"), to: "config.xml", in: directory)
            try KiwiFixtures.write("<image>\n<include from=\"this://sub/b.xml\"/>\n</image>", to: "a.xml", in: directory)
            try KiwiFixtures.write("<image>\n\n<include from=\"this://a.xml\"/>\n</image>", to: "sub/b.xml", in: directory)
            let error = try #require(KiwiFixtures.kiwiError { _ = try KiwiLoader.load(directory: directory) })
            #expect(error.code == .includeCycle)
            #expect(error.primary?.file == directory + "/sub/b.xml")
            #expect(error.primary?.line == 3)
            #expect(error.primary?.message.contains("a.xml → \(directory)/sub/b.xml → \(directory)/a.xml") == true)

            try KiwiFixtures.write(KiwiFixtures.description(body: "<include from=\"this://config.xml\"/>"), to: "config.xml", in: directory)
            #expect(KiwiFixtures.kiwiError { _ = try KiwiLoader.load(directory: directory) }?.code == .includeCycle)
        }
    }

    @Test("include fan-out is bounded")
    func includeFanOut() throws {
        try KiwiFixtures.withTemporaryDirectory { directory in
            // Each level includes the next one ten times: 10^4 expansions without a limit.
            for level in 0..<4 {
                let includes = String(repeating: "<include from=\"this://l\(level + 1).xml\"/>", count: 10)
                try KiwiFixtures.write("<image>\(includes)</image>", to: "l\(level).xml", in: directory)
            }
            try KiwiFixtures.write("<image><users><user name=\"u\"/></users></image>", to: "l4.xml", in: directory)
            try KiwiFixtures.write(KiwiFixtures.description(body: "<include from=\"this://l0.xml\"/>"), to: "config.xml", in: directory)
            let error = try #require(KiwiFixtures.kiwiError { _ = try KiwiLoader.load(directory: directory) })
            #expect(error.code == .includeTooMany)
        }
    }

    @Test("included files are parsed with the same protections")
    func hostileInclude() throws {
        try KiwiFixtures.withTemporaryDirectory { directory in
            try KiwiFixtures.write(KiwiFixtures.description(body: "<include from=\"this://evil.xml\"/>"), to: "config.xml", in: directory)
            try KiwiFixtures.write(
                "<!DOCTYPE image [ <!ENTITY x SYSTEM \"file:///etc/passwd\"> ]>\n<image><repository alias=\"&x;\"/></image>",
                to: "evil.xml", in: directory)
            let error = try #require(KiwiFixtures.kiwiError { _ = try KiwiLoader.load(directory: directory) })
            #expect(error.code == .xmlEntityDeclaration)
            #expect(error.primary?.file == directory + "/evil.xml")
            #expect(error.diagnostics.contains { $0.file == directory + "/config.xml" && $0.line == 19 })
            #expect(!everything(directory).contains(Self.passwdMarker))
        }
    }

    @Test("a FIFO or directory in place of an include is refused without blocking")
    func nonRegularInclude() throws {
        try KiwiFixtures.withTemporaryDirectory { directory in
            try KiwiFixtures.write(KiwiFixtures.description(body: "<include from=\"this://pipe.xml\"/>"), to: "config.xml", in: directory)
            #expect(mkfifo(directory + "/pipe.xml", 0o600) == 0)
            #expect(KiwiFixtures.kiwiError { _ = try KiwiLoader.load(directory: directory) }?.code == .fileUnreadable)
        }
    }

    @Test("not XML, empty files and the wrong root element are refused with file and line")
    func notXML() throws {
        let garbage = try #require(KiwiFixtures.kiwiError { _ = try KiwiFixtures.load("this is not xml") })
        #expect(garbage.code == .xmlMalformed)
        #expect(garbage.primary?.line == 1)
        #expect(KiwiFixtures.kiwiError { _ = try KiwiFixtures.load("") }?.code == .xmlMalformed)
        let unclosed = try #require(KiwiFixtures.kiwiError { _ = try KiwiFixtures.load("<image>\n<preferences>\n</image>") })
        #expect(unclosed.code == .xmlMalformed)
        #expect(unclosed.primary?.line == 3)
        let wrongRoot = try #require(KiwiFixtures.kiwiError { _ = try KiwiFixtures.load("<?xml version=\"1.0\"?>\n<project/>") })
        #expect(wrongRoot.code == .xmlRootNotImage)
        #expect(wrongRoot.primary?.line == 2)
        #expect(wrongRoot.description.contains("<project>"))
    }
}

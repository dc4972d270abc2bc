import Foundation
@testable import IMSPluginHost
import IMSProtocol
import Testing

@Suite("Message parser")
struct MessageParserTests {
    static func pluginExamples() -> [URL] {
        let directory = URL(fileURLWithPath: Fixtures.repositoryRoot + "/protocol/examples")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".json") && !$0.hasPrefix("manifest") }.sorted().map { directory.appendingPathComponent($0) }
    }

    @Test("the json-c fast path and the Codable path agree on every plugin message example")
    func parity() throws {
        let parser = MessageParser()
        var checked = 0
        for file in Self.pluginExamples() {
            let data = try Data(contentsOf: file)
            guard let expected = try? JSONDecoder().decode(PluginEnvelope.self, from: data) else { continue }
            let compact = Array(try JSONEncoder().encode(try JSONDecoder().decode(JSONValue.self, from: data)))
            let parsed = try parser.parse(compact[...])
            #expect(parsed == expected, "\(file.lastPathComponent)")
            checked += 1
        }
        #expect(checked >= 10)
    }

    @Test("log and progress variants agree", arguments: [
        #"{"ims":1,"type":"log","seq":3,"ts":"2026-01-01T00:00:00Z","data":{"level":"warn","msg":"m","fields":{"a":[1,2.5,"x",null,true]},"source":"zypper"}}"#,
        #"{"ims":1,"type":"progress","data":{"task":"t","state":"report","current":5,"total":10.5,"unit":"bytes","message":"m","title":"T","parent":"p"}}"#,
        #"{"ims":1,"type":"heartbeat","data":{}}"#,
        #"{"ims":1,"type":"log","data":{"level":"info","msg":"caf\u00e9 \u2028 \ud83d\ude00"}}"#,
    ])
    func variants(line: String) throws {
        let parser = MessageParser()
        let expected = try JSONDecoder().decode(PluginEnvelope.self, from: Data(line.utf8))
        #expect(try parser.parse(Array(line.utf8)[...]) == expected)
    }

    @Test("invalid lines are rejected", arguments: [
        #"{"ims":1,"type":"log","data":{"level":"#, #"{"ims":1,"type":"log"} trailing"#, #"{"type":"log","data":{}}"#,
        #"{"ims":1,"type":"log","data":{"level":"loud","msg":"x"}}"#, #"[1,2]"#, #"{"ims":"1","type":"log"}"#,
    ])
    func invalid(line: String) {
        let parser = MessageParser()
        #expect(throws: MessageParser.Failure.self) { try parser.parse(Array(line.utf8)[...]) }
    }
}

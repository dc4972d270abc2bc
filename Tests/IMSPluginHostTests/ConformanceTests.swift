import Foundation
import IMSPluginHost
import IMSProtocol
import Testing

/// The conformance kit (`ims plugins check`) against fixtures that each break exactly one rule of protocol §13.
/// The fixtures are ../Fixtures/plugins/conf-*, all one script (conformance-fixture.bash) with one FAULT each.
@Suite("Conformance kit", .timeLimit(.minutes(3)))
struct ConformanceTests {
    /// Short graces, so that a fixture's 3 s of work outlasts every grace (and the 100 ms wait after hello) by far.
    static let checker = ConformanceChecker(runTimeoutSeconds: 10, cancelGraceSeconds: 1, killGraceSeconds: 1)

    static func check(_ fixture: String) async -> [ConformanceChecker.CaseResult] {
        await checker.check(directory: Fixtures.pluginsDirectory + "/" + fixture)
    }

    static func summary(_ results: [ConformanceChecker.CaseResult]) -> String {
        results.map { "\($0.name): \($0.verdict.rawValue) (\($0.detail))" }.joined(separator: "\n")
    }

    struct Breach: Sendable, CustomTestStringConvertible {
        var fixture: String
        var failedCase: String
        /// Something the failed case's detail names.
        var detailNames: String
        var testDescription: String { "\(fixture) fails \(failedCase)" }
    }

    static let breaches = [
        // As a real run reports it: exit 0 without a result is ims.no_result.
        Breach(fixture: "conf-no-result", failedCase: "one_terminal_message", detailNames: HostErrorCode.noResult),
        Breach(fixture: "conf-ignores-sigterm", failedCase: "sigterm_honoured", detailNames: "still running"),
        Breach(fixture: "conf-ignores-eof", failedCase: "stdin_eof_honoured", detailNames: "still running"),
        Breach(fixture: "conf-leaks-secret", failedCase: "secrets_not_exposed", detailNames: "'log' event"),
        Breach(fixture: "conf-unknown-verb-ok", failedCase: "usage_unknown_verb", detailNames: "exit code 0"),
        Breach(fixture: "conf-strict-request", failedCase: "forward_compatible", detailNames: HostErrorCode.badRequest),
    ]

    @Test("a plugin that breaks one rule fails exactly that case, and every other case still runs", arguments: breaches)
    func failsExactlyOneCase(_ breach: Breach) async {
        let results = await Self.check(breach.fixture)
        #expect(results.map(\.name) == ConformanceChecker.caseNames)
        #expect(results.filter { $0.verdict == .failed }.map(\.name) == [breach.failedCase], "\(Self.summary(results))")
        let failed = results.first { $0.name == breach.failedCase }
        #expect(failed?.passed == false)
        #expect(failed?.detail.contains(breach.detailNames) == true, "\(failed?.detail ?? "")")
    }

    @Test("a conformant plugin passes every case, the three stop cases and the secret case included")
    func conformantPasses() async {
        let results = await Self.check("conf-ok")
        #expect(results.map(\.name) == ConformanceChecker.caseNames)
        for result in results {
            #expect(result.verdict == .passed, "\(result.name): \(result.detail)")
        }
    }

    @Test("a stop that comes after the plugin finished, or a secret never declared, is not exercised, never passed")
    func finishedBeforeStopIsNotExercised() async {
        let results = await Self.check("conf-finishes-at-once")
        let verdicts = Dictionary(results.map { ($0.name, $0.verdict) }, uniquingKeysWith: { a, _ in a })
        for name in ["cancel_honoured", "sigterm_honoured", "stdin_eof_honoured"] {
            #expect(verdicts[name] == .notExercised, "\(Self.summary(results))")
        }
        #expect(!results.contains { $0.verdict == .failed }, "\(Self.summary(results))")
        // Its phase declares no secret either.
        #expect(verdicts["secrets_not_exposed"] == .notExercised)
    }

    /// A request like a site phase's: a config and a scratch rootfs directory.
    static func siteRequest() throws -> (ConformanceChecker.Request, String) {
        let rootfs = NSTemporaryDirectory() + "ims-check-root-" + UUID().uuidString.lowercased().prefix(8)
        try FileManager.default.createDirectory(atPath: rootfs + "/etc", withIntermediateDirectories: true)
        let request = ConformanceChecker.Request(config: ["greeting": "hi"], inputs: ["rootfs": ArtifactRef(path: rootfs, kind: .dir)])
        return (request, rootfs)
    }

    static func verdicts(_ results: [ConformanceChecker.CaseResult]) -> [String: ConformanceChecker.CaseResult.Verdict] {
        Dictionary(results.map { ($0.name, $0.verdict) }, uniquingKeysWith: { a, _ in a })
    }

    @Test("a plugin that needs config: with the empty request its stop cases are not exercised, with a request they pass")
    func needsConfig() async throws {
        let plain = await Self.check("conf-needs-config")
        let plainVerdicts = Self.verdicts(plain)
        for name in ["cancel_honoured", "sigterm_honoured", "stdin_eof_honoured"] {
            #expect(plainVerdicts[name] == .notExercised, "\(Self.summary(plain))")
        }
        let stop = try #require(plain.first { $0.name == "cancel_honoured" })
        #expect(stop.detail.contains("x.ims-test.no_config") && stop.detail.contains("--request"), "\(stop.detail)")

        let (request, rootfs) = try Self.siteRequest()
        var checker = Self.checker
        checker.request = request
        let configured = await checker.check(directory: Fixtures.pluginsDirectory + "/conf-needs-config")
        #expect(configured.map(\.name) == ConformanceChecker.caseNames)
        for result in configured where result.name != "secrets_not_exposed" {
            #expect(result.verdict == .passed, "\(result.name): \(result.detail)")
        }
        let terminal = try #require(configured.first { $0.name == "one_terminal_message" })
        #expect(terminal.detail.contains("exactly one result"), "the success path ran: \(terminal.detail)")
        // The plain run worked on the input directory in place.
        #expect((try? String(contentsOfFile: rootfs + "/greeting", encoding: .utf8)) == "hi\n")
    }

    @Test("a breach hidden by the empty request (not exercised, never passed) fails once the check gets a request")
    func requestUncoversBreach() async throws {
        let plain = await Self.check("conf-needs-config-ignores-sigterm")
        #expect(!plain.contains { $0.verdict == .failed }, "\(Self.summary(plain))")
        #expect(Self.verdicts(plain)["sigterm_honoured"] == .notExercised)

        var checker = Self.checker
        checker.request = try Self.siteRequest().0
        let configured = await checker.check(directory: Fixtures.pluginsDirectory + "/conf-needs-config-ignores-sigterm")
        #expect(configured.filter { $0.verdict == .failed }.map(\.name) == ["sigterm_honoured"], "\(Self.summary(configured))")
    }

    @Test("a phase the plugin does not offer fails the manifest case and runs nothing else")
    func unknownPhase() async {
        var checker = Self.checker
        checker.request = ConformanceChecker.Request(phase: "nope")
        let results = await checker.check(directory: Fixtures.pluginsDirectory + "/conf-ok")
        #expect(results.map(\.name) == ["manifest"])
        #expect(results.first?.verdict == .failed)
        #expect(results.first?.detail.contains("no phase 'nope'") == true)
    }

    @Test("a case result encodes its verdict in snake_case and keeps passed false only for a failed case")
    func caseResultJSON() throws {
        let json = #"[{"name":"a","verdict":"not_exercised","passed":true,"detail":"","seconds":0},{"name":"b","passed":false,"detail":"","seconds":1}]"#
        let decoded = try JSONDecoder().decode([ConformanceChecker.CaseResult].self, from: Data(json.utf8))
        #expect(decoded.map(\.verdict) == [.notExercised, .failed])
        #expect(decoded.map(\.passed) == [true, false])
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let encoded = String(decoding: try encoder.encode(decoded[0]), as: UTF8.self)
        #expect(encoded == #"{"detail":"","name":"a","passed":true,"seconds":0,"verdict":"not_exercised"}"#)
    }
}

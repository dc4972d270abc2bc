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

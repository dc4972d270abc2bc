/// Measures how fast descriptions are loaded and validated, for a benchmark command or script.
public enum KiwiBenchmark {
    /// The outcome of a run.
    public struct Result: Sendable, Hashable, Codable, CustomStringConvertible {
        /// How many descriptions one round covers.
        public var descriptions: Int
        /// How many rounds were timed (after one untimed warm-up round).
        public var iterations: Int
        /// Wall-clock seconds for all timed rounds.
        public var seconds: Double
        /// Descriptions loaded and validated per second.
        public var descriptionsPerSecond: Double
        /// Descriptions that failed to load (their errors still count as validated).
        public var failures: Int

        private enum CodingKeys: String, CodingKey {
            case descriptions, iterations, seconds, failures
            case descriptionsPerSecond = "descriptions_per_second"
        }

        /// One line for humans.
        public var description: String {
            let rate = (descriptionsPerSecond * 10).rounded() / 10
            return "\(descriptions) descriptions × \(iterations) rounds in \(seconds) s: \(rate) descriptions/s"
        }
    }

    /// Loads and validates every description `iterations` times (plus one warm-up round).
    ///
    /// - Parameters:
    ///   - paths: description directories, or description files (names not ending in a
    ///     directory, e.g. a rendered template).
    ///   - iterations: timed rounds (at least 1).
    ///   - options: validation options; file checks are on by default, as in a real run.
    /// - Returns: the throughput.
    public static func run(
        paths: [String], iterations: Int, options: KiwiValidationOptions = .init()
    ) -> Result {
        func round() -> Int {
            var failures = 0
            for path in paths {
                let diagnostics =
                    KiwiFileSystem.kind(path, followSymlinks: true) == .directory
                    ? KiwiValidator.validate(directory: path, options: options)
                    : KiwiValidator.validate(file: path, options: options)
                if diagnostics.contains(where: { $0.severity == .error && !loadableErrorCodes.contains($0.code) }) {
                    failures += 1
                }
            }
            return failures
        }
        _ = round()
        let rounds = max(1, iterations)
        let clock = ContinuousClock()
        var failures = 0
        let elapsed = clock.measure {
            for _ in 0..<rounds { failures = round() }
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let total = Double(paths.count * rounds)
        return Result(
            descriptions: paths.count, iterations: rounds, seconds: seconds,
            descriptionsPerSecond: seconds > 0 ? total / seconds : 0, failures: failures)
    }

    /// Error codes that come from validating a loaded description (not load failures).
    private static let loadableErrorCodes: Set<KiwiDiagnosticCode> = [
        .imageNoName, .schemaVersionMissing, .schemaVersionUnsupported, .packageManagerMissing, .packageManagerUnknown,
        .repositoryNoSource, .repositoryPlaceholder, .packageNoName, .archiveMissing, .overlayMissing, .typesConflicting,
        .typesNone, .typeOEMNoFilesystem, .typeNoImage, .profileUndeclared, .profileDuplicate, .profileRequiresUnknown,
        .userNoName,
    ]
}

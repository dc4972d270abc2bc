import IMSProtocol

/// One thing the supervisor saw on a plugin's stdout, sorted by what the protocol makes of it.
enum StdoutObservation: Sendable {
    /// A protocol message.
    case message(PluginEnvelope)
    /// Free text on stdout (a line that does not start with `{`).
    case stray(String)
    /// A line that starts with `{` but is not a valid message; `reason` says what is wrong with it.
    case malformed(reason: String, line: String)
    /// A line that is not valid UTF-8.
    case invalidUTF8
    /// A line longer than the limit (the framer dropped it).
    case overflow

    /// Sorts one stdout line (without its newline); nil for a blank line, which the protocol ignores.
    init?(line raw: [UInt8], parser: MessageParser) {
        var bytes = raw[...]
        if bytes.last == 0x0D { bytes = bytes.dropLast() }
        if bytes.first == 0x1E { bytes = bytes.dropFirst() }
        guard let firstNonSpace = bytes.firstIndex(where: { $0 != 0x20 && $0 != 0x09 }) else { return nil }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            self = .invalidUTF8
            return
        }
        guard bytes[firstNonSpace] == UInt8(ascii: "{") else {
            self = .stray(text)
            return
        }
        do {
            self = .message(try parser.parse(bytes))
        } catch {
            switch error {
            case .notJSON: self = .malformed(reason: "not valid JSON", line: text)
            case .invalidEnvelope(let why): self = .malformed(reason: why, line: text)
            }
        }
    }
}

/// The protocol state machine of one plugin call, as a value.
///
/// It takes what the supervisor saw on stdout and decides what it means: a hello to record, a
/// terminal message to accept, an event to pass on, or a violation (which stops the plugin). It holds
/// no file descriptors and reads no clock, so it can be tested without processes.
struct PluginSession: Sendable {
    /// What the session holds the plugin to.
    struct Terms: Sendable {
        var pluginID: String
        var verb: PluginVerb
        var negotiatedVersion: Int
        /// Conformance mode: stray stdout is a violation rather than a warning.
        var strict: Bool
        var maxLineBytes: Int
        /// Artifact paths must resolve inside this (already resolved) directory; nil: no check.
        var workspaceRoot: String?
        /// Resolves an artifact path (symbolic links, `..`) before it is checked against the workspace.
        var resolvePath: @Sendable (String) -> String
        /// The version plugin.json declares; a hello naming another is refused. nil: not checked.
        var pluginVersion: String? = nil
    }

    /// A protocol rule the plugin broke: the code, message and extra details of the error reported.
    struct Violation: Sendable, Hashable {
        var code: String
        var message: String
        var extra: [String: JSONValue] = [:]
        /// What the plugin's author should do.
        var hint: String?
    }

    /// What the supervisor must do after one observation.
    struct Reaction: Sendable {
        /// The event to pass on to observers.
        var event: PluginEvent?
        /// The violation just recorded: the plugin must be stopped if it is still running.
        var violation: Violation?
        /// Stop reading stdout: the stream can no longer be trusted (or the flood must end).
        var stopReadingStdout = false

        static let nothing = Reaction()
    }

    let terms: Terms
    private(set) var hello: Hello?
    /// The `result`, `describe` or `error` message that ended the exchange.
    private(set) var terminal: PluginToHostMessage?
    /// The first violation; everything after it on stdout is ignored.
    private(set) var violation: Violation?
    private(set) var strayLines = 0
    private(set) var messageCount = 0

    init(terms: Terms) {
        self.terms = terms
    }

    /// Whether stdout lines still matter (no violation yet).
    var isListening: Bool { violation == nil }

    /// Takes one observation from stdout and says what to do about it.
    mutating func observe(_ observation: StdoutObservation) -> Reaction {
        if case .overflow = observation {
            var reaction = record(Violation(
                code: HostErrorCode.lineTooLong,
                message: "plugin '\(terms.pluginID)' wrote a stdout line longer than the \(terms.maxLineBytes)-byte limit",
                extra: ["limit_bytes": .number(Double(terms.maxLineBytes))]))
            // Stop reading: the plugin gets EPIPE/SIGPIPE and the flood ends here.
            reaction.stopReadingStdout = true
            return reaction
        }
        guard isListening else { return .nothing }
        switch observation {
        case .overflow:
            return .nothing
        case .invalidUTF8:
            var reaction = record(
                HostErrorCode.invalidUTF8, "plugin '\(terms.pluginID)' wrote stdout that is not valid UTF-8")
            reaction.stopReadingStdout = true
            return reaction
        case .stray(let text):
            return stray(text)
        case .malformed(let reason, let line):
            return record(
                HostErrorCode.malformedMessage,
                "plugin '\(terms.pluginID)' wrote a malformed protocol message: \(reason)",
                extra: ["line": .string(String(line.prefix(200)))])
        case .message(let envelope):
            // A plugin refusing a request before hello answers in its own major; accept that error.
            let earlyRefusal = hello == nil && terminal == nil && envelope.message.type == "error"
            if envelope.version != terms.negotiatedVersion && !earlyRefusal {
                return record(
                    HostErrorCode.malformedMessage,
                    "plugin '\(terms.pluginID)' sent a protocol \(envelope.version) message after protocol \(terms.negotiatedVersion) was negotiated")
            }
            messageCount += 1
            return receive(envelope.message)
        }
    }

    /// What a plugin author should do about a stray line.
    static let strayHint = "stdout is for protocol messages only: write other output to stderr, or log through the SDK (its log call, or print to stderr)"

    private mutating func stray(_ text: String) -> Reaction {
        strayLines += 1
        let shown = String(text.prefix(200))
        let message = "plugin '\(terms.pluginID)' wrote a stray line to stdout: \"\(shown)\"\(text.count > 200 ? "…" : "")"
        let line = JSONValue.string(shown)
        if terms.strict {
            return record(HostErrorCode.strayOutput, message, extra: ["line": line], hint: Self.strayHint)
        }
        return Reaction(event: .warning(ErrorInfo(
            code: HostErrorCode.strayOutput, category: .protocol, message: message, details: ["line": line], hint: Self.strayHint)))
    }

    private mutating func receive(_ message: PluginToHostMessage) -> Reaction {
        let pluginID = terms.pluginID
        if let terminal {
            return record(
                HostErrorCode.outputAfterTerminal,
                "plugin '\(pluginID)' wrote a '\(message.type)' message after its terminal '\(terminal.type)' message")
        }
        switch terms.verb {
        case .describe:
            return receiveDuringDescribe(message)
        case .run, .cleanup:
            break
        }
        guard hello != nil else { return receiveBeforeHello(message) }
        switch message {
        case .hello:
            return record(HostErrorCode.malformedMessage, "plugin '\(pluginID)' sent a second 'hello'")
        case .artifact(let announcement):
            if let problem = artifactProblem(announcement.artifact, name: announcement.name) {
                return record(problem)
            }
            return Reaction(event: .message(message))
        case .result(let result):
            for (name, artifact) in result.outputs.sorted(by: { $0.key < $1.key }) {
                if let problem = artifactProblem(artifact, name: name) {
                    return record(problem)
                }
            }
            terminal = message
            return .nothing
        case .error:
            terminal = message
            return .nothing
        case .describe:
            return record(
                HostErrorCode.malformedMessage,
                "plugin '\(pluginID)' sent 'describe' during '\(terms.verb.rawValue)'")
        case .unknown:
            return .nothing
        case .log, .diagnostic, .progress, .heartbeat, .session:
            return Reaction(event: .message(message))
        }
    }

    private mutating func receiveDuringDescribe(_ message: PluginToHostMessage) -> Reaction {
        switch message {
        case .describe, .error:
            terminal = message
        case .unknown:
            break
        default:
            if message.isTerminal || hello == nil {
                return record(
                    HostErrorCode.malformedMessage,
                    "plugin '\(terms.pluginID)' answered 'describe' with a '\(message.type)' message")
            }
        }
        return .nothing
    }

    private mutating func receiveBeforeHello(_ message: PluginToHostMessage) -> Reaction {
        let pluginID = terms.pluginID
        switch message {
        case .hello(let value):
            guard value.plugin.id.lowercased() == pluginID.lowercased() else {
                return record(HostErrorCode.helloMismatch, "plugin '\(pluginID)' introduced itself as '\(value.plugin.id)'")
            }
            if let declared = terms.pluginVersion, value.plugin.version != declared {
                return record(
                    HostErrorCode.helloMismatch,
                    "plugin '\(pluginID)' introduced itself as version \(value.plugin.version), but its plugin.json says \(declared)",
                    hint: "the plugin's code and its manifest disagree: release them together")
            }
            guard value.protocol.version == terms.negotiatedVersion else {
                return record(
                    HostErrorCode.helloMismatch,
                    "plugin '\(pluginID)' answered with protocol \(value.protocol.version); the host asked for \(terms.negotiatedVersion)")
            }
            hello = value
            return Reaction(event: .message(message))
        case .error:
            // A plugin may refuse a request (bad request, unsupported version) before saying hello.
            terminal = message
            return .nothing
        default:
            return record(HostErrorCode.missingHello, "plugin '\(pluginID)' sent '\(message.type)' before 'hello'")
        }
    }

    private func artifactProblem(_ artifact: ArtifactRef, name: String) -> Violation? {
        guard let root = terms.workspaceRoot else { return nil }
        let resolved = terms.resolvePath(artifact.path)
        if resolved == root || resolved.hasPrefix(root + "/") { return nil }
        return Violation(
            code: HostErrorCode.artifactOutsideWorkspace,
            message: "plugin '\(terms.pluginID)' named artifact '\(name)' at \(artifact.path), which is outside the job workspace \(root)",
            extra: ["artifact": .string(name), "artifact_path": .string(artifact.path)])
    }

    private mutating func record(_ code: String, _ message: String, extra: [String: JSONValue] = [:], hint: String? = nil) -> Reaction {
        record(Violation(code: code, message: message, extra: extra, hint: hint))
    }

    /// Keeps the first violation only; later ones change nothing.
    private mutating func record(_ found: Violation) -> Reaction {
        guard violation == nil else { return .nothing }
        violation = found
        return Reaction(violation: found)
    }
}

import Foundation
import IMSPluginKit
import IMSProtocol

/// Example plugin written with the Swift SDK: a site `hello` phase and a `configure-dns` phase.
@main
struct ExampleSwiftPlugin: PhasePlugin {
    static let identity = PluginIdentity(id: "org.ims.example.swift", version: "1.0.0", vendor: "ims")
    static let phases = [
        PluginDescription.Phase(name: "hello", payloads: ["custom/v1"]),
        PluginDescription.Phase(name: "configure-dns", payloads: ["configure-dns/v1"]),
    ]

    static func run(_ context: PluginContext) async throws -> PhaseResult {
        switch context.request.phase {
        case "hello": return try await hello(context)
        case "configure-dns": return try configureDNS(context)
        default:
            throw PluginFailure(code: "x.example.unknown_phase", category: .config, message: "unknown phase '\(context.request.phase)'")
        }
    }

    static func hello(_ context: PluginContext) async throws -> PhaseResult {
        let greeting = context.config["greeting"]?.stringValue ?? "hello from swift"
        let stepSeconds = context.config["step_seconds"]?.numberValue ?? 0
        context.log(.info, greeting, fields: ["language": "swift"])
        context.progress("greet", .begin, title: "greeting", current: 0, total: 3, unit: .steps)
        for step in 1...3 {
            try context.checkCancellation()
            if stepSeconds > 0 { try? await Task.sleep(for: .seconds(stepSeconds)) }
            try context.checkCancellation()
            context.progress("greet", .report, current: Double(step), total: 3, unit: .steps)
        }
        let path = context.workspace.out + "/hello.txt"
        guard FileManager.default.createFile(atPath: path, contents: Data((greeting + "\n").utf8)) else {
            throw PluginFailure(code: "x.example.write_failed", category: .environment, message: "cannot write \(path)")
        }
        try "ran".write(toFile: context.workspace.state + "/hello.state", atomically: true, encoding: .utf8)
        context.progress("greet", .end)
        return PhaseResult(outputs: ["greeting": try PluginFiles.fileArtifact(path, mediaType: "text/plain")])
    }

    static func configureDNS(_ context: PluginContext) throws -> PhaseResult {
        guard let rootfs = context.request.inputs["rootfs"], rootfs.kind == .dir else {
            throw PluginFailure(code: "configure-dns.missing_rootfs", category: .config, message: "input 'rootfs' (a directory) is required")
        }
        let nameservers = context.config["nameservers"]?.arrayValue?.compactMap(\.stringValue) ?? []
        guard !nameservers.isEmpty else {
            throw PluginFailure(code: "configure-dns.no_nameservers", category: .config, message: "config.nameservers must list at least one address")
        }
        var lines = nameservers.map { "nameserver \($0)" }
        if let search = context.config["search"]?.arrayValue?.compactMap(\.stringValue), !search.isEmpty {
            lines.append("search " + search.joined(separator: " "))
        }
        if let options = context.config["options"]?.arrayValue?.compactMap(\.stringValue), !options.isEmpty {
            lines.append("options " + options.joined(separator: " "))
        }
        let etc = rootfs.path + "/etc"
        try FileManager.default.createDirectory(atPath: etc, withIntermediateDirectories: true)
        try (lines.joined(separator: "\n") + "\n").write(toFile: etc + "/resolv.conf", atomically: true, encoding: .utf8)
        context.log(.info, "wrote \(etc)/resolv.conf", fields: ["nameservers": .number(Double(nameservers.count))])
        return PhaseResult(outputs: ["rootfs": rootfs])
    }

    static func cleanup(_ context: PluginContext) async throws -> PhaseResult {
        try? FileManager.default.removeItem(atPath: context.workspace.state + "/hello.state")
        return PhaseResult()
    }
}

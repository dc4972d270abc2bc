import CIMSSystem
import Foundation
import Synchronization
import IMSPluginHost
import IMSProtocol

#if canImport(Glibc)
    import Glibc
#endif

/// Plugin host benchmarks: dispatch overhead against a direct spawn, and message ingest rate.
///
/// Usage: ims-benchmarks dispatch <noop-plugin-dir> [iterations]
///        ims-benchmarks ingest <noop-plugin-dir> [messages]
///        ims-benchmarks runner-load < plan.json   (scripts/bench-scale-out's load client; see ``RunnerLoad``)
@main
enum Benchmarks {
    static func main() async throws {
        ims_ignore_sigpipe()
        let arguments = CommandLine.arguments
        if arguments.count >= 3, arguments[1] == "engine" {
            try await EngineBenchmark.run(repositoryRoot: arguments[2], jobs: arguments.count > 3 ? Int(arguments[3]) ?? 20 : 20)
            return
        }
        if arguments.count == 2, arguments[1] == "runner-load" {
            try RunnerLoad.run()
            return
        }
        if arguments.count == 2, arguments[1] == "decode" {
            decodeMicro()
            return
        }
        guard arguments.count >= 3 else {
            FileHandle.standardError.write(Data("usage: ims-benchmarks dispatch|ingest <plugin-dir> [count]\n".utf8))
            exit(2)
        }
        let plugin = try PluginCatalog.resolve(PluginCatalog.inspect(directory: arguments[2], origin: .explicit))
        switch arguments[1] {
        case "dispatch":
            try await dispatch(plugin, iterations: arguments.count > 3 ? Int(arguments[3]) ?? 300 : 300)
        case "ingest":
            try await ingest(plugin, messages: arguments.count > 3 ? Int(arguments[3]) ?? 200_000 : 200_000)
        default:
            exit(2)
        }
    }

    static func dispatch(_ plugin: ResolvedPlugin, iterations: Int) async throws {
        let workspace = NSTemporaryDirectory() + "ims-bench-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: workspace) }
        let request = InvocationRequest(phase: "noop", workspaceRoot: workspace)
        // The same request bytes the host sends, for the direct spawn.
        let payload = PluginRequest(
            verb: .run, phase: "noop", payload: "custom/v1", protocol: ProtocolOffer(version: 1, features: WireFormat.hostFeatures),
            job: JobInfo(id: "bench"), deadline: WireFormat.timestamp(Date().addingTimeInterval(60)),
            workspace: PluginInvoker.workspace(root: workspace, step: "noop"), host: HostInfo(name: "bench", version: "0"))
        let line = Array(try WireFormat.encodeLine(HostEnvelope(message: .request(payload))))
        let environment = ["PATH=/usr/bin:/bin", "IMS_PLUGIN=1", "IMS_PROTOCOL=1", "IMS_PLUGIN_DIR=\(plugin.directory)"]

        var direct: [Double] = []
        var hosted: [Double] = []
        // Warm up both paths, then interleave so machine noise hits both equally.
        _ = try spawnDirect(plugin.entrypointPath, line, environment)
        _ = try await PluginInvoker.invoke(plugin, request)
        for _ in 0..<iterations {
            let start = ContinuousClock.now
            guard try spawnDirect(plugin.entrypointPath, line, environment) else { throw BenchError("direct spawn failed") }
            direct.append(milliseconds(start.duration(to: .now)))
            let hostStart = ContinuousClock.now
            let outcome = try await PluginInvoker.invoke(plugin, request)
            hosted.append(milliseconds(hostStart.duration(to: .now)))
            guard outcome.succeeded else { throw BenchError("hosted call failed: \(outcome.error?.description ?? "")") }
        }
        let directMedian = median(direct)
        let hostedMedian = median(hosted)
        print(String(format: "{\"iterations\":%d,\"direct_median_ms\":%.3f,\"host_median_ms\":%.3f,\"added_ms\":%.3f,\"direct_p90_ms\":%.3f,\"host_p90_ms\":%.3f}",
                     iterations, directMedian, hostedMedian, hostedMedian - directMedian, percentile(direct, 0.9), percentile(hosted, 0.9)))
    }

    static func ingest(_ plugin: ResolvedPlugin, messages: Int) async throws {
        let workspace = NSTemporaryDirectory() + "ims-bench-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: workspace) }
        let counter = CountingObserver()
        let request = InvocationRequest(phase: "logflood", config: ["count": .number(Double(messages))], workspaceRoot: workspace)
        let start = ContinuousClock.now
        let outcome = try await PluginInvoker.invoke(plugin, request, observer: counter)
        let seconds = milliseconds(start.duration(to: .now)) / 1000
        guard outcome.succeeded else { throw BenchError("logflood failed: \(outcome.error?.description ?? "")") }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let logs = counter.logs
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        print(String(format: "{\"messages\":%d,\"seconds\":%.3f,\"messages_per_second\":%.0f,\"host_cpu_seconds\":%.3f,\"host_peak_rss_mib\":%.1f}",
                     logs, seconds, Double(logs) / seconds, cpu, Double(usage.ru_maxrss) / 1024))
    }

    /// posix_spawn the entrypoint, write the request, read stdout to EOF, wait.
    static func spawnDirect(_ path: String, _ request: [UInt8], _ environment: [String]) throws -> Bool {
        var argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), strdup("run"), nil]
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        var input: Int32 = -1
        var output: Int32 = -1
        var errors: Int32 = -1
        guard ims_spawn(path, &argv, &envp, "/tmp", &pid, &input, &output, &errors) == 0 else { return false }
        _ = request.withUnsafeBytes { write(input, $0.baseAddress, $0.count) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        for fd in [output, errors] {
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count > 0 { continue }
                if count < 0, errno == EAGAIN || errno == EINTR {
                    _ = ims_wait_readable(fd, 1000)
                    continue
                }
                break
            }
        }
        close(input)
        close(output)
        close(errors)
        return ims_wait(pid) == 0
    }

    /// Per-message costs of the pieces of the ingest path.
    static func decodeMicro() {
        let line = Data(#"{"ims":1,"type":"log","data":{"level":"info","msg":"flood 12345"}}"#.utf8)
        let decoder = JSONDecoder()
        func time(_ label: String, _ body: () -> Void) {
            let start = ContinuousClock.now
            for _ in 0..<200_000 { body() }
            print(label, milliseconds(start.duration(to: .now)) / 200, "us/msg")
        }
        time("envelope decode") { _ = try? decoder.decode(PluginEnvelope.self, from: line) }
        time("JSONSerialization") { _ = try? JSONSerialization.jsonObject(with: line) }
        time("JSONValue decode") { _ = try? decoder.decode(JSONValue.self, from: line) }
        time("Date()") { _ = Date() }
        let bytes = Array(line)
        time("String(validating:)") { _ = String(validating: bytes, as: UTF8.self) }
        time("Data(bytes)") { _ = Data(bytes) }
    }

    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }

    static func median(_ values: [Double]) -> Double { percentile(values, 0.5) }

    static func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p + 0.5))]
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

final class CountingObserver: PluginEventObserver {
    private let count = Mutex(0)
    var logs: Int { count.withLock { $0 } }
    func receive(_ event: TimedPluginEvent) {
        if case .message(.log) = event.event { count.withLock { $0 += 1 } }
    }
}

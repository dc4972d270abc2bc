import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The load client of `scripts/bench-scale-out` part 2, without Python's interpreter lock: simulated job runners
/// POST reports to `ims serve` and one reader GETs job records, each on its own thread and kept-alive HTTP/1.1
/// connection, and every request's latency is measured from the first byte sent to the last byte read.
///
/// Usage: `ims-benchmarks runner-load < plan.json > result.json`, where the plan is
/// `{host, port, start_at (Unix seconds), duration, report_ms, get_ms, events, plugin_id,
///   runners: [{job_id, token}], read_ids: [job id]}` and the result is
/// `{runners: [{latencies_ms, sent, uncertain, failures, statuses_sent}], reader: {latencies_ms, failures}, cpu_seconds}`.
enum RunnerLoad {
    struct Plan: Decodable {
        struct Runner: Decodable {
            var jobID: String
            var token: String
            enum CodingKeys: String, CodingKey {
                case token
                case jobID = "job_id"
            }
        }
        var host: String
        var port: Int
        var startAt: Double
        var duration: Double
        var reportMS: Double
        var getMS: Double
        var events: Int
        var pluginID: String
        var runners: [Runner]
        var readIDs: [String]

        enum CodingKeys: String, CodingKey {
            case host, port, duration, events, runners
            case startAt = "start_at"
            case reportMS = "report_ms"
            case getMS = "get_ms"
            case pluginID = "plugin_id"
            case readIDs = "read_ids"
        }
    }

    struct RunnerResult: Encodable {
        var latenciesMS: [Double] = []
        var sent: [Int] = []
        var uncertain: [Int] = []
        var failures: [String] = []
        var statusesSent: [String] = []
        enum CodingKeys: String, CodingKey {
            case sent, uncertain, failures
            case latenciesMS = "latencies_ms"
            case statusesSent = "statuses_sent"
        }
    }

    struct ReaderResult: Encodable {
        var latenciesMS: [Double] = []
        var failures: [String] = []
        enum CodingKeys: String, CodingKey {
            case failures
            case latenciesMS = "latencies_ms"
        }
    }

    struct Result: Encodable {
        var runners: [RunnerResult]
        var reader: ReaderResult
        var cpuSeconds: Double
        enum CodingKeys: String, CodingKey {
            case runners, reader
            case cpuSeconds = "cpu_seconds"
        }
    }

    static let statuses = ["fetching_recipe", "building_image", "packaging_artifacts"]

    static func run() throws {
        let plan = try JSONDecoder().decode(Plan.self, from: FileHandle.standardInput.readDataToEndOfFile())
        let results = Mutex<[Int: RunnerResult]>([:])
        let readerResult = Mutex(ReaderResult())
        let cpuBefore = cpuSeconds()
        var threads: [Thread] = []
        let done = DispatchGroup()
        for (index, runner) in plan.runners.enumerated() {
            done.enter()
            let thread = Thread {
                let result = simulate(runner: runner, index: index, plan: plan)
                results.withLock { $0[index] = result }
                done.leave()
            }
            thread.stackSize = 1 << 20
            threads.append(thread)
        }
        done.enter()
        threads.append(Thread {
            let result = read(plan: plan)
            readerResult.withLock { $0 = result }
            done.leave()
        })
        for thread in threads { thread.start() }
        done.wait()
        let collected = results.withLock { value in (0..<plan.runners.count).map { value[$0] ?? RunnerResult() } }
        let result = Result(runners: collected, reader: readerResult.withLock { $0 }, cpuSeconds: cpuSeconds() - cpuBefore)
        FileHandle.standardOutput.write(try JSONEncoder().encode(result))
    }

    static func simulate(runner: Plan.Runner, index: Int, plan: Plan) -> RunnerResult {
        var result = RunnerResult()
        let connection = Connection(host: plan.host, port: plan.port)
        defer { connection.close() }
        let interval = plan.reportMS / 1000
        let endAt = plan.startAt + plan.duration
        // Runners are spread over the report interval, as real ones are.
        var nextAt = plan.startAt + interval * Double(index) / Double(max(1, plan.runners.count))
        var number = 0
        var report = 0
        while true {
            let now = Date().timeIntervalSince1970
            if now >= endAt { break }
            if nextAt > now { usleep(useconds_t((nextAt - now) * 1_000_000)) }
            let stamp = timestamp()
            let numbers = Array(number..<(number + plan.events))
            number += plan.events
            var events: [String] = []
            for n in numbers {
                let data = #"{"runner": \#(index), "n": \#(n), "level": "info", "message": "simulated runner \#(index): line \#(n) of the build log"}"#
                events.append(#"{"time": "\#(stamp)", "phase": "build-root", "plugin_id": "\#(plan.pluginID)", "kind": "log", "data": \#(jsonString(data))}"#)
            }
            var changes: [String] = []
            var host = ""
            let stage = min(2, Int((Date().timeIntervalSince1970 - plan.startAt) / plan.duration * 3))
            if result.statusesSent.count <= stage {
                let status = statuses[result.statusesSent.count]
                changes.append(#"{"status": "\#(status)", "time": "\#(stamp)"}"#)
                if report == 0 { host = #", "host": "sim-node-\#(index)""# }
                result.statusesSent.append(status)
            }
            let body = #"{"events": [\#(events.joined(separator: ", "))], "status_changes": [\#(changes.joined(separator: ", "))]\#(host)}"#
            let started = DispatchTime.now().uptimeNanoseconds
            switch connection.request(method: "POST", path: "/v3/jobs/\(runner.jobID)/runner/report", body: Array(body.utf8), token: runner.token) {
            case .success(let answer):
                result.latenciesMS.append(Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6)
                if answer.status == 200 {
                    result.sent += numbers
                } else {
                    result.failures.append("\(answer.status): \(String(decoding: answer.body.prefix(200), as: UTF8.self))")
                }
            case .failure(let error):
                result.failures.append(error.description)
                result.uncertain += numbers
            }
            report += 1
            nextAt += interval
            if nextAt < Date().timeIntervalSince1970 - interval { nextAt = Date().timeIntervalSince1970 }  // fell behind: no burst
        }
        return result
    }

    static func read(plan: Plan) -> ReaderResult {
        var result = ReaderResult()
        guard !plan.readIDs.isEmpty else { return result }
        let connection = Connection(host: plan.host, port: plan.port)
        defer { connection.close() }
        let interval = plan.getMS / 1000
        let endAt = plan.startAt + plan.duration
        var nextAt = plan.startAt
        var index = 0
        while Date().timeIntervalSince1970 < endAt {
            let now = Date().timeIntervalSince1970
            if nextAt > now { usleep(useconds_t((nextAt - now) * 1_000_000)) }
            let started = DispatchTime.now().uptimeNanoseconds
            switch connection.request(method: "GET", path: "/v3/jobs/\(plan.readIDs[index % plan.readIDs.count])", body: [], token: nil) {
            case .success(let answer):
                result.latenciesMS.append(Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6)
                if answer.status != 200 { result.failures.append("\(answer.status)") }
            case .failure(let error):
                result.failures.append(error.description)
            }
            index += 1
            nextAt = max(nextAt + interval, Date().timeIntervalSince1970 - interval)
        }
        return result
    }

    static func timestamp() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }

    /// `text` as a JSON string literal.
    static func jsonString(_ text: String) -> String {
        String(decoding: (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8), as: UTF8.self)
    }

    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }

    struct LoadError: Error, CustomStringConvertible {
        var description: String
    }

    /// One kept-alive HTTP/1.1 connection with blocking reads and writes (one thread owns it).
    final class Connection {
        let host: String
        let port: Int
        private var fd: Int32 = -1
        private var buffer: [UInt8] = []

        init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        func close() {
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
        }

        private func connect() -> Bool {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return false }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            var timeout = timeval(tv_sec: 30, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET, host, &address.sin_addr)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if connected != 0 { close() }
            buffer.removeAll()
            return connected == 0
        }

        struct Answer {
            var status: Int
            var body: [UInt8]
        }

        func request(method: String, path: String, body: [UInt8], token: String?) -> Swift.Result<Answer, LoadError> {
            if fd < 0, !connect() { return .failure(LoadError(description: "connect: \(String(cString: strerror(errno)))")) }
            var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nContent-Length: \(body.count)\r\n"
            if !body.isEmpty { head += "Content-Type: application/json\r\n" }
            if let token { head += "Authorization: Bearer \(token)\r\n" }
            head += "\r\n"
            let bytes = Array(head.utf8) + body
            var written = 0
            while written < bytes.count {
                let count = bytes[written...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if count <= 0 {
                    close()
                    return .failure(LoadError(description: "send: \(String(cString: strerror(errno)))"))
                }
                written += count
            }
            // Headers, then Content-Length bytes of body.
            var headerEnd: Int?
            while headerEnd == nil {
                if let end = find(Array("\r\n\r\n".utf8)) { headerEnd = end; break }
                if !fill() {
                    close()
                    return .failure(LoadError(description: "no answer (connection closed)"))
                }
            }
            guard let end = headerEnd else { return .failure(LoadError(description: "no headers")) }
            let headers = String(decoding: buffer[0..<end], as: UTF8.self)
            let lines = headers.split(separator: "\r\n")
            let status = lines.first.flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Int($0) } ?? 0
            var length = 0
            for line in lines.dropFirst() where line.lowercased().hasPrefix("content-length:") {
                length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
            }
            let bodyStart = end + 4
            while buffer.count < bodyStart + length {
                if !fill() {
                    close()
                    return .failure(LoadError(description: "connection closed in the body"))
                }
            }
            let answer = Answer(status: status, body: Array(buffer[bodyStart..<(bodyStart + length)]))
            buffer.removeFirst(bodyStart + length)
            return .success(answer)
        }

        private func find(_ needle: [UInt8]) -> Int? {
            guard buffer.count >= needle.count else { return nil }
            for start in 0...(buffer.count - needle.count) where buffer[start] == needle[0] && Array(buffer[start..<(start + needle.count)]) == needle {
                return start
            }
            return nil
        }

        private func fill() -> Bool {
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return false }
            buffer += chunk[0..<count]
            return true
        }
    }
}

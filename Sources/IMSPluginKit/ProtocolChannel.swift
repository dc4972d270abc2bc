import CIMSSystem
import Foundation
import IMSProtocol
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The plugin's end of the protocol: a private duplicate of the original stdout.
///
/// On creation fd 1 is pointed at stderr, so a stray `print` (or a child tool) can never
/// corrupt the message stream. Every message is written whole with `write(2)`: no buffering.
final class ProtocolChannel: Sendable {
    private let fd: Int32
    private struct Writer {
        var sequence = 0
        let encoder = WireFormat.makeEncoder()
    }

    /// The last sequence number sent and the encoder; held while a line is written, so lines never interleave.
    private let writer = Mutex(Writer())

    init() {
        let taken = ims_take_protocol_stdout()
        fd = taken >= 0 ? taken : 1
    }

    /// Writes one message line; returns false when the host is gone.
    @discardableResult
    func send(_ message: PluginToHostMessage) -> Bool {
        writer.withLock { writer in
            writer.sequence += 1
            let envelope = PluginEnvelope(seq: writer.sequence, message: message)
            guard let line = try? WireFormat.encodeLine(envelope, encoder: writer.encoder) else { return false }
            return Self.writeAll(line, to: fd)
        }
    }

    private static func writeAll(_ line: Data, to fd: Int32) -> Bool {
        line.withUnsafeBytes { raw -> Bool in
            var offset = 0
            while offset < raw.count {
                let written = write(fd, raw.baseAddress?.advanced(by: offset), raw.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0, errno == EINTR {
                    continue
                } else {
                    return false
                }
            }
            return true
        }
    }
}

/// Reads newline-terminated lines from stdin with a length cap. Used by one reader task only.
final class StdinLineReader: @unchecked Sendable {
    private var buffer: [UInt8] = []
    private let limit: Int

    init(limit: Int = WireFormat.maxLineBytes) { self.limit = limit }

    /// The next line without its newline; nil at EOF (or when a line passes the cap).
    func nextLine() -> [UInt8]? {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                return line
            }
            if buffer.count > limit { return nil }
            let count = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if count > 0 {
                buffer.append(contentsOf: chunk[..<count])
            } else if count < 0, errno == EINTR {
                continue
            } else {
                if buffer.isEmpty { return nil }
                let line = buffer
                buffer.removeAll()
                return line
            }
        }
    }
}

/// Splits a byte stream into `\n`-terminated lines with a hard cap on line length.
///
/// Only `\n` separates lines: U+2028 and friends inside JSON strings never split a message.
struct LineFramer {
    enum Event {
        case line([UInt8])
        /// The current line passed the cap; the framer discards input until the next newline.
        case overflow(bytesSeen: Int)
    }

    let maxLineBytes: Int
    private var buffer: [UInt8] = []
    private var discarding = false
    private var discardedBytes = 0

    init(maxLineBytes: Int) {
        self.maxLineBytes = maxLineBytes
        buffer.reserveCapacity(min(maxLineBytes, 64 * 1024))
    }

    /// Feeds a chunk; calls `emit` for every complete line (without its newline) and overflow.
    mutating func feed(_ chunk: UnsafeBufferPointer<UInt8>, _ emit: (Event) -> Void) {
        var start = 0
        let count = chunk.count
        while start < count {
            var newline = -1
            var index = start
            while index < count {
                if chunk[index] == 0x0A {
                    newline = index
                    break
                }
                index += 1
            }
            let end = newline >= 0 ? newline : count
            if discarding {
                discardedBytes += end - start
            } else if buffer.count + (end - start) > maxLineBytes {
                discarding = true
                discardedBytes = buffer.count + (end - start)
                buffer.removeAll(keepingCapacity: true)
                emit(.overflow(bytesSeen: discardedBytes))
            } else if newline >= 0, buffer.isEmpty {
                emit(.line(Array(chunk[start..<end])))
            } else {
                buffer.append(contentsOf: chunk[start..<end])
            }
            if newline >= 0 {
                if discarding {
                    discarding = false
                    discardedBytes = 0
                } else if !buffer.isEmpty {
                    emit(.line(buffer))
                    buffer.removeAll(keepingCapacity: true)
                }
                start = newline + 1
            } else {
                start = count
            }
        }
    }

    /// Returns what is left after EOF (a final line without a newline), if anything.
    mutating func finish() -> [UInt8]? {
        defer { buffer.removeAll() }
        if discarding || buffer.isEmpty { return nil }
        return buffer
    }
}

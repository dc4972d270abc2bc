import CLibArchive

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A fixed-size buffer of decompressed archive bytes.
final class ByteChunk {
    let buffer: UnsafeMutableRawPointer
    let capacity: Int
    var used = 0

    init(capacity: Int) {
        self.capacity = capacity
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
    }

    deinit { buffer.deallocate() }
}

/// Decompresses a compressed archive stream (gzip, bzip2, xz or zstd, as detected by libarchive's
/// filters with the `raw` format) on its own thread, handing the plain tar stream over in bounded
/// chunks (4 × 1 MiB), so decompression overlaps with parsing and with file writes.
///
/// A second libarchive handle parses the plain stream through ``ChunkSource``. If the consumer stops,
/// the producing thread notices at its next hand-off and ends, so a bomb cannot run ahead of the
/// limits that the consumer enforces.
final class Decompressor {
    /// The libarchive handle with the filters and the `raw` format, owned by the decompressing thread
    /// from ``start()`` until it ends.
    private let handle: OpaquePointer
    let channel: HandOff<ByteChunk>
    private var thread: WorkerThread?

    /// libarchive's message if decompression failed.
    var failure: String? { channel.failure }

    static let chunkCount = 4
    static let chunkSize = 1 << 20

    /// Takes ownership of `handle`, which must have been opened and positioned at its single raw entry.
    init(handle: OpaquePointer) {
        self.handle = handle
        channel = HandOff(items: (0..<Self.chunkCount).map { _ in ByteChunk(capacity: Self.chunkSize) })
    }

    /// Starts the decompressing thread.
    func start() throws(POSIXErrorNumber) {
        thread = try WorkerThread { [self] in run() }
    }

    /// Stops the thread (if it is still producing) and waits for it.
    func stop() {
        channel.stopConsumer()
        thread?.join()
        thread = nil
    }

    deinit {
        stop()
        archive_read_free(handle)
    }

    private func run() {
        var block: UnsafeRawPointer?
        var length = 0
        var offset: la_int64_t = 0
        guard var chunk = channel.acquire() else { return }
        while true {
            let status = archive_read_data_block(handle, &block, &length, &offset)
            if status == ARCHIVE_EOF { break }
            if status < ARCHIVE_WARN {
                let message = archive_error_string(handle).map { String(cString: $0) } ?? "decompression failed"
                channel.close(cancelling: false, failure: message)
                return
            }
            guard var source = block, length > 0 else { continue }
            var remaining = length
            while remaining > 0 {
                if chunk.used == chunk.capacity {
                    guard channel.submit(chunk), let next = channel.acquire() else { return }
                    chunk = next
                    chunk.used = 0
                }
                let count = min(remaining, chunk.capacity - chunk.used)
                (chunk.buffer + chunk.used).copyMemory(from: source, byteCount: count)
                chunk.used += count
                source += count
                remaining -= count
            }
        }
        if chunk.used > 0 { _ = channel.submit(chunk) }
        channel.close(cancelling: false)
    }
}

/// The read side of a ``Decompressor``'s hand-off, as a libarchive client (`archive_read_open`
/// callbacks): each callback returns the next chunk, recycling the previous one, which libarchive no
/// longer needs at that point.
final class ChunkSource {
    let decompressor: Decompressor
    private var current: ByteChunk?

    init(decompressor: Decompressor) {
        self.decompressor = decompressor
    }

    /// The next chunk's bytes, or 0 at the end, or -1 if decompression failed.
    func read(_ buffer: UnsafeMutablePointer<UnsafeRawPointer?>?) -> Int {
        if let current {
            decompressor.channel.recycle(current)
            self.current = nil
        }
        guard let chunk = decompressor.channel.next() else {
            return decompressor.failure == nil ? 0 : -1
        }
        current = chunk
        buffer?.pointee = UnsafeRawPointer(chunk.buffer)
        return chunk.used
    }
}

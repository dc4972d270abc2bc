import Crypto
import Foundation

/// md5 and sha256 of a byte stream, computed together in one pass.
struct Digester {
    private var md5 = Insecure.MD5()
    private var sha256 = SHA256()

    /// The chunk size used for every streaming read (1 MiB).
    static let chunkSize = 1 << 20

    mutating func update(_ buffer: UnsafeRawBufferPointer) {
        md5.update(bufferPointer: buffer)
        sha256.update(bufferPointer: buffer)
    }

    /// Lowercase hex md5 and sha256.
    func finalize() -> (md5: String, sha256: String) {
        (Self.hex(md5.finalize()), Self.hex(sha256.finalize()))
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Digests of a whole file, read in 1 MiB chunks.
    static func digests(ofFile path: String) throws -> (md5: String, sha256: String, size: Int64) {
        let file = try POSIXFile.open(path, flags: O_RDONLY)
        var digester = Digester()
        var size: Int64 = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = try file.read(into: buffer)
            if count == 0 { break }
            digester.update(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            size += Int64(count)
        }
        let (md5, sha256) = digester.finalize()
        return (md5, sha256, size)
    }
}

/// Digests of files, for callers outside the store (e.g. a store plugin's host computing what it hands over).
public enum ArtifactDigests {
    /// Lowercase hex md5 and sha256 and the size of a file, in one pass.
    public static func ofFile(_ path: String) throws(StoreError) -> (md5: String, sha256: String, size: Int64) {
        do {
            return try Digester.digests(ofFile: path)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError.io(operation: "read", path: path, message: String(describing: error))
        }
    }
}

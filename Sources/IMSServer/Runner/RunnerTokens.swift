import Crypto
import Foundation
import IMSCatalog

/// Remote runners' tokens: 256 random bits each, scoped to one job; the catalog keeps only their SHA-256.
public enum RunnerTokens {
    /// A new token (`imsr_` and 43 URL-safe base64 characters).
    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return "imsr_" + Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// The hex SHA-256 of a token.
    public static func digest(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Why a runner request is refused, or nil when its token is the job's current one and still valid.
    ///
    /// - Parameters:
    ///   - authorization: the request's `Authorization` header.
    ///   - stored: the job's token record (nil: none, or revoked).
    static func rejection(authorization: String?, stored: RunnerTokenRecord?, now: Date = Date()) -> String? {
        guard let authorization, authorization.lowercased().hasPrefix("bearer ") else {
            return "no runner token: send 'Authorization: Bearer <the job's runner token>'"
        }
        let token = authorization.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces)
        guard let stored else { return "the job has no valid runner token (it ended, or another runner took it over)" }
        // Compared as digests, byte by byte without an early exit.
        let offered = Array(digest(token).utf8)
        let expected = Array(stored.sha256.utf8)
        guard offered.count == expected.count, zip(offered, expected).reduce(0, { $0 | ($1.0 ^ $1.1) }) == 0 else {
            return "the runner token is not this job's"
        }
        guard now < stored.expires else { return "the runner token expired at \(IMSTimestamp.string(stored.expires))" }
        return nil
    }
}

import Foundation

/// A public key record (IMS `PublicKeyRecord`): an `authorized_keys` line jobs install for SSH access.
public struct PublicKeyRecord: Codable, Hashable, Sendable, Identifiable, RecordJSONWritable {
    /// Generated at creation.
    public var id: UUID
    /// When the record was created (microsecond precision, UTC).
    public var created: Date
    /// A name for people. Never empty.
    public var name: String
    /// The raw `authorized_keys` line. Never empty.
    public var publicKey: String
    /// When the record was soft-deleted; `nil` for live records.
    public var deleted: Date?

    /// Creates a record.
    public init(id: UUID = UUID(), created: Date = IMSTimestamp.now(), name: String, publicKey: String, deleted: Date? = nil) {
        self.id = id
        self.created = created
        self.name = name
        self.publicKey = publicKey
        self.deleted = deleted
    }

    enum CodingKeys: String, CodingKey {
        case id, created, name, deleted
        case publicKey = "public_key"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decodeUUID(forKey: .id)
        created = try c.decodeTimestamp(forKey: .created)
        name = try c.decode(String.self, forKey: .name)
        publicKey = try c.decode(String.self, forKey: .publicKey)
        deleted = try c.decodeTimestampIfPresent(forKey: .deleted)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeUUID(id, forKey: .id)
        try c.encodeTimestamp(created, forKey: .created)
        try c.encode(name, forKey: .name)
        try c.encode(publicKey, forKey: .publicKey)
        if let deleted { try c.encodeTimestamp(deleted, forKey: .deleted) }
    }

    public func writeJSON(to writer: inout RecordJSONWriter) {
        writer.beginObject()
        writer.fieldKey("created")
        writer.timestamp(created)
        if let deleted {
            writer.fieldKey("deleted")
            writer.timestamp(deleted)
        }
        writer.fieldKey("id")
        writer.uuid(id)
        writer.fieldKey("name")
        writer.string(name)
        writer.fieldKey("public_key")
        writer.string(publicKey)
        writer.endObject()
    }

    /// Checks that `line` looks like one `authorized_keys` entry: optional options, a key type
    /// (`ssh-rsa`, `ssh-ed25519`, `ssh-dss`, `ecdsa-sha2-*`, `sk-…@openssh.com`), a base64 body whose decoded
    /// form starts with the same type name, and an optional comment.
    ///
    /// - Returns: the line with surrounding whitespace removed.
    /// - Throws: ``CatalogError/invalidField(field:reason:)`` saying what is wrong.
    public static func validateAuthorizedKey(_ line: String) throws(CatalogError) -> String {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw CatalogError.invalidField(field: "public_key", reason: "is empty") }
        guard !trimmed.contains("\n") else {
            throw CatalogError.invalidField(field: "public_key", reason: "must be a single authorized_keys line")
        }
        let fields = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let typeIndex = fields.firstIndex(where: isKeyType) else {
            throw CatalogError.invalidField(
                field: "public_key",
                reason: "no key type found (expected ssh-rsa, ssh-ed25519, ecdsa-sha2-nistp256/384/521, or sk-…@openssh.com)")
        }
        guard typeIndex + 1 < fields.count else {
            throw CatalogError.invalidField(field: "public_key", reason: "the \(fields[typeIndex]) key has no base64 body")
        }
        let body = fields[typeIndex + 1]
        guard let decoded = Data(base64Encoded: body), decoded.count >= 4 else {
            throw CatalogError.invalidField(field: "public_key", reason: "the key body is not base64")
        }
        // The wire format starts with a uint32 length and the key type name.
        let bytes = [UInt8](decoded)
        let length = Int(bytes[0]) << 24 | Int(bytes[1]) << 16 | Int(bytes[2]) << 8 | Int(bytes[3])
        guard length > 0, 4 + length <= bytes.count,
            String(decoding: bytes[4..<(4 + length)], as: UTF8.self) == fields[typeIndex]
        else {
            throw CatalogError.invalidField(field: "public_key", reason: "the key body does not hold a \(fields[typeIndex]) key")
        }
        return trimmed
    }

    private static func isKeyType(_ field: String) -> Bool {
        ["ssh-rsa", "ssh-ed25519", "ssh-dss"].contains(field) || field.hasPrefix("ecdsa-sha2-")
            || (field.hasPrefix("sk-") && field.hasSuffix("@openssh.com"))
    }
}

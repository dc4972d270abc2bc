import Foundation
import GRDB

/// Shared helpers for reading rows and writing columns.
enum Columns {
    static func uuid(_ text: String, kind: CatalogError.RecordKind) throws -> UUID {
        guard let uuid = UUIDKey(text: text)?.uuid else {
            throw CatalogError.corruptRow(kind: kind, id: text, reason: "the id is not a UUID")
        }
        return uuid
    }

    static func optionalUUID(_ text: String?, kind: CatalogError.RecordKind, id: String, field: String) throws -> UUID? {
        guard let text else { return nil }
        guard let uuid = UUID(uuidString: text) else {
            throw CatalogError.corruptRow(kind: kind, id: id, reason: "\(field) '\(text)' is not a UUID")
        }
        return uuid
    }

    static func enumeration<E: RecordEnumeration>(_ raw: String, _ type: E.Type, kind: CatalogError.RecordKind, id: String) throws -> E {
        guard let value = E(rawValue: raw) else {
            throw CatalogError.corruptRow(kind: kind, id: id, reason: "unknown \(E.fieldName) '\(raw)'")
        }
        return value
    }

    static func link(path: String?, etag: String?, type: String?, kind: CatalogError.RecordKind, id: String) throws -> ArtifactLink? {
        guard let path else { return nil }
        guard let typeText = type, let linkType = ArtifactLinkType(rawValue: typeText) else {
            throw CatalogError.corruptRow(kind: kind, id: id, reason: "unknown link type '\(type ?? "")'")
        }
        return ArtifactLink(path: path, etag: etag ?? "", type: linkType)
    }

    static func json<T: Decodable>(_ text: String, _ type: T.Type, kind: CatalogError.RecordKind, id: String, field: String) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(text.utf8))
        } catch {
            throw CatalogError.corruptRow(kind: kind, id: id, reason: "\(field) is not valid JSON (\(error))")
        }
    }

    static func jsonText<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func micros(_ date: Date) -> Int64 { IMSTimestamp.microseconds(date) }

    static func date(_ micros: Int64) -> Date { IMSTimestamp.date(microseconds: micros) }

    static func optionalDate(_ micros: Int64?) -> Date? { micros.map(IMSTimestamp.date(microseconds:)) }

    /// `AND deleted IS NULL` and friends.
    static func scopeClause(_ scope: RecordScope) -> String {
        switch scope {
        case .live: "deleted IS NULL"
        case .deleted: "deleted IS NOT NULL"
        case .any: "1"
        }
    }

    /// Throws ``CatalogError/linkInUse(kind:link:otherID:)`` when another live record of the table uses `link`.
    static func checkLinkUnique(_ db: Database, table: String, kind: CatalogError.RecordKind, link: ArtifactLink, excluding id: String) throws {
        if let other = try String.fetchOne(
            try db.cachedStatement(sql: "SELECT id FROM \(table) WHERE link_path = ? AND deleted IS NULL AND id <> ? LIMIT 1"),
            arguments: [link.path, id])
        {
            throw CatalogError.linkInUse(kind: kind, link: link.path, otherID: other)
        }
    }

    static func checkName(_ name: String) throws {
        guard !name.isEmpty else { throw CatalogError.invalidField(field: "name", reason: "must not be empty") }
    }
}

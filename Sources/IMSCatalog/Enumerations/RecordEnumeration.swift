/// A closed set of string values stored in records (`arch`, `recipe_type`, `linux_distribution`, …).
///
/// Conforming enums get `parse(_:)`, which refuses unknown values with an error listing the allowed ones.
public protocol RecordEnumeration: RawRepresentable, CaseIterable, Codable, Hashable, Sendable
where RawValue == String {
    /// The record field this enumeration describes, as IMS names it (`arch`, `job_type`, …).
    static var fieldName: String { get }
}

extension RecordEnumeration {
    /// Every allowed value, in declaration order.
    public static var allowedValues: [String] { allCases.map(\.rawValue) }

    /// Parses a value given by a user or read from a file.
    ///
    /// - Parameter value: the raw string, compared exactly (values are lowercase).
    /// - Returns: the matching case.
    /// - Throws: ``CatalogError/invalidValue(field:value:allowed:)`` listing the allowed values.
    public static func parse(_ value: String) throws(CatalogError) -> Self {
        guard let parsed = Self(rawValue: value) else {
            throw CatalogError.invalidValue(field: fieldName, value: value, allowed: allowedValues)
        }
        return parsed
    }
}

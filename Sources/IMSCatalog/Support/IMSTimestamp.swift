import Foundation

/// Record timestamps: microsecond precision, UTC, written as `2025-01-01T12:00:00.123456+00:00`.
///
/// IMS serialises `created` with Python's `isoformat()`. The catalog stores timestamps as whole microseconds
/// since the Unix epoch, so a `Date` read back equals the one written when it came from ``now()``.
public enum IMSTimestamp {
    /// The current time, truncated to whole microseconds.
    public static func now() -> Date {
        date(microseconds: microseconds(Date()))
    }

    /// Whole microseconds since 1970-01-01T00:00:00Z (rounded to the nearest microsecond), clamped to what an
    /// `Int64` holds (about ±292,000 years), so no date, however far off, can trap.
    public static func microseconds(_ date: Date) -> Int64 {
        let value = (date.timeIntervalSince1970 * 1_000_000).rounded()
        if value.isNaN { return 0 }
        return Int64(exactly: value) ?? (value < 0 ? Int64.min : Int64.max)
    }

    /// The date `microseconds` after the Unix epoch.
    public static func date(microseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(microseconds) / 1_000_000)
    }

    /// Formats a date as `YYYY-MM-DDTHH:MM:SS.ffffff+00:00` (UTC).
    public static func string(_ date: Date) -> String {
        string(microseconds: microseconds(date))
    }

    /// Formats whole microseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.ffffff+00:00` (UTC).
    public static func string(microseconds: Int64) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        append(microseconds: microseconds, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The length of a formatted timestamp, `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`.
    static let formattedLength = 32

    /// Appends the formatted timestamp to a UTF-8 buffer.
    static func append(microseconds: Int64, to bytes: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: formattedLength) { buffer in
            if let base = buffer.baseAddress {
                format(microseconds: microseconds, into: base)
                bytes.append(contentsOf: UnsafeBufferPointer(start: base, count: formattedLength))
            }
        }
    }

    /// Writes exactly ``formattedLength`` bytes (years 0–9999).
    static func format(microseconds: Int64, into out: UnsafeMutablePointer<UInt8>) {
        let (seconds, fraction) = floorDivide(microseconds, 1_000_000)
        let (days, secondOfDay) = floorDivide(seconds, 86_400)
        let (year, month, day) = civil(fromDays: days)
        func digits(_ value: Int64, _ width: Int, at offset: Int) {
            var v = value
            var index = offset + width - 1
            while index >= offset {
                out[index] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: v % 10)
                v /= 10
                index -= 1
            }
        }
        digits(year, 4, at: 0)
        out[4] = UInt8(ascii: "-")
        digits(month, 2, at: 5)
        out[7] = UInt8(ascii: "-")
        digits(day, 2, at: 8)
        out[10] = UInt8(ascii: "T")
        digits(secondOfDay / 3600, 2, at: 11)
        out[13] = UInt8(ascii: ":")
        digits(secondOfDay / 60 % 60, 2, at: 14)
        out[16] = UInt8(ascii: ":")
        digits(secondOfDay % 60, 2, at: 17)
        out[19] = UInt8(ascii: ".")
        digits(fraction, 6, at: 20)
        out[26] = UInt8(ascii: "+")
        out[27] = UInt8(ascii: "0")
        out[28] = UInt8(ascii: "0")
        out[29] = UInt8(ascii: ":")
        out[30] = UInt8(ascii: "0")
        out[31] = UInt8(ascii: "0")
    }

    /// Parses `YYYY-MM-DD[T| ]HH:MM:SS[.f…][Z|±HH:MM]`; a missing offset means UTC.
    ///
    /// - Returns: the date, or `nil` when the text is not such a timestamp.
    public static func parse(_ text: String) -> Date? {
        parseMicroseconds(text).map { date(microseconds: $0) }
    }

    /// Parses a timestamp into whole microseconds since the epoch (see ``parse(_:)``).
    public static func parseMicroseconds(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        var i = 0
        func number(_ count: Int) -> Int64? {
            guard i + count <= b.count else { return nil }
            var value: Int64 = 0
            for _ in 0..<count {
                let c = b[i]
                guard c >= 48 && c <= 57 else { return nil }
                value = value * 10 + Int64(c - 48)
                i += 1
            }
            return value
        }
        func expect(_ chars: String) -> Bool {
            guard i < b.count, chars.utf8.contains(b[i]) else { return false }
            i += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
            expect("T t"), let hour = number(2), expect(":"), let minute = number(2), expect(":"),
            let second = number(2)
        else { return nil }
        guard (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var fraction: Int64 = 0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                if digits < 6 { fraction = fraction * 10 + Int64(b[i] - 48) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 6) { fraction *= 10 }
        }
        var offsetSeconds: Int64 = 0
        if i < b.count {
            if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
                i += 1
            } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
                let sign: Int64 = b[i] == UInt8(ascii: "-") ? -1 : 1
                i += 1
                guard let oh = number(2) else { return nil }
                _ = expect(":")
                guard let om = number(2) else { return nil }
                offsetSeconds = sign * (oh * 3600 + om * 60)
            }
        }
        guard i == b.count else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        return seconds * 1_000_000 + fraction
    }

    // MARK: - Calendar arithmetic (proleptic Gregorian, after Howard Hinnant's algorithms)

    private static func floorDivide(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
        var q = a / b
        var r = a % b
        if r < 0 {
            q -= 1
            r += b
        }
        return (q, r)
    }

    private static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    private static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}

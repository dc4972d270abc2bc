@testable import IMSPluginHost
import Testing

@Suite("Line framing")
struct LineFramerTests {
    func lines(_ chunks: [String], cap: Int = 1 << 20) -> ([String], Int) {
        var framer = LineFramer(maxLineBytes: cap)
        var out: [String] = []
        var overflows = 0
        for chunk in chunks {
            Array(chunk.utf8).withUnsafeBufferPointer { buffer in
                framer.feed(buffer) { event in
                    switch event {
                    case .line(let bytes): out.append(String(decoding: bytes, as: UTF8.self))
                    case .overflow: overflows += 1
                    }
                }
            }
        }
        if let rest = framer.finish() { out.append(String(decoding: rest, as: UTF8.self)) }
        return (out, overflows)
    }

    @Test("splits on newlines across chunk boundaries")
    func split() {
        #expect(lines(["ab", "c\nde", "f\n\ng"]).0 == ["abc", "def", "", "g"])
    }

    @Test("U+2028 inside a line never splits it")
    func unicodeSeparators() {
        #expect(lines(["{\"m\":\"a\u{2028}b\u{0085}c\r\"}\n"]).0.count == 1)
    }

    @Test("a line over the cap is reported once and skipped")
    func overflow() {
        let (out, overflows) = lines([String(repeating: "x", count: 10), String(repeating: "y", count: 10), "\nok\n"], cap: 15)
        #expect(overflows == 1)
        #expect(out == ["ok"])
    }
}

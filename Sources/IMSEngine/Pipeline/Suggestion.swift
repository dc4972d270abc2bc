/// "Did you mean …?": the known word closest to a misspelt one.
public enum Suggestion {
    /// The candidate closest to `word` (ignoring case) when it is close enough to be a likely typo: at most one edit
    /// for words of up to four characters, two up to eight, three beyond (an edit is an insertion, deletion,
    /// substitution or swap of two neighbours). `nil` when `word` is itself a candidate, or nothing is close; of equally
    /// close candidates the first one wins.
    public static func closest<Candidates: Sequence<String>>(to word: String, among candidates: Candidates) -> String? {
        let target = Array(word.lowercased())
        guard !target.isEmpty else { return nil }
        let limit = target.count <= 4 ? 1 : (target.count <= 8 ? 2 : 3)
        var best: (candidate: String, distance: Int)?
        for candidate in candidates {
            if candidate == word { return nil }
            let distance = editDistance(target, Array(candidate.lowercased()))
            if distance <= limit, distance < (best?.distance ?? Int.max) {
                best = (candidate, distance)
            }
        }
        return best?.candidate
    }

    /// `"; did you mean 'X'?"` for the closest candidate, or an empty string.
    public static func phrase<Candidates: Sequence<String>>(for word: String, among candidates: Candidates) -> String {
        closest(to: word, among: candidates).map { "; did you mean '\($0)'?" } ?? ""
    }

    /// The optimal string alignment distance: Levenshtein plus the swap of two neighbouring characters.
    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous2 = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                var value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    value = min(value, previous2[j - 2] + 1)
                }
                current[j] = value
            }
            (previous2, previous, current) = (previous, current, previous2)
        }
        return previous[b.count]
    }
}

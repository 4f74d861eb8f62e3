//! A Metaphone-style phonetic key, written here rather than pulled in: it
//! is ~100 lines, has no allocation beyond the key, and we want its rules
//! to follow how a recogniser splits medical words ("met for men" and
//! "metformin" share the key `MTFRMN`). It follows Lawrence Philips'
//! original Metaphone rules (1990) for English, without Double Metaphone's
//! alternate keys for non-English names.

/// The phonetic key of a word or of several words run together.
pub fn key(text: &str) -> String {
    let w: Vec<u8> = text
        .bytes()
        .filter(u8::is_ascii_alphabetic)
        .map(|b| b.to_ascii_lowercase())
        .collect();
    let mut out = String::with_capacity(w.len());
    if w.is_empty() {
        return out;
    }
    let at = |i: usize| -> u8 { w.get(i).copied().unwrap_or(0) };
    let vowel = |c: u8| matches!(c, b'a' | b'e' | b'i' | b'o' | b'u');
    let mut i = 0;
    match (at(0), at(1)) {
        (b'a', b'e') | (b'g', b'n') | (b'k', b'n') | (b'p', b'n') | (b'w', b'r') => i = 1,
        (b'x', _) => {
            out.push('S');
            i = 1;
        }
        (b'w', b'h') => {
            out.push('W');
            i = 2;
        }
        _ => {}
    }
    while i < w.len() {
        let c = w[i];
        let prev = if i > 0 { w[i - 1] } else { 0 };
        let next = at(i + 1);
        if c == prev && c != b'c' {
            i += 1;
            continue;
        }
        match c {
            b'a' | b'e' | b'i' | b'o' | b'u' => {
                if i == 0 {
                    out.push('A');
                }
            }
            b'b' => {
                if !(prev == b'm' && i + 1 == w.len()) {
                    out.push('B');
                }
            }
            b'c' => {
                if next == b'i' && at(i + 2) == b'a' || next == b'h' {
                    if prev == b's' && next == b'h' {
                        out.push('K');
                    } else {
                        out.push('X');
                    }
                } else if matches!(next, b'i' | b'e' | b'y') {
                    if prev != b's' {
                        out.push('S');
                    }
                } else if next != b'k' || prev == b'c' {
                    out.push('K');
                } else {
                    out.push('K');
                    i += 1;
                }
            }
            b'd' => {
                if next == b'g' && matches!(at(i + 2), b'e' | b'i' | b'y') {
                    out.push('J');
                    i += 1;
                } else {
                    out.push('T');
                }
            }
            b'g' => {
                if next == b'h' && !(i + 2 >= w.len() || vowel(at(i + 2))) {
                    // silent "gh" as in "night"
                } else if next == b'n'
                    && (i + 2 == w.len() || (at(i + 2) == b'e' && at(i + 3) == b'd'))
                {
                    // silent as in "sign", "signed"
                } else if matches!(next, b'i' | b'e' | b'y') && prev != b'g' {
                    out.push('J');
                } else {
                    out.push('K');
                }
            }
            b'h' => {
                if vowel(next) && !matches!(prev, b'c' | b's' | b'p' | b't' | b'g') {
                    out.push('H');
                }
            }
            b'k' => {
                if prev != b'c' {
                    out.push('K');
                }
            }
            b'p' => out.push(if next == b'h' { 'F' } else { 'P' }),
            b'q' => out.push('K'),
            b's' => {
                if next == b'h' || (next == b'i' && matches!(at(i + 2), b'o' | b'a')) {
                    out.push('X');
                } else {
                    out.push('S');
                }
            }
            b't' => {
                if next == b'i' && matches!(at(i + 2), b'o' | b'a') {
                    out.push('X');
                } else if next == b'h' {
                    out.push('0');
                    i += 1;
                } else if !(next == b'c' && at(i + 2) == b'h') {
                    out.push('T');
                }
            }
            b'v' => out.push('F'),
            b'w' | b'y' => {
                if vowel(next) {
                    out.push(c.to_ascii_uppercase() as char);
                }
            }
            b'x' => out.push_str("KS"),
            b'z' => out.push('S'),
            _ => out.push(c.to_ascii_uppercase() as char),
        }
        i += 1;
    }
    out
}

/// The spelling with sound-keeping variants folded together (ph→f, ck→k,
/// x→ks, z→s, y→i, c→k before a/o/u, double letters single), so that the
/// spelling distance measures real differences, not respellings.
pub fn fold_spelling(compact: &str) -> String {
    let mut s = compact.to_ascii_lowercase();
    for (a, b) in [
        ("ph", "f"),
        ("ck", "k"),
        ("x", "ks"),
        ("z", "s"),
        ("y", "i"),
        ("ca", "ka"),
        ("co", "ko"),
        ("cu", "ku"),
        ("qu", "kw"),
    ] {
        if s.contains(a) {
            s = s.replace(a, b);
        }
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !out.ends_with(c) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn mishearings_share_keys() {
        for (heard, meant) in [
            ("met for men", "metformin"),
            ("sim va statin", "simvastatin"),
            ("gaba pen tin", "gabapentin"),
            ("aunt", "ENT"),
            ("lisa no pril", "lisinopril"),
            ("Patell", "Patel"),
            ("hernandes", "Hernandez"),
        ] {
            let (a, b) = (key(heard), key(meant));
            assert!(
                a == b || strsim_close(&a, &b),
                "{heard}: {a} vs {meant}: {b}"
            );
        }
        assert_eq!(key("metformin"), "MTFRMN");
        assert_eq!(key("phone"), "FN");
        assert_eq!(key("thomas"), "0MS");
    }

    fn strsim_close(a: &str, b: &str) -> bool {
        crate::correct::levenshtein(a.as_bytes(), b.as_bytes()) <= 1
    }
}

//! The text tokenizer of the in-memory BM25 index: the rules of the shard's FTS5 table
//! (`tokenize = 'porter unicode61 remove_diacritics 2'`) reimplemented, so the index ranks
//! with the same terms FTS5 stores.
//!
//! - *unicode61*: a token is a run of token characters — ASCII letters and digits, and
//!   non-ASCII letters, numbers and private-use characters; combining marks continue a token
//!   but do not start one. Tokens are lower-cased and, for non-ASCII characters, stripped of
//!   diacritics (canonical decomposition without its combining marks).
//! - *porter*: tokens of 3 to 64 bytes go through Martin Porter's stemming algorithm in the
//!   variant FTS5 implements (it works on bytes; non-ASCII bytes count as consonants).
//!
//! For ASCII text the terms are exactly FTS5's (a test checks the BM25 ranking against FTS5's
//! `bm25()`); for other scripts the case and diacritic folding follows the Unicode tables of
//! Rust's standard library, which can differ from SQLite's built-in tables for rare characters.

use unicode_normalization::char::{decompose_canonical, is_combining_mark};

/// Tokens longer than this (in bytes) are not stemmed, as in FTS5.
const MAX_STEM_BYTES: usize = 64;

/// Calls `f` with every token of `text`, in order, folded (lower case, no diacritics) but
/// not stemmed; [`stem`] turns a token into its term.
pub(crate) fn for_each_token(text: &str, mut f: impl FnMut(&[u8])) {
    let mut folded: Vec<u8> = Vec::with_capacity(32);
    let mut in_token = false;
    let mut utf8 = [0u8; 4];
    for c in text.chars() {
        let token_char = if c.is_ascii() {
            c.is_ascii_alphanumeric()
        } else {
            is_token_start(c) || (in_token && is_combining_mark(c))
        };
        if !token_char {
            if in_token && !folded.is_empty() {
                f(&folded);
            }
            folded.clear();
            in_token = false;
            continue;
        }
        in_token = true;
        if c.is_ascii() {
            folded.push(c.to_ascii_lowercase() as u8);
        } else {
            for lower in c.to_lowercase() {
                decompose_canonical(lower, |d| {
                    if !is_combining_mark(d) {
                        folded.extend_from_slice(d.encode_utf8(&mut utf8).as_bytes());
                    }
                });
            }
        }
    }
    // A run of combining marks alone folds to nothing; FTS5 emits nothing for it either.
    if in_token && !folded.is_empty() {
        f(&folded);
    }
}

/// The term of a folded token: the token itself, stemmed if it is 3 to 64 bytes long.
pub(crate) fn stem(token: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(token);
    if (3..=MAX_STEM_BYTES).contains(&token.len()) {
        porter(out);
    }
}

/// Whether a non-ASCII `c` starts a token: a letter, a number or a private-use character
/// (unicode61's default categories `L* N* Co`).
fn is_token_start(c: char) -> bool {
    c.is_alphanumeric()
        || matches!(c as u32, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD)
}

fn is_vowel(c: u8, y_is_vowel: bool) -> bool {
    matches!(c, b'a' | b'e' | b'i' | b'o' | b'u') || (y_is_vowel && c == b'y')
}

/// Length of the prefix of `s` up to and including the first consonant that follows a vowel
/// (one `VC` of Porter's `[C](VC)^m[V]`), or 0 if `s` has no such pair. `prev_consonant` is
/// the state before `s[0]` (a `y` after a consonant is a vowel).
fn vc_prefix(s: &[u8], prev_consonant: bool) -> usize {
    let mut consonant = prev_consonant;
    let mut i = 0;
    while i < s.len() {
        consonant = !is_vowel(s[i], consonant);
        if !consonant {
            break;
        }
        i += 1;
    }
    i += 1;
    while i < s.len() {
        consonant = !is_vowel(s[i], consonant);
        if consonant {
            return i + 1;
        }
        i += 1;
    }
    0
}

/// Porter's measure `m > 0`.
fn m_gt0(s: &[u8]) -> bool {
    vc_prefix(s, false) != 0
}

/// Porter's measure `m > 1`.
fn m_gt1(s: &[u8]) -> bool {
    let n = vc_prefix(s, false);
    n != 0 && vc_prefix(&s[n..], true) != 0
}

/// Porter's measure `m = 1`.
fn m_eq1(s: &[u8]) -> bool {
    let n = vc_prefix(s, false);
    n != 0 && vc_prefix(&s[n..], true) == 0
}

/// Porter's `*o`: the stem ends consonant-vowel-consonant, the last not `w`, `x` or `y`.
fn ends_cvc(s: &[u8]) -> bool {
    let Some(&last) = s.last() else {
        return false;
    };
    if s.len() < 3 || matches!(last, b'w' | b'x' | b'y') {
        return false;
    }
    let mut consonant = false;
    let mut flags = [false; 3];
    for (i, &c) in s.iter().enumerate() {
        consonant = !is_vowel(c, consonant);
        if i + 3 >= s.len() {
            flags[i + 3 - s.len()] = consonant;
        }
    }
    flags == [true, false, true]
}

/// Porter's `*v*`: the stem contains a vowel. As in FTS5, a `y` counts as a vowel anywhere
/// but at the start.
fn has_vowel(s: &[u8]) -> bool {
    s.iter().enumerate().any(|(i, &c)| is_vowel(c, i > 0))
}

/// `s` ends with `suffix` and is longer than it.
fn ends(s: &[u8], suffix: &[u8]) -> bool {
    s.len() > suffix.len() && s.ends_with(suffix)
}

type Cond = fn(&[u8]) -> bool;

/// Applies the first rule whose suffix `s` ends with: if the remaining stem meets the
/// condition, the suffix is replaced. Later rules are not tried once a suffix matched.
/// Returns whether a rule was applied.
fn apply(s: &mut Vec<u8>, rules: &[(&[u8], &[u8])], cond: Cond) -> bool {
    for &(suffix, replacement) in rules {
        if ends(s, suffix) {
            let stem = s.len() - suffix.len();
            if !cond(&s[..stem]) {
                return false;
            }
            s.truncate(stem);
            s.extend_from_slice(replacement);
            return true;
        }
    }
    false
}

const STEP2: &[(&[u8], &[u8])] = &[
    (b"ational", b"ate"),
    (b"tional", b"tion"),
    (b"enci", b"ence"),
    (b"anci", b"ance"),
    (b"izer", b"ize"),
    (b"logi", b"log"),
    (b"bli", b"ble"),
    (b"alli", b"al"),
    (b"entli", b"ent"),
    (b"eli", b"e"),
    (b"ousli", b"ous"),
    (b"ization", b"ize"),
    (b"ation", b"ate"),
    (b"ator", b"ate"),
    (b"alism", b"al"),
    (b"iveness", b"ive"),
    (b"fulness", b"ful"),
    (b"ousness", b"ous"),
    (b"aliti", b"al"),
    (b"iviti", b"ive"),
    (b"biliti", b"ble"),
];

const STEP3: &[(&[u8], &[u8])] = &[
    (b"ical", b"ic"),
    (b"ness", b""),
    (b"icate", b"ic"),
    (b"iciti", b"ic"),
    (b"ful", b""),
    (b"ative", b""),
    (b"alize", b"al"),
];

/// Step 4 removes these suffixes when `m > 1`; `ion` is handled separately (it also needs
/// the stem to end in `s` or `t`). Order matters only among suffixes sharing their
/// second-to-last letter: the longer first.
const STEP4: &[&[u8]] = &[
    b"al", b"ance", b"ence", b"er", b"ic", b"able", b"ible", b"ant", b"ement", b"ment", b"ent",
    b"ou", b"ism", b"ate", b"iti", b"ous", b"ive", b"ize",
];

/// Stems `s` in place (lower-case bytes of one token).
fn porter(s: &mut Vec<u8>) {
    // Step 1a: plurals.
    if s.len() >= 2 && s[s.len() - 1] == b's' {
        let n = s.len();
        if s[n - 2] == b'e' {
            let sses = n > 4 && s[n - 4] == b's' && s[n - 3] == b's';
            let ies = n > 3 && s[n - 3] == b'i';
            s.truncate(if sses || ies { n - 2 } else { n - 1 });
        } else if s[n - 2] != b's' {
            s.truncate(n - 1);
        }
    }
    // Step 1b: -eed, -ed, -ing.
    let removed = if ends(s, b"eed") {
        apply(s, &[(b"eed", b"ee")], m_gt0);
        false
    } else {
        apply(s, &[(b"ed", b""), (b"ing", b"")], has_vowel)
    };
    if removed
        && !apply(
            s,
            &[(b"at", b"ate"), (b"bl", b"ble"), (b"iz", b"ize")],
            |_| true,
        )
    {
        let n = s.len();
        let last = s[n - 1];
        if n >= 2
            && !is_vowel(last, false)
            && !matches!(last, b'l' | b's' | b'z')
            && last == s[n - 2]
        {
            s.pop();
        } else if m_eq1(s) && ends_cvc(s) {
            s.push(b'e');
        }
    }
    // Step 1c: y -> i after a vowel.
    if s.last() == Some(&b'y') && has_vowel(&s[..s.len() - 1]) {
        let n = s.len();
        s[n - 1] = b'i';
    }
    apply(s, STEP2, m_gt0);
    apply(s, STEP3, m_gt0);
    // Step 4. `ion` and `ou` share their second-to-last letter: `ion` is tried first.
    if ends(s, b"ion") {
        apply(s, &[(b"ion", b"")], |stem| {
            matches!(stem.last(), Some(b's' | b't')) && m_gt1(stem)
        });
    } else {
        for &suffix in STEP4 {
            if ends(s, suffix) {
                let stem = s.len() - suffix.len();
                if m_gt1(&s[..stem]) {
                    s.truncate(stem);
                }
                break;
            }
        }
    }
    // Step 5a: a final e.
    if s.last() == Some(&b'e') {
        let stem = &s[..s.len() - 1];
        if m_gt1(stem) || (m_eq1(stem) && !ends_cvc(stem)) {
            s.pop();
        }
    }
    // Step 5b: -ll -> -l.
    let n = s.len();
    if n > 1 && s[n - 1] == b'l' && s[n - 2] == b'l' && m_gt1(&s[..n - 1]) {
        s.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut term = Vec::new();
        for_each_token(text, |t| {
            stem(t, &mut term);
            out.push(String::from_utf8(term.clone()).unwrap());
        });
        out
    }

    fn stemmed(w: &str) -> String {
        let mut v = w.as_bytes().to_vec();
        porter(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn porter_examples_from_the_paper() {
        for (w, s) in [
            ("caresses", "caress"),
            ("ponies", "poni"),
            ("cats", "cat"),
            ("feed", "feed"),
            ("agreed", "agre"),
            ("plastered", "plaster"),
            ("motoring", "motor"),
            ("sing", "sing"),
            ("conflated", "conflat"),
            ("hopping", "hop"),
            ("falling", "fall"),
            ("filing", "file"),
            ("happy", "happi"),
            ("relational", "relat"),
            ("conditional", "condit"),
            ("hopefulness", "hope"),
            ("electrical", "electr"),
            ("adoption", "adopt"),
            ("controlling", "control"),
            ("generalizations", "gener"),
            ("connections", "connect"),
        ] {
            assert_eq!(stemmed(w), s, "{w}");
        }
    }

    #[test]
    fn tokenizes_like_unicode61() {
        assert_eq!(
            terms("Hello, WORLD! x_y 42"),
            ["hello", "world", "x", "y", "42"]
        );
        assert_eq!(terms("Café naïve"), ["cafe", "naiv"]);
        assert_eq!(terms("東京 — über"), ["東京", "uber"]);
        assert!(terms("  ?! ").is_empty());
    }
}

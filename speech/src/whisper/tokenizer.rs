//! Whisper's byte-level BPE (GPT-2's), read from the model's
//! `tokenizer.json`: enough to encode a short bias prompt into the token
//! strings CTranslate2 takes, and to turn output tokens back into text.

use std::collections::HashMap;
use std::path::Path;

use crate::SpeechError;

/// Encodes text to token strings and decodes token strings to text.
#[derive(Debug)]
pub(crate) struct Tokenizer {
    vocab: HashMap<String, u32>,
    /// Merge rank of each adjacent pair: lower merges first.
    ranks: HashMap<(String, String), usize>,
    /// Byte → the printable character GPT-2 stands it for.
    byte_char: [char; 256],
    char_byte: HashMap<char, u8>,
}

impl Tokenizer {
    /// Reads `tokenizer.json` (a Hugging Face BPE tokenizer).
    pub(crate) fn load(path: &Path) -> Result<Tokenizer, SpeechError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SpeechError::engine("whisper", format!("{}: {e}", path.display())))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| SpeechError::engine("whisper", format!("{}: {e}", path.display())))?;
        let bad = |what: &str| SpeechError::engine("whisper", format!("tokenizer.json: no {what}"));
        let model = &json["model"];
        let vocab = model["vocab"]
            .as_object()
            .ok_or_else(|| bad("model.vocab"))?
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), u32::try_from(v.as_u64()?).ok()?)))
            .collect();
        let ranks = model["merges"]
            .as_array()
            .ok_or_else(|| bad("model.merges"))?
            .iter()
            .filter_map(|m| match m {
                serde_json::Value::String(s) => {
                    let (a, b) = s.split_once(' ')?;
                    Some((a.to_owned(), b.to_owned()))
                }
                serde_json::Value::Array(pair) => Some((
                    pair.first()?.as_str()?.to_owned(),
                    pair.get(1)?.as_str()?.to_owned(),
                )),
                _ => None,
            })
            .enumerate()
            .map(|(rank, pair)| (pair, rank))
            .collect();
        let byte_char = bytes_to_chars();
        let char_byte = byte_char
            .iter()
            .enumerate()
            .map(|(b, &c)| (c, b as u8))
            .collect();
        Ok(Tokenizer {
            vocab,
            ranks,
            byte_char,
            char_byte,
        })
    }

    /// The token strings of `text` (no special tokens).
    pub(crate) fn encode(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for word in pre_tokenize(text) {
            let mut parts: Vec<String> = word
                .bytes()
                .map(|b| self.byte_char[b as usize].to_string())
                .collect();
            // Merge the best-ranked adjacent pair until none is mergeable.
            loop {
                let best = parts
                    .windows(2)
                    .enumerate()
                    .filter_map(|(i, w)| {
                        self.ranks
                            .get(&(w[0].clone(), w[1].clone()))
                            .map(|&r| (r, i))
                    })
                    .min();
                let Some((_, i)) = best else { break };
                let right = parts.remove(i + 1);
                parts[i].push_str(&right);
            }
            out.extend(parts.into_iter().filter(|p| self.vocab.contains_key(p)));
        }
        out
    }

    /// The text of output tokens, special tokens (`<|…|>`) left out.
    pub(crate) fn decode<S: AsRef<str>>(&self, tokens: &[S]) -> String {
        let bytes: Vec<u8> = tokens
            .iter()
            .map(AsRef::as_ref)
            .filter(|t| !(t.starts_with("<|") && t.ends_with("|>")))
            .flat_map(|t| t.chars())
            .filter_map(|c| self.char_byte.get(&c).copied())
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// GPT-2's printable stand-ins for bytes (`bytes_to_unicode`).
fn bytes_to_chars() -> [char; 256] {
    let mut out = ['\0'; 256];
    let printable = |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || b >= 174;
    let mut extra = 0;
    for b in 0..256u32 {
        let c = if printable(b) {
            b
        } else {
            extra += 1;
            255 + extra
        };
        out[b as usize] = char::from_u32(c).expect("below the surrogates");
    }
    out
}

/// GPT-2's pre-tokeniser regex, by hand:
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
fn pre_tokenize(text: &str) -> Vec<&str> {
    #[derive(PartialEq, Clone, Copy)]
    enum Class {
        Letter,
        Number,
        Space,
        Other,
    }
    let class = |c: char| {
        if c.is_alphabetic() {
            Class::Letter
        } else if c.is_numeric() {
            Class::Number
        } else if c.is_whitespace() {
            Class::Space
        } else {
            Class::Other
        }
    };
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let end_of = |i: usize| chars.get(i).map_or(text.len(), |&(b, _)| b);
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        let (_, c) = chars[i];
        if c == '\'' {
            let rest = &text[chars[i].0..];
            if let Some(n) = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]
                .iter()
                .find(|s| rest.starts_with(**s))
                .map(|s| s.len())
            {
                out.push(&rest[..n]);
                i += n; // ASCII: one char a byte.
                continue;
            }
        }
        let mut j = i;
        if c == ' '
            && chars
                .get(i + 1)
                .is_some_and(|&(_, n)| class(n) != Class::Space)
        {
            j += 1;
        }
        let k = class(chars[j].1);
        if k == Class::Space {
            // A run of white space; the last one stays for the next word.
            let mut e = j;
            while e < chars.len() && class(chars[e].1) == Class::Space {
                e += 1;
            }
            if e < chars.len() && e - j > 1 {
                e -= 1;
            }
            out.push(&text[chars[start].0..end_of(e)]);
            i = e;
            continue;
        }
        let mut e = j + 1;
        while e < chars.len() && class(chars[e].1) == k {
            e += 1;
        }
        out.push(&text[chars[start].0..end_of(e)]);
        i = e;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_tokenizer_splits_like_gpt2() {
        assert_eq!(
            pre_tokenize("Dr. Patel's 2 pills,  ok"),
            vec!["Dr", ".", " Patel", "'s", " 2", " pills", ",", " ", " ok"]
        );
    }

    #[test]
    fn bytes_round_trip_through_their_stand_ins() {
        let table = bytes_to_chars();
        assert_eq!(table[b' ' as usize], 'Ġ');
        assert_eq!(table[b'a' as usize], 'a');
        let distinct: std::collections::HashSet<char> = table.iter().copied().collect();
        assert_eq!(distinct.len(), 256);
    }
}

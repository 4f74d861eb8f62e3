//! Word error rate, for measuring recognisers (benches, tests, examples):
//! words as compared, a normalised form that forgives how numbers, times and
//! titles are written, and the word edit distance.

/// Lower-case words without punctuation (numbers and letters kept).
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == '-')
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word edit distance between a reference and a hypothesis.
pub fn word_errors(reference: &[String], hypothesis: &[String]) -> usize {
    let mut row: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, h) in hypothesis.iter().enumerate() {
            let substitution = diagonal + usize::from(r != h);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[hypothesis.len()]
}

/// Word error rate of `hypothesis` against `reference`.
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    let r = words(reference);
    word_errors(&r, &words(hypothesis)) as f64 / r.len().max(1) as f64
}

/// Words normalised: lower case, no punctuation, numbers spoken ("22nd" →
/// "twenty second", "1970" → "nineteen seventy", "9:00" → "nine"), "a.m."
/// → "a m", "Dr." → "doctor".
pub fn normal_words(text: &str) -> Vec<String> {
    let spaced = text.replace(':', " : ");
    let mut out = Vec::new();
    for word in words(&spaced) {
        match word.as_str() {
            "am" => out.extend(["a".to_owned(), "m".to_owned()]),
            "pm" => out.extend(["p".to_owned(), "m".to_owned()]),
            "dr" => out.push("doctor".to_owned()),
            "00" | "oclock" | "o'clock" => {}
            w => match number_words(w) {
                Some(spoken) => out.extend(spoken.split(' ').map(str::to_owned)),
                None => out.push(w.to_owned()),
            },
        }
    }
    out
}

/// "22nd" → "twenty second", "1970" → "nineteen seventy", "9" → "nine".
fn number_words(word: &str) -> Option<String> {
    const ONES: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 10] = [
        "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    let digits = word.trim_end_matches(|c: char| c.is_alphabetic());
    let ordinal = digits.len() < word.len();
    let n: usize = digits.parse().ok()?;
    let below_100 = |n: usize| -> String {
        match n {
            0..=19 => ONES[n].to_owned(),
            _ if n % 10 == 0 => TENS[n / 10].to_owned(),
            _ => format!("{} {}", TENS[n / 10], ONES[n % 10]),
        }
    };
    let cardinal = match n {
        0..=99 => below_100(n),
        1000..=2099 if n % 100 != 0 && !(2000..2010).contains(&n) => {
            format!("{} {}", below_100(n / 100), below_100(n % 100))
        }
        _ => return None,
    };
    if !ordinal {
        return Some(cardinal);
    }
    let (head, last) = cardinal.rsplit_once(' ').unwrap_or(("", &cardinal));
    let last = match last {
        "one" => "first".to_owned(),
        "two" => "second".to_owned(),
        "three" => "third".to_owned(),
        "five" => "fifth".to_owned(),
        "eight" => "eighth".to_owned(),
        "nine" => "ninth".to_owned(),
        "twelve" => "twelfth".to_owned(),
        l if l.ends_with('y') => format!("{}ieth", &l[..l.len() - 1]),
        l => format!("{l}th"),
    };
    Some(if head.is_empty() {
        last
    } else {
        format!("{head} {last}")
    })
}

//! Normalisers for spoken values: numbers, dates, times, dates of birth,
//! names and yes/no. They work on lower-case word lists and return the
//! value together with the word span they consumed.

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Weekday};

/// Splits text into lower-case words (letters, digits, apostrophes, colons).
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == ':' || c == '-'))
        .map(|w| w.trim_matches(|c| c == '\'' || c == '-').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

fn unit(w: &str) -> Option<u32> {
    Some(match w {
        "zero" | "oh" | "o" => 0,
        "one" => 1,
        "two" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        "eleven" => 11,
        "twelve" => 12,
        "thirteen" => 13,
        "fourteen" => 14,
        "fifteen" => 15,
        "sixteen" => 16,
        "seventeen" => 17,
        "eighteen" => 18,
        "nineteen" => 19,
        _ => return None,
    })
}

fn tens(w: &str) -> Option<u32> {
    Some(match w {
        "twenty" => 20,
        "thirty" => 30,
        "forty" => 40,
        "fifty" => 50,
        "sixty" => 60,
        "seventy" => 70,
        "eighty" => 80,
        "ninety" => 90,
        _ => return None,
    })
}

fn ordinal_unit(w: &str) -> Option<u32> {
    Some(match w {
        "first" => 1,
        "second" => 2,
        "third" => 3,
        "fourth" => 4,
        "fifth" => 5,
        "sixth" => 6,
        "seventh" => 7,
        "eighth" => 8,
        "ninth" => 9,
        "tenth" => 10,
        "eleventh" => 11,
        "twelfth" => 12,
        "thirteenth" => 13,
        "fourteenth" => 14,
        "fifteenth" => 15,
        "sixteenth" => 16,
        "seventeenth" => 17,
        "eighteenth" => 18,
        "nineteenth" => 19,
        "twentieth" => 20,
        "thirtieth" => 30,
        _ => return None,
    })
}

fn digits(w: &str) -> Option<u32> {
    let d: String = w.chars().take_while(|c| c.is_ascii_digit()).collect();
    if d.is_empty() || d.len() > 4 {
        return None;
    }
    let rest = &w[d.len()..];
    if !matches!(rest, "" | "st" | "nd" | "rd" | "th") {
        return None;
    }
    d.parse().ok()
}

/// A cardinal number 0..=99 at `i` ("twenty two", "7"); returns (value, words used).
pub fn cardinal(ws: &[String], i: usize) -> Option<(u32, usize)> {
    let w = ws.get(i)?;
    if let Some(t) = tens(w) {
        if let Some(u) = ws.get(i + 1).and_then(|n| unit(n)) {
            if (1..=9).contains(&u) {
                return Some((t + u, 2));
            }
        }
        return Some((t, 1));
    }
    if let Some(u) = unit(w) {
        return Some((u, 1));
    }
    if w.chars().all(|c| c.is_ascii_digit()) {
        return digits(w).map(|v| (v, 1));
    }
    None
}

/// An ordinal day 1..=31 at `i` ("twenty second", "12th", "12").
pub fn ordinal(ws: &[String], i: usize) -> Option<(u32, usize)> {
    let w = ws.get(i)?;
    if let Some(t) = tens(w) {
        if let Some(u) = ws.get(i + 1).and_then(|n| ordinal_unit(n)) {
            if (1..=9).contains(&u) {
                return Some((t + u, 2));
            }
        }
        return None;
    }
    if let Some(v) = ordinal_unit(w) {
        return Some((v, 1));
    }
    digits(w).filter(|v| (1..=31).contains(v)).map(|v| (v, 1))
}

/// A spoken year ("nineteen eighty", "two thousand five", "1980").
pub fn year(ws: &[String], i: usize) -> Option<(i32, usize)> {
    let w = ws.get(i)?;
    if let Some(v) = digits(w) {
        if (1900..=2100).contains(&v) && w.len() == 4 {
            return Some((v as i32, 1));
        }
        return None;
    }
    if w == "two" && ws.get(i + 1).map(String::as_str) == Some("thousand") {
        let mut j = i + 2;
        if ws.get(j).map(String::as_str) == Some("and") {
            j += 1;
        }
        return match cardinal(ws, j) {
            Some((v, n)) => Some((2000 + v as i32, j - i + n)),
            None => Some((2000, j - i)),
        };
    }
    let (century, n1) = match (unit(w), tens(w)) {
        (Some(u), _) if (10..=19).contains(&u) => (u, 1),
        (_, Some(20)) => (20, 1),
        _ => return None,
    };
    let j = i + n1;
    let next = ws.get(j).map(String::as_str);
    if next == Some("hundred") {
        return Some(((century * 100) as i32, n1 + 1));
    }
    if matches!(next, Some("oh" | "o")) {
        let (u, n) = cardinal(ws, j + 1).filter(|(v, _)| *v < 10)?;
        return Some(((century * 100 + u) as i32, n1 + 1 + n));
    }
    let (rest, n2) = cardinal(ws, j).filter(|(v, _)| *v >= 10)?;
    Some(((century * 100 + rest) as i32, n1 + n2))
}

/// A month name at `i`.
pub fn month(w: &str) -> Option<u32> {
    Some(match w {
        "january" | "jan" => 1,
        "february" | "feb" => 2,
        "march" => 3,
        "april" | "apr" => 4,
        "may" => 5,
        "june" => 6,
        "july" => 7,
        "august" | "aug" => 8,
        "september" | "sept" | "sep" => 9,
        "october" | "oct" => 10,
        "november" | "nov" => 11,
        "december" | "dec" => 12,
        _ => return None,
    })
}

/// A weekday name.
pub fn weekday(w: &str) -> Option<Weekday> {
    Some(match w {
        "monday" => Weekday::Mon,
        "tuesday" => Weekday::Tue,
        "wednesday" => Weekday::Wed,
        "thursday" => Weekday::Thu,
        "friday" => Weekday::Fri,
        "saturday" => Weekday::Sat,
        "sunday" => Weekday::Sun,
        _ => return None,
    })
}

/// A calendar date found in words: month, day and maybe a year, with its span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpokenDate {
    /// Month 1..=12.
    pub month: u32,
    /// Day 1..=31.
    pub day: u32,
    /// The year when one was said.
    pub year: Option<i32>,
    /// First word index.
    pub start: usize,
    /// One past the last word index.
    pub end: usize,
}

/// Finds "<month> <day> [<year>]" or "the <day> of <month> [<year>]".
pub fn find_calendar_date(ws: &[String]) -> Option<SpokenDate> {
    for i in 0..ws.len() {
        if let Some(m) = month(&ws[i]) {
            let mut j = i + 1;
            if ws.get(j).map(String::as_str) == Some("the") {
                j += 1;
            }
            if let Some((d, n)) = ordinal(ws, j).or_else(|| cardinal(ws, j)) {
                if (1..=31).contains(&d) {
                    let y = year(ws, j + n);
                    let end = j + n + y.map_or(0, |(_, k)| k);
                    return Some(SpokenDate {
                        month: m,
                        day: d,
                        year: y.map(|v| v.0),
                        start: i,
                        end,
                    });
                }
            }
        }
        let j = if ws[i] == "the" { i + 1 } else { i };
        if let Some((d, n)) = ordinal(ws, j) {
            if ws.get(j + n).map(String::as_str) == Some("of") {
                if let Some(m) = ws.get(j + n + 1).and_then(|w| month(w)) {
                    let y = year(ws, j + n + 2);
                    let end = j + n + 2 + y.map_or(0, |(_, k)| k);
                    return Some(SpokenDate {
                        month: m,
                        day: d,
                        year: y.map(|v| v.0),
                        start: i,
                        end,
                    });
                }
            }
        }
        // ISO or US numeric forms.
        let w = &ws[i];
        if let Ok(d) = NaiveDate::parse_from_str(w, "%Y-%m-%d") {
            return Some(SpokenDate {
                month: d.month(),
                day: d.day(),
                year: Some(d.year()),
                start: i,
                end: i + 1,
            });
        }
    }
    None
}

/// A date of birth in the text ("the twelfth of July nineteen eighty").
pub fn date_of_birth(ws: &[String]) -> Option<NaiveDate> {
    let d = find_calendar_date(ws)?;
    NaiveDate::from_ymd_opt(d.year?, d.month, d.day)
}

/// An appointment date relative to `today`, with its word span.
pub fn relative_date(ws: &[String], today: NaiveDate) -> Option<(NaiveDate, usize, usize)> {
    for i in 0..ws.len() {
        match ws[i].as_str() {
            "today" => return Some((today, i, i + 1)),
            "yesterday" => return Some((today - Duration::days(1), i, i + 1)),
            "tomorrow" => {
                if i >= 3 && ws[i - 3..i].join(" ") == "the day after" {
                    return Some((today + Duration::days(2), i - 3, i + 1));
                }
                return Some((today + Duration::days(1), i, i + 1));
            }
            _ => {}
        }
        if let Some(wd) = weekday(&ws[i]) {
            let prev = if i > 0 { ws[i - 1].as_str() } else { "" };
            if prev == "next" {
                let monday = today - Duration::days(today.weekday().num_days_from_monday() as i64)
                    + Duration::days(7);
                return Some((
                    monday + Duration::days(wd.num_days_from_monday() as i64),
                    i - 1,
                    i + 1,
                ));
            }
            let ahead = (7 + wd.num_days_from_monday() as i64
                - today.weekday().num_days_from_monday() as i64)
                % 7;
            let ahead = if ahead == 0 { 7 } else { ahead };
            let start = if prev == "this" || prev == "on" {
                i - 1
            } else {
                i
            };
            return Some((today + Duration::days(ahead), start, i + 1));
        }
    }
    let d = find_calendar_date(ws)?;
    let mut y = d.year.unwrap_or(today.year());
    let mut date = NaiveDate::from_ymd_opt(y, d.month, d.day)?;
    if d.year.is_none() && date < today {
        y += 1;
        date = NaiveDate::from_ymd_opt(y, d.month, d.day)?;
    }
    Some((date, d.start, d.end))
}

/// A clock time with its word span. `asked` accepts a bare number ("nine")
/// when the bot has just asked for the time.
pub fn time_of_day(ws: &[String], asked: bool) -> Option<(NaiveTime, usize, usize)> {
    for i in 0..ws.len() {
        let w = ws[i].as_str();
        if w == "noon" || w == "midday" {
            return Some((NaiveTime::from_hms_opt(12, 0, 0)?, i, i + 1));
        }
        // "half past two", "quarter past three", "quarter to four"
        if (w == "half" || w == "quarter")
            && matches!(
                ws.get(i + 1).map(String::as_str),
                Some("past" | "to" | "after")
            )
        {
            if let Some((h, n)) = cardinal(ws, i + 2).filter(|(h, _)| (1..=12).contains(h)) {
                let (mut hh, mm) = match (w, ws[i + 1].as_str()) {
                    ("half", _) => (h, 30),
                    ("quarter", "to") => (h - 1, 45),
                    _ => (h, 15),
                };
                if hh == 0 {
                    hh = 12;
                }
                let (hh, end) = meridiem(ws, i + 2 + n, hh);
                let hh = if end == i + 2 + n {
                    clinic_hour(hh)
                } else {
                    hh
                };
                return Some((NaiveTime::from_hms_opt(hh, mm, 0)?, i, end));
            }
        }
        // "9:30", "14:00"
        if let Some((h, m)) = w.split_once(':') {
            if let (Ok(h), Ok(m)) = (
                h.parse::<u32>(),
                m.trim_end_matches(|c: char| c.is_alphabetic())
                    .parse::<u32>(),
            ) {
                let (hh, end) = meridiem(ws, i + 1, h);
                if let Some(t) = NaiveTime::from_hms_opt(hh, m, 0) {
                    return Some((t, i, end));
                }
            }
        }
        let Some((h, n)) = cardinal(ws, i).filter(|(h, _)| (1..=12).contains(h)) else {
            continue;
        };
        if ws
            .get(i + n)
            .is_some_and(|w| month(w).is_some() || w == "of")
        {
            continue;
        }
        let mut j = i + n;
        let mut minute = 0;
        if matches!(ws.get(j).map(String::as_str), Some("oh" | "o")) {
            if let Some((m, k)) = cardinal(ws, j + 1).filter(|(m, _)| *m < 10) {
                minute = m;
                j += 1 + k;
            }
        } else if let Some((m, k)) = cardinal(ws, j).filter(|(m, _)| (10..60).contains(m)) {
            minute = m;
            j += k;
        }
        let (hh, end) = meridiem(ws, j, h);
        let marked = end > j || ws.get(j).map(String::as_str) == Some("o'clock");
        let after_at = i > 0 && matches!(ws[i - 1].as_str(), "at" | "around" | "about");
        if marked || after_at || asked {
            let end = if ws.get(j).map(String::as_str) == Some("o'clock") {
                j + 1
            } else {
                end
            };
            let hh = if end > j { hh } else { clinic_hour(h) };
            return Some((NaiveTime::from_hms_opt(hh, minute, 0)?, i, end));
        }
    }
    None
}

/// Hours said without a.m./p.m. read as clinic hours: 7–11 morning, 12–6 afternoon.
fn clinic_hour(h: u32) -> u32 {
    if (1..=6).contains(&h) {
        h + 12
    } else {
        h
    }
}

/// Reads an a.m./p.m. marker at `j`; returns the 24 h hour and the end of the span.
fn meridiem(ws: &[String], j: usize, h: u32) -> (u32, usize) {
    let at = |k: usize| ws.get(k).map(String::as_str);
    let pm = |h: u32| if h < 12 { h + 12 } else { h };
    let am = |h: u32| if h == 12 { 0 } else { h };
    match (at(j), at(j + 1), at(j + 2)) {
        (Some("pm" | "p.m" | "p.m."), _, _) => (pm(h), j + 1),
        (Some("am" | "a.m" | "a.m."), _, _) => (am(h), j + 1),
        (Some("p"), Some("m"), _) => (pm(h), j + 2),
        (Some("a"), Some("m"), _) => (am(h), j + 2),
        (Some("in"), Some("the"), Some("morning")) => (am(h), j + 3),
        (Some("in"), Some("the"), Some("afternoon" | "evening")) => (pm(h), j + 3),
        (Some("o'clock"), _, _) => (clinic_hour(h), j + 1),
        _ if h > 12 => (h, j),
        _ => (h, j),
    }
}

/// Yes or no, when the text says one clearly.
pub fn yes_no(ws: &[String]) -> Option<bool> {
    let text = ws.join(" ");
    const NO: &[&str] = &[
        "no",
        "nope",
        "nah",
        "wrong",
        "incorrect",
        "not right",
        "change",
        "make it",
        "actually",
        "instead",
    ];
    const YES: &[&str] = &[
        "yes",
        "yeah",
        "yep",
        "yup",
        "correct",
        "right",
        "sure",
        "ok",
        "okay",
        "please do",
        "sounds good",
        "perfect",
        "that's it",
        "go ahead",
        "book it",
        "absolutely",
        "fine",
    ];
    let has = |p: &str| {
        let pw: Vec<&str> = p.split(' ').collect();
        ws.windows(pw.len())
            .any(|win| win.iter().zip(&pw).all(|(a, b)| a == b))
    };
    if NO.iter().any(|p| has(p)) || text.contains("not correct") {
        return Some(false);
    }
    if YES.iter().any(|p| has(p)) {
        return Some(true);
    }
    None
}

/// Words that never form part of a person's name.
const NOT_NAME: &[&str] = &[
    "my",
    "name",
    "is",
    "it's",
    "its",
    "this",
    "i",
    "i'm",
    "am",
    "the",
    "patient",
    "patient's",
    "for",
    "her",
    "his",
    "name's",
    "uh",
    "um",
    "er",
    "yes",
    "yeah",
    "sure",
    "it",
    "calling",
    "speaking",
    "hi",
    "hello",
    "okay",
    "ok",
    "well",
    "so",
    "that's",
    "please",
    "thanks",
    "thank",
    "you",
    "and",
];

/// A person's name from an answer to "what is the patient's name?":
/// filler removed and each part capitalised.
pub fn person_name(ws: &[String]) -> Option<String> {
    let parts: Vec<String> = ws
        .iter()
        .filter(|w| !NOT_NAME.contains(&w.as_str()))
        .filter(|w| {
            w.chars()
                .all(|c| c.is_alphabetic() || c == '\'' || c == '-')
        })
        .map(|w| capitalise(w))
        .collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    Some(parts.join(" "))
}

/// "o'connor" → "O'Connor", "nguyen-tran" → "Nguyen-Tran".
pub fn capitalise(w: &str) -> String {
    let mut out = String::with_capacity(w.len());
    let mut up = true;
    for c in w.chars() {
        if up {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        up = c == '\'' || c == '-';
    }
    out
}

/// "Tuesday, December 8th" as a person would say it.
pub fn speak_date(d: NaiveDate) -> String {
    format!(
        "{}, {} {}",
        d.format("%A"),
        d.format("%B"),
        ordinal_suffix(d.day())
    )
}

/// "March 4th, 1956".
pub fn speak_birth_date(d: NaiveDate) -> String {
    format!(
        "{} {}, {}",
        d.format("%B"),
        ordinal_suffix(d.day()),
        d.year()
    )
}

/// "3 PM", "10:30 AM".
pub fn speak_time(t: NaiveTime) -> String {
    use chrono::Timelike;
    let (pm, h) = t.hour12();
    let m = t.minute();
    let half = if pm { "PM" } else { "AM" };
    if m == 0 {
        format!("{h} {half}")
    } else {
        format!("{h}:{m:02} {half}")
    }
}

fn ordinal_suffix(d: u32) -> String {
    let s = match (d % 10, d % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{d}{s}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        words(s)
    }
    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn dates_of_birth() {
        let cases = [
            ("the twelfth of July nineteen eighty", "1980-07-12"),
            ("January twenty second nineteen seventy", "1970-01-22"),
            ("March fourth nineteen fifty six", "1956-03-04"),
            ("June first nineteen ninety", "1990-06-01"),
            ("May fifth nineteen forty nine", "1949-05-05"),
            ("October thirtieth nineteen sixty two", "1962-10-30"),
            ("it's March 4th 1956", "1956-03-04"),
            ("April ninth two thousand five", "2005-04-09"),
            ("April ninth nineteen oh five", "1905-04-09"),
        ];
        for (s, want) in cases {
            assert_eq!(date_of_birth(&w(s)), Some(day(want)), "{s}");
        }
    }

    #[test]
    fn relative_dates_follow_the_readme() {
        let today = day("2026-12-01"); // a Tuesday
        let cases = [
            ("tomorrow", "2026-12-02"),
            ("next Monday", "2026-12-07"),
            ("next Tuesday", "2026-12-08"),
            ("next Wednesday", "2026-12-09"),
            ("this Friday", "2026-12-04"),
            ("Tuesday", "2026-12-08"),
            ("this Thursday", "2026-12-03"),
            ("December tenth", "2026-12-10"),
            ("the day after tomorrow", "2026-12-03"),
            ("January fifth", "2027-01-05"),
        ];
        for (s, want) in cases {
            assert_eq!(
                relative_date(&w(s), today).map(|d| d.0),
                Some(day(want)),
                "{s}"
            );
        }
    }

    #[test]
    fn times() {
        let cases = [
            ("nine a m", "09:00", false),
            ("one fifteen p m", "13:15", false),
            ("three in the afternoon", "15:00", false),
            ("ten thirty in the morning", "10:30", false),
            ("eleven a m", "11:00", false),
            ("no, make it two p m instead", "14:00", false),
            ("four p m", "16:00", false),
            ("at two", "14:00", false),
            ("nine", "09:00", true),
            ("half past two", "14:30", false),
            ("9:45 am", "09:45", false),
            ("noon", "12:00", false),
        ];
        for (s, want, asked) in cases {
            let got = time_of_day(&w(s), asked).map(|t| t.0.format("%H:%M").to_string());
            assert_eq!(got.as_deref(), Some(want), "{s}");
        }
        assert_eq!(time_of_day(&w("December tenth"), false), None);
        assert_eq!(time_of_day(&w("I have two kids"), false), None);
    }

    #[test]
    fn names_and_yes_no() {
        assert_eq!(
            person_name(&w("my name is linda park")).as_deref(),
            Some("Linda Park")
        );
        assert_eq!(
            person_name(&w("James O'Connor")).as_deref(),
            Some("James O'Connor")
        );
        assert_eq!(yes_no(&w("yes please")), Some(true));
        assert_eq!(yes_no(&w("no, make it two p m instead")), Some(false));
        assert_eq!(yes_no(&w("that's right")), Some(true));
        assert_eq!(yes_no(&w("linda park")), None);
        assert_eq!(speak_date(day("2026-12-08")), "Tuesday, December 8th");
    }
}

//! The clinic's own scheduling backend over HTTP/JSON: the
//! [`Scheduler`] of `echo-dialogue`, answered by a webhook (the backend the
//! clinic's text chatbot already uses decides).
//!
//! Protocol: `POST {base}/{operation}` with a JSON body, JSON back.
//!
//! | operation | request | 200 | errors |
//! | --- | --- | --- | --- |
//! | `availability` | `{provider?, specialty?, date}` | `{openings: [{date, time, provider}]}` | |
//! | `book` | `{patient_name, date_of_birth, provider?, specialty?, date, time}` | `{id, provider, date, time}` | 409 `{alternatives: [...]}`, 404 unknown provider |
//! | `cancel` | `{patient_name, date_of_birth, date}` | `{}` | 404 no such appointment |
//! | `refill` | `{patient_name, date_of_birth, medication}` | `{id}` | |
//!
//! Dates are `YYYY-MM-DD`, times `HH:MM`. Anything else (timeouts,
//! 5xx, bad JSON) is [`ScheduleError::Backend`], which the dialogue turns
//! into an apology and a transfer offer.

use std::time::Duration;

use chrono::{NaiveDate, NaiveTime};
use echo_dialogue::schedule::{Booking, BookingRequest, Opening, ScheduleError, Scheduler};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A scheduler that asks the clinic's backend.
#[derive(Clone)]
pub struct WebhookScheduler {
    base: String,
    agent: ureq::Agent,
}

impl WebhookScheduler {
    /// A scheduler for `base` (e.g. `https://clinic.example/echo`), giving
    /// up on a request after `timeout`.
    pub fn new(base: impl Into<String>, timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        WebhookScheduler {
            base: base.into().trim_end_matches('/').to_owned(),
            agent,
        }
    }

    fn post(&self, operation: &str, body: Value) -> Result<(u16, Value), ScheduleError> {
        let url = format!("{}/{operation}", self.base);
        let mut response = self
            .agent
            .post(&url)
            .send_json(&body)
            .map_err(|e| ScheduleError::Backend(format!("{operation}: {e}")))?;
        let status = response.status().as_u16();
        let value = response
            .body_mut()
            .read_json::<Value>()
            .unwrap_or(Value::Null);
        Ok((status, value))
    }
}

#[derive(Serialize, Deserialize)]
struct OpeningJson {
    date: NaiveDate,
    #[serde(with = "hhmm")]
    time: NaiveTime,
    provider: String,
}

impl From<OpeningJson> for Opening {
    fn from(o: OpeningJson) -> Self {
        Opening {
            date: o.date,
            time: o.time,
            provider: o.provider,
        }
    }
}

fn openings(value: &Value, key: &str) -> Result<Vec<Opening>, ScheduleError> {
    let list = value.get(key).cloned().unwrap_or(Value::Array(Vec::new()));
    serde_json::from_value::<Vec<OpeningJson>>(list)
        .map(|v| v.into_iter().map(Opening::from).collect())
        .map_err(|e| ScheduleError::Backend(format!("bad {key}: {e}")))
}

fn unexpected(operation: &str, status: u16) -> ScheduleError {
    ScheduleError::Backend(format!("{operation}: HTTP {status}"))
}

impl Scheduler for WebhookScheduler {
    fn availability(
        &self,
        provider: Option<&str>,
        specialty: Option<&str>,
        date: NaiveDate,
    ) -> Result<Vec<Opening>, ScheduleError> {
        let body = json!({ "provider": provider, "specialty": specialty, "date": date });
        match self.post("availability", body)? {
            (200, v) => openings(&v, "openings"),
            (404, _) => Err(ScheduleError::UnknownProvider),
            (status, _) => Err(unexpected("availability", status)),
        }
    }

    fn book(&mut self, request: &BookingRequest) -> Result<Booking, ScheduleError> {
        let body = json!({
            "patient_name": request.patient_name,
            "date_of_birth": request.date_of_birth,
            "provider": request.provider,
            "specialty": request.specialty,
            "date": request.date,
            "time": request.time.format("%H:%M").to_string(),
        });
        match self.post("book", body)? {
            (200 | 201, v) => {
                #[derive(Deserialize)]
                struct BookingJson {
                    id: String,
                    provider: String,
                    date: NaiveDate,
                    #[serde(with = "hhmm")]
                    time: NaiveTime,
                }
                let b: BookingJson = serde_json::from_value(v)
                    .map_err(|e| ScheduleError::Backend(format!("bad booking: {e}")))?;
                Ok(Booking {
                    id: b.id,
                    provider: b.provider,
                    date: b.date,
                    time: b.time,
                })
            }
            (409, v) => Err(ScheduleError::Unavailable {
                alternatives: openings(&v, "alternatives")?,
            }),
            (404, _) => Err(ScheduleError::UnknownProvider),
            (status, _) => Err(unexpected("book", status)),
        }
    }

    fn cancel(
        &mut self,
        patient_name: &str,
        date_of_birth: NaiveDate,
        date: NaiveDate,
    ) -> Result<(), ScheduleError> {
        let body =
            json!({ "patient_name": patient_name, "date_of_birth": date_of_birth, "date": date });
        match self.post("cancel", body)? {
            (200 | 204, _) => Ok(()),
            (404, _) => Err(ScheduleError::NotFound),
            (status, _) => Err(unexpected("cancel", status)),
        }
    }

    fn request_refill(
        &mut self,
        patient_name: &str,
        date_of_birth: NaiveDate,
        medication: &str,
    ) -> Result<String, ScheduleError> {
        let body = json!({
            "patient_name": patient_name,
            "date_of_birth": date_of_birth,
            "medication": medication,
        });
        match self.post("refill", body)? {
            (200 | 201, v) => Ok(v
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()),
            (status, _) => Err(unexpected("refill", status)),
        }
    }
}

/// `HH:MM` times in JSON.
mod hhmm {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.format("%H:%M").to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let text = String::deserialize(d)?;
        NaiveTime::parse_from_str(&text, "%H:%M")
            .or_else(|_| NaiveTime::parse_from_str(&text, "%H:%M:%S"))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    /// A one-request-at-a-time HTTP backend on loopback that answers each
    /// operation from `reply` and records what it was sent.
    fn backend(
        reply: fn(&str, &Value) -> (u16, Value),
    ) -> (String, std::sync::mpsc::Receiver<(String, Value)>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/echo", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                let mut length = 0;
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let request: Value = serde_json::from_slice(&body).unwrap();
                let operation = path.rsplit('/').next().unwrap().to_owned();
                let (status, answer) = reply(&operation, &request);
                let _ = tx.send((operation, request));
                let text = answer.to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        (url, rx)
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn books_and_reports_alternatives() {
        let (url, seen) = backend(|op, req| match (op, req["time"].as_str()) {
            ("book", Some("15:00")) => (
                409,
                json!({"alternatives": [{"date": "2026-12-08", "time": "14:30", "provider": "Dr. Patel"}]}),
            ),
            ("book", _) => (
                200,
                json!({"id": "b-1", "provider": "Dr. Patel", "date": "2026-12-08", "time": "09:00"}),
            ),
            _ => (500, Value::Null),
        });
        let mut s = WebhookScheduler::new(url, Duration::from_secs(5));
        let mut request = BookingRequest {
            patient_name: "Jane Doe".into(),
            date_of_birth: date("1980-03-03"),
            provider: Some("Dr. Patel".into()),
            specialty: None,
            date: date("2026-12-08"),
            time: NaiveTime::from_hms_opt(15, 0, 0).unwrap(),
        };
        match s.book(&request) {
            Err(ScheduleError::Unavailable { alternatives }) => {
                assert_eq!(
                    alternatives[0].time,
                    NaiveTime::from_hms_opt(14, 30, 0).unwrap()
                )
            }
            other => panic!("{other:?}"),
        }
        let (op, sent) = seen.recv().unwrap();
        assert_eq!(op, "book");
        assert_eq!(sent["date_of_birth"], "1980-03-03");
        request.time = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        let booking = s.book(&request).unwrap();
        assert_eq!(booking.id, "b-1");
    }

    #[test]
    fn refill_cancel_and_failures() {
        let (url, _seen) = backend(|op, _| match op {
            "refill" => (200, json!({"id": "r-9"})),
            "cancel" => (404, json!({})),
            _ => (503, Value::Null),
        });
        let mut s = WebhookScheduler::new(url, Duration::from_secs(5));
        assert_eq!(
            s.request_refill("Jane Doe", date("1980-03-03"), "metformin")
                .unwrap(),
            "r-9"
        );
        assert_eq!(
            s.cancel("Jane Doe", date("1980-03-03"), date("2026-12-08")),
            Err(ScheduleError::NotFound)
        );
        assert!(matches!(
            s.availability(None, Some("Cardiology"), date("2026-12-08")),
            Err(ScheduleError::Backend(_))
        ));
        // Nobody listening: a backend error, not a panic or a hang.
        let dead = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", dead.local_addr().unwrap());
        drop(dead);
        let mut gone = WebhookScheduler::new(url, Duration::from_secs(2));
        assert!(matches!(
            gone.request_refill("Jane Doe", date("1980-03-03"), "metformin"),
            Err(ScheduleError::Backend(_))
        ));
    }
}

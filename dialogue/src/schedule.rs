//! The scheduling backend: availability, booking, cancelling and refill
//! requests behind one trait. [`InMemoryScheduler`] is the embedded one; a
//! webhook implementation lives in the gateway.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Timelike, Weekday};

use crate::lexicon::{Lexicon, TermKind};

/// A request to book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingRequest {
    /// The patient's name.
    pub patient_name: String,
    /// The patient's date of birth.
    pub date_of_birth: NaiveDate,
    /// A canonical provider name, or `None` for anyone in `specialty`.
    pub provider: Option<String>,
    /// A canonical specialty (needed when no provider is named).
    pub specialty: Option<String>,
    /// The day.
    pub date: NaiveDate,
    /// The time.
    pub time: NaiveTime,
}

/// A confirmed booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    /// The backend's reference.
    pub id: String,
    /// The provider who will see the patient.
    pub provider: String,
    /// The day.
    pub date: NaiveDate,
    /// The time.
    pub time: NaiveTime,
}

/// A free appointment slot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Opening {
    /// The day.
    pub date: NaiveDate,
    /// The time.
    pub time: NaiveTime,
    /// The provider.
    pub provider: String,
}

/// Why the backend said no.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// That time is not free; the nearest free times follow, nearest first.
    #[error("not available")]
    Unavailable {
        /// Nearest alternatives.
        alternatives: Vec<Opening>,
    },
    /// No such provider or specialty.
    #[error("unknown provider or specialty")]
    UnknownProvider,
    /// No matching appointment to cancel.
    #[error("no matching appointment")]
    NotFound,
    /// The backend could not be reached or failed.
    #[error("backend unavailable: {0}")]
    Backend(String),
}

/// A clinic's scheduling backend.
pub trait Scheduler {
    /// Free slots for a provider (or anyone in a specialty) on a day.
    fn availability(
        &self,
        provider: Option<&str>,
        specialty: Option<&str>,
        date: NaiveDate,
    ) -> Result<Vec<Opening>, ScheduleError>;
    /// Books, or says why not with the nearest alternatives.
    fn book(&mut self, request: &BookingRequest) -> Result<Booking, ScheduleError>;
    /// Cancels the patient's appointment on `date`.
    fn cancel(
        &mut self,
        patient_name: &str,
        date_of_birth: NaiveDate,
        date: NaiveDate,
    ) -> Result<(), ScheduleError>;
    /// Records a refill request for the prescriber.
    fn request_refill(
        &mut self,
        patient_name: &str,
        date_of_birth: NaiveDate,
        medication: &str,
    ) -> Result<String, ScheduleError>;
}

/// When a provider sees patients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingHours {
    /// Working days.
    pub days: Vec<Weekday>,
    /// First appointment.
    pub start: NaiveTime,
    /// End of the day (no appointment starts at or after it).
    pub end: NaiveTime,
    /// Appointment length in minutes.
    pub slot_minutes: u32,
}

impl Default for WorkingHours {
    fn default() -> Self {
        WorkingHours {
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            start: NaiveTime::from_hms_opt(8, 0, 0).expect("valid"),
            end: NaiveTime::from_hms_opt(17, 0, 0).expect("valid"),
            slot_minutes: 15,
        }
    }
}

/// The embedded scheduler: providers with working hours, bookings in memory.
#[derive(Debug, Clone, Default)]
pub struct InMemoryScheduler {
    providers: BTreeMap<String, (String, WorkingHours)>,
    booked: BTreeMap<(String, NaiveDate, NaiveTime), (String, NaiveDate)>,
    cancellations: Vec<(String, NaiveDate)>,
    refills: Vec<(String, String)>,
    next_id: u64,
}

impl InMemoryScheduler {
    /// Every provider of the lexicon, with default working hours.
    pub fn from_lexicon(lexicon: &Lexicon) -> Self {
        let mut s = InMemoryScheduler::default();
        for t in lexicon
            .terms()
            .iter()
            .filter(|t| t.kind == TermKind::Provider)
        {
            s.add_provider(
                &t.canonical,
                t.specialty.as_deref().unwrap_or(""),
                WorkingHours::default(),
            );
        }
        s
    }

    /// Adds (or replaces) a provider.
    pub fn add_provider(&mut self, name: &str, specialty: &str, hours: WorkingHours) {
        self.providers
            .insert(name.to_string(), (specialty.to_string(), hours));
    }

    /// Marks a slot as taken (for tests and for bookings made elsewhere).
    pub fn block(&mut self, provider: &str, date: NaiveDate, time: NaiveTime) {
        self.booked
            .insert((provider.to_string(), date, time), (String::new(), date));
    }

    /// Number of bookings, refill requests and cancellations recorded.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.booked.len(),
            self.refills.len(),
            self.cancellations.len(),
        )
    }

    fn candidates(
        &self,
        provider: Option<&str>,
        specialty: Option<&str>,
    ) -> Result<Vec<&String>, ScheduleError> {
        let list: Vec<&String> = match (provider, specialty) {
            (Some(p), _) => self
                .providers
                .get_key_value(p)
                .map(|(k, _)| vec![k])
                .unwrap_or_default(),
            (None, Some(s)) => self
                .providers
                .iter()
                .filter(|(_, (sp, _))| sp == s)
                .map(|(k, _)| k)
                .collect(),
            (None, None) => self.providers.keys().collect(),
        };
        if list.is_empty() {
            return Err(ScheduleError::UnknownProvider);
        }
        Ok(list)
    }

    fn free(&self, provider: &str, date: NaiveDate, time: NaiveTime) -> bool {
        let Some((_, h)) = self.providers.get(provider) else {
            return false;
        };
        let minutes = time.hour() * 60 + time.minute();
        let start = h.start.hour() * 60 + h.start.minute();
        h.days.contains(&date.weekday())
            && time >= h.start
            && time < h.end
            && (minutes - start) % h.slot_minutes.max(1) == 0
            && !self
                .booked
                .contains_key(&(provider.to_string(), date, time))
    }

    fn openings_on(&self, provider: &str, date: NaiveDate) -> Vec<Opening> {
        let Some((_, h)) = self.providers.get(provider) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut t = h.start;
        while t < h.end {
            if self.free(provider, date, t) {
                out.push(Opening {
                    date,
                    time: t,
                    provider: provider.to_string(),
                });
            }
            let next = t + Duration::minutes(h.slot_minutes as i64);
            if next <= t {
                break;
            }
            t = next;
        }
        out
    }
}

impl Scheduler for InMemoryScheduler {
    fn availability(
        &self,
        provider: Option<&str>,
        specialty: Option<&str>,
        date: NaiveDate,
    ) -> Result<Vec<Opening>, ScheduleError> {
        let mut out: Vec<Opening> = Vec::new();
        for p in self.candidates(provider, specialty)? {
            out.extend(self.openings_on(p, date));
        }
        out.sort();
        Ok(out)
    }

    fn book(&mut self, r: &BookingRequest) -> Result<Booking, ScheduleError> {
        let list: Vec<String> = self
            .candidates(r.provider.as_deref(), r.specialty.as_deref())?
            .into_iter()
            .cloned()
            .collect();
        if let Some(p) = list.iter().find(|p| self.free(p, r.date, r.time)) {
            self.next_id += 1;
            self.booked.insert(
                (p.clone(), r.date, r.time),
                (r.patient_name.clone(), r.date_of_birth),
            );
            return Ok(Booking {
                id: format!("B{:06}", self.next_id),
                provider: p.clone(),
                date: r.date,
                time: r.time,
            });
        }
        // Nearest alternatives: the same day by closeness, then the next two weeks.
        let target = r.date.and_time(r.time);
        let mut alts: Vec<(i64, Opening)> = Vec::new();
        for d in 0..14 {
            let day = r.date + Duration::days(d);
            for p in &list {
                for o in self.openings_on(p, day) {
                    alts.push(((o.date.and_time(o.time) - target).num_minutes().abs(), o));
                }
            }
            if alts.len() >= 3 {
                break;
            }
        }
        alts.sort();
        Err(ScheduleError::Unavailable {
            alternatives: alts.into_iter().map(|a| a.1).take(2).collect(),
        })
    }

    fn cancel(
        &mut self,
        patient_name: &str,
        date_of_birth: NaiveDate,
        date: NaiveDate,
    ) -> Result<(), ScheduleError> {
        // A booking made elsewhere is not known here: the request is recorded for staff.
        self.booked.retain(|(_, d, _), (name, dob)| {
            !(*d == date && name == patient_name && *dob == date_of_birth)
        });
        self.cancellations.push((patient_name.to_string(), date));
        Ok(())
    }

    fn request_refill(
        &mut self,
        patient_name: &str,
        _date_of_birth: NaiveDate,
        medication: &str,
    ) -> Result<String, ScheduleError> {
        self.refills
            .push((patient_name.to_string(), medication.to_string()));
        Ok(format!("R{:06}", self.refills.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn at(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn a_taken_slot_offers_the_nearest_alternatives() {
        let mut s = InMemoryScheduler::default();
        s.add_provider("Dr. A", "cardiology", WorkingHours::default());
        s.block("Dr. A", day("2026-12-08"), at(15, 0));
        let req = BookingRequest {
            patient_name: "X".into(),
            date_of_birth: day("1950-01-01"),
            provider: Some("Dr. A".into()),
            specialty: None,
            date: day("2026-12-08"),
            time: at(15, 0),
        };
        let Err(ScheduleError::Unavailable { alternatives }) = s.book(&req) else {
            panic!()
        };
        let times: Vec<_> = alternatives.iter().map(|o| o.time).collect();
        assert_eq!(times, vec![at(14, 45), at(15, 15)]);
        let weekend = BookingRequest {
            date: day("2026-12-05"),
            ..req.clone()
        };
        let Err(ScheduleError::Unavailable { alternatives }) = s.book(&weekend) else {
            panic!()
        };
        assert_eq!(alternatives[0].date, day("2026-12-07"));
        assert!(s
            .book(&BookingRequest {
                time: at(14, 45),
                ..req
            })
            .is_ok());
    }
}

//! The health numbers, read from the same text `/metrics` serves, so the
//! page and Prometheus cannot disagree.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// One sample line of the exposition: name, labels, value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Metric name with its suffix (`_total`, `_bucket`, …).
    pub name: String,
    /// Label pairs as written.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

impl Sample {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses OpenMetrics / Prometheus text (comments skipped).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (series, rest) = match line.find('{') {
        Some(_) => {
            let close = line.rfind('}')?;
            (&line[..close + 1], &line[close + 1..])
        }
        None => line.split_at(line.find(' ')?),
    };
    let value: f64 = rest.split_whitespace().next()?.parse().ok()?;
    let (name, labels) = match series.find('{') {
        None => (series.to_owned(), Vec::new()),
        Some(open) => (
            series[..open].to_owned(),
            labels(&series[open + 1..series.len() - 1]),
        ),
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

fn labels(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_owned();
        let after = &rest[eq + 1..];
        let Some(body) = after.strip_prefix('"') else {
            break;
        };
        let mut value = String::new();
        let mut chars = body.char_indices();
        let mut end = body.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((key, value));
        rest = &body[end..];
    }
    out
}

/// The sum of every sample of `name` whose labels include `with`.
pub fn sum(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && with.iter().all(|(k, v)| s.label(k) == Some(v)))
        .map(|s| s.value)
        .sum::<f64>()
        + 0.0 // an empty sum is -0.0
}

/// A quantile of a histogram (`name` without `_bucket`) over the series
/// selected by `with`, interpolated inside the bucket as Prometheus's
/// `histogram_quantile` does. `None` when it has no observations.
pub fn quantile(samples: &[Sample], name: &str, with: &[(&str, &str)], q: f64) -> Option<f64> {
    let bucket = format!("{name}_bucket");
    let mut buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.name == bucket && with.iter().all(|(k, v)| s.label(k) == Some(v)))
        .filter_map(|s| {
            let le = s.label("le")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, s.value))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(le, count) in &buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower.0);
            }
            let width = count - lower.1;
            let within = if width > 0.0 {
                (rank - lower.1) / width
            } else {
                1.0
            };
            return Some(lower.0 + (le - lower.0) * within);
        }
        lower = (le, count);
    }
    None
}

/// Calls-ended totals over the last minutes, sampled in the background.
#[derive(Debug, Default)]
pub struct Rates {
    samples: Mutex<VecDeque<(Instant, f64)>>,
}

impl Rates {
    /// Records the calls counter now.
    pub fn record(&self, now: Instant, calls_total: f64) {
        let mut s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        s.push_back((now, calls_total));
        while s
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > Duration::from_secs(600))
        {
            s.pop_front();
        }
    }

    /// Calls ended in the last minute: the counter now minus its value a
    /// minute ago (or at the first sample, while the gateway is younger).
    pub fn per_minute(&self, now: Instant, calls_total: f64) -> f64 {
        let s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let minute_ago = s
            .iter()
            .rev()
            .find(|(t, _)| now.duration_since(*t) >= Duration::from_secs(60))
            .or(s.front());
        match minute_ago {
            Some(&(_, before)) => (calls_total - before).max(0.0),
            None => 0.0,
        }
    }
}

/// What the health page and `GET /api/v1/health` show.
#[derive(Clone, Debug, Serialize)]
pub struct Health {
    /// Calls in progress.
    pub live_calls: f64,
    /// Calls ended in the last minute.
    pub calls_per_minute: f64,
    /// Calls ended since start.
    pub calls_total: f64,
    /// Turn latency (total leg) p50/p90/p99 in ms since start.
    pub turn_latency_ms: Percentiles,
    /// p50 of each leg in ms: endpointing, recognition, dialogue, synthesis, send.
    pub leg_p50_ms: Vec<(String, Option<f64>)>,
    /// Inference jobs waiting now.
    pub recogniser_queue_depth: f64,
    /// Mean wait of an inference job for a worker, ms.
    pub inference_wait_mean_ms: Option<f64>,
    /// Inbound packets lost / (received + lost), since start.
    pub jitter_loss_ratio: Option<f64>,
    /// Inbound packets that came too late to play.
    pub jitter_late_packets: f64,
    /// Whether the audit database answered the last check.
    pub database_up: bool,
    /// Audit records written to the spool since start (database away).
    pub spooled_records: f64,
    /// Audit records replayed from the spool since start.
    pub replayed_records: f64,
    /// Audit records lost (neither stored nor spooled) since start.
    pub lost_records: f64,
    /// SIP responses by code since start.
    pub sip_responses: Vec<(String, f64)>,
}

/// p50/p90/p99 in ms.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Turns measured.
    pub count: f64,
}

/// The legs of a turn, in order.
pub const LEGS: [&str; 5] = [
    "endpointing",
    "recognition",
    "dialogue",
    "synthesis",
    "send",
];

impl Health {
    /// Reads the numbers out of the `/metrics` text.
    pub fn from_metrics(text: &str, rates: &Rates, now: Instant) -> Health {
        let s = parse(text);
        let ms = |v: Option<f64>| v.map(|v| v * 1000.0);
        let latency = "echo_turn_latency_seconds";
        let total = [("leg", "total")];
        let calls_total = sum(&s, "echo_calls_total", &[]);
        let lost = sum(&s, "echo_jitter_lost_packets_total", &[]);
        let received = sum(&s, "echo_jitter_received_packets_total", &[]);
        let wait_sum = sum(&s, "echo_inference_wait_seconds_sum", &[]);
        let wait_count = sum(&s, "echo_inference_wait_seconds_count", &[]);
        let mut sip_responses: Vec<(String, f64)> = s
            .iter()
            .filter(|x| x.name == "echo_sip_responses_total")
            .map(|x| (x.label("code").unwrap_or("?").to_owned(), x.value))
            .collect();
        sip_responses.sort_by(|a, b| a.0.cmp(&b.0));
        let records = |state: &str| sum(&s, "echo_audit_records", &[("state", state)]);
        Health {
            live_calls: sum(&s, "echo_active_calls", &[]),
            calls_per_minute: rates.per_minute(now, calls_total),
            calls_total,
            turn_latency_ms: Percentiles {
                p50: ms(quantile(&s, latency, &total, 0.5)),
                p90: ms(quantile(&s, latency, &total, 0.9)),
                p99: ms(quantile(&s, latency, &total, 0.99)),
                count: sum(&s, "echo_turn_latency_seconds_count", &total),
            },
            leg_p50_ms: LEGS
                .iter()
                .map(|leg| {
                    (
                        leg.to_string(),
                        ms(quantile(&s, latency, &[("leg", leg)], 0.5)),
                    )
                })
                .collect(),
            recogniser_queue_depth: sum(&s, "echo_inference_queue_depth", &[]),
            inference_wait_mean_ms: (wait_count > 0.0).then(|| wait_sum / wait_count * 1000.0),
            jitter_loss_ratio: (received + lost > 0.0).then(|| lost / (received + lost)),
            jitter_late_packets: sum(&s, "echo_jitter_late_packets_total", &[]),
            database_up: sum(&s, "echo_database_up", &[]) >= 1.0,
            spooled_records: records("spooled"),
            replayed_records: records("replayed"),
            lost_records: records("lost"),
            sip_responses,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP echo_active_calls Calls.\n\
# TYPE echo_active_calls gauge\n\
echo_active_calls 3\n\
echo_calls_total{status=\"completed\"} 10\n\
echo_calls_total{status=\"rejected\"} 2\n\
echo_turn_latency_seconds_sum{leg=\"total\"} 6.0\n\
echo_turn_latency_seconds_count{leg=\"total\"} 10\n\
echo_turn_latency_seconds_bucket{le=\"0.5\",leg=\"total\"} 2\n\
echo_turn_latency_seconds_bucket{le=\"1.0\",leg=\"total\"} 8\n\
echo_turn_latency_seconds_bucket{le=\"+Inf\",leg=\"total\"} 10\n\
echo_sip_responses_total{code=\"200\"} 7\n\
# EOF\n";

    #[test]
    fn samples_and_labels_parse() {
        let s = parse(TEXT);
        assert_eq!(sum(&s, "echo_active_calls", &[]), 3.0);
        assert_eq!(sum(&s, "echo_calls_total", &[]), 12.0);
        assert_eq!(sum(&s, "echo_calls_total", &[("status", "rejected")]), 2.0);
        assert_eq!(s[3].labels, vec![("leg".to_owned(), "total".to_owned())]);
    }

    #[test]
    fn quantiles_interpolate_like_prometheus() {
        let s = parse(TEXT);
        // rank 5 of 10 falls in (0.5, 1.0] holding ranks 3..=8: 0.5 + 0.5 * 3/6.
        let p50 = quantile(&s, "echo_turn_latency_seconds", &[("leg", "total")], 0.5).unwrap();
        assert!((p50 - 0.75).abs() < 1e-9, "{p50}");
        // rank 9.9 is in +Inf: the highest finite bound.
        let p99 = quantile(&s, "echo_turn_latency_seconds", &[("leg", "total")], 0.99).unwrap();
        assert_eq!(p99, 1.0);
        assert_eq!(quantile(&s, "echo_nothing", &[], 0.5), None);
    }

    #[test]
    fn calls_per_minute_come_from_samples() {
        let rates = Rates::default();
        let t0 = Instant::now();
        rates.record(t0, 100.0);
        rates.record(t0 + Duration::from_secs(30), 103.0);
        // Younger than a minute: everything since the first sample.
        assert_eq!(rates.per_minute(t0 + Duration::from_secs(30), 106.0), 6.0);
        rates.record(t0 + Duration::from_secs(70), 110.0);
        // Since the sample a minute (or more) before now: 30 s.
        assert_eq!(rates.per_minute(t0 + Duration::from_secs(90), 111.0), 8.0);
    }
}

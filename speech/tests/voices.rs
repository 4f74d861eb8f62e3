//! The real voices: Piper (the model from `scripts/fetch-models.sh`, which
//! must be there: these tests fail, not skip, without it) and libespeak-ng.

use std::path::PathBuf;
use std::sync::OnceLock;

use echo_speech::espeak::{phonemize, EspeakSynthesizer};
use echo_speech::piper::{PiperSynthesizer, DEFAULT_VOICE_FILE};
use echo_speech::{SpeechError, Synthesizer};

fn piper() -> &'static PiperSynthesizer {
    static PIPER: OnceLock<PiperSynthesizer> = OnceLock::new();
    PIPER.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../models")
            .join(DEFAULT_VOICE_FILE);
        PiperSynthesizer::load(&path)
            .unwrap_or_else(|e| panic!("{e} (the voice tests need the real model)"))
    })
}

/// Every chunk the synthesiser hands over, in order.
fn chunks(voice: &dyn Synthesizer, text: &str) -> Vec<Vec<i16>> {
    let mut out = Vec::new();
    voice
        .synthesize(text, &mut |pcm| {
            out.push(pcm.to_vec());
            true
        })
        .expect("synthesis");
    out
}

fn rms(pcm: &[i16]) -> f64 {
    let sum: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / pcm.len().max(1) as f64).sqrt()
}

/// Seconds a speaker at 150 words per minute takes for `text`.
fn expected_secs(text: &str) -> f64 {
    text.split_whitespace().count() as f64 / 150.0 * 60.0
}

#[test]
fn piper_speaks_a_sentence_at_22050_hz_for_a_plausible_time() {
    let piper = piper();
    assert_eq!(piper.sample_rate(), 22_050);
    let text = "Thanks, Susan. What is your date of birth?";
    let pcm: Vec<i16> = chunks(piper, text).concat();
    let secs = pcm.len() as f64 / 22_050.0;
    let expected = expected_secs(text);
    assert!(
        (0.5 * expected..=3.0 * expected).contains(&secs),
        "{secs:.2} s of audio, 150 wpm predicts {expected:.2} s"
    );
    assert!(rms(&pcm) > 300.0, "rms {:.0}: silent?", rms(&pcm));
}

#[test]
fn piper_hands_over_each_sentence_as_it_is_ready() {
    let got = chunks(
        piper(),
        "Which doctor would you like to see? Dr. Patel is free.",
    );
    assert!(got.len() >= 2, "{} chunks", got.len());
    assert!(got.iter().all(|c| rms(c) > 300.0));
}

#[test]
fn piper_stops_when_the_sink_says_so() {
    let mut calls = 0;
    let result = piper().synthesize("One. Two. Three.", &mut |_| {
        calls += 1;
        false
    });
    assert!(matches!(result, Err(SpeechError::Stopped)), "{result:?}");
    assert_eq!(calls, 1);
}

#[test]
fn a_missing_piper_model_says_how_to_get_it() {
    let err = PiperSynthesizer::load(std::path::Path::new("/nonexistent/voice.onnx")).unwrap_err();
    match err {
        SpeechError::Missing { hint, .. } => assert!(hint.contains("fetch-models")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn espeak_fallback_speaks() {
    let voice = EspeakSynthesizer::default_voice().expect("libespeak-ng");
    assert_eq!(voice.sample_rate(), 22_050);
    let got = chunks(&voice, "Thanks. What is your date of birth?");
    assert_eq!(got.len(), 2);
    let pcm = got.concat();
    let secs = pcm.len() as f64 / 22_050.0;
    assert!(secs > 1.0 && secs < 6.0, "{secs:.2} s");
    assert!(rms(&pcm) > 300.0);

    let mut calls = 0;
    let result = voice.synthesize("One. Two.", &mut |_| {
        calls += 1;
        false
    });
    assert!(matches!(result, Err(SpeechError::Stopped)));
    assert_eq!(calls, 1);
}

#[test]
fn phonemize_gives_ipa_per_sentence_with_punctuation() {
    let ipa = phonemize("I take metformin, twice a day. Is that right?", "en-us").unwrap();
    assert_eq!(ipa.len(), 2, "{ipa:?}");
    // espeak-ng 1.51 (Debian 12).
    assert!(ipa[0].contains("mˈɛtfoːɹmˌɪn"), "{ipa:?}");
    assert!(ipa[0].contains(',') && ipa[0].ends_with('.'), "{ipa:?}");
    assert!(ipa[1].ends_with('?'), "{ipa:?}");
}

#[test]
fn piper_serves_two_calls_at_once() {
    let piper = piper();
    let texts = ["Which doctor would you like to see?", "Thanks. Goodbye."];
    let lengths: Vec<usize> = std::thread::scope(|scope| {
        let calls: Vec<_> = texts
            .iter()
            .map(|&text| scope.spawn(move || chunks(piper, text).concat().len()))
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert!(lengths.iter().all(|&n| n > 22_050 / 2), "{lengths:?}");
}

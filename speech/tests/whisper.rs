//! Whisper tiny.en through CTranslate2 on synthetic callers (espeak-ng).
//! The model must be there (`scripts/fetch-models.sh`): these tests fail,
//! not skip, without it.

mod support;

use std::sync::{Arc, OnceLock};

use echo_speech::wer::wer;
use echo_speech::whisper::{WhisperOptions, WhisperRecognizer};
use echo_speech::{Bias, Recognizer, SpeechError};
use support::speak;

/// One model for the whole test binary: loading costs about a second.
fn recognizer() -> &'static WhisperRecognizer {
    static MODEL: OnceLock<WhisperRecognizer> = OnceLock::new();
    MODEL.get_or_init(|| {
        WhisperRecognizer::load(&support::model_dir(), WhisperOptions::default())
            .expect("models/whisper-tiny.en: run scripts/fetch-models.sh")
    })
}

#[test]
fn transcribes_a_synthetic_caller() {
    let said = "I would like to book an appointment for next Tuesday morning.";
    let heard = recognizer()
        .transcribe(&speak(said, false), &Bias::none())
        .unwrap();
    eprintln!("heard {:?} ({:?})", heard.text, heard.confidence);
    assert!(wer(said, &heard.text) <= 0.1, "heard {:?}", heard.text);
    let confidence = heard.confidence.expect("scores are asked for");
    assert!((0.5..=1.0).contains(&confidence), "confidence {confidence}");
}

#[test]
fn bias_gets_the_drug_name_right() {
    let said = "I need a refill of metformin.";
    let pcm = speak(said, false);
    let unbiased = recognizer().transcribe(&pcm, &Bias::none()).unwrap();
    let biased = recognizer()
        .transcribe(&pcm, &Bias::terms(["Metformin"]))
        .unwrap();
    eprintln!("unbiased {:?}, biased {:?}", unbiased.text, biased.text);
    assert!(
        biased.text.to_lowercase().contains("metformin"),
        "heard {:?}",
        biased.text
    );
    assert!(wer(said, &biased.text) <= 0.2, "heard {:?}", biased.text);
}

#[test]
fn telephone_band_still_works() {
    // espeak-ng loses much through 8 kHz (its consonants live above
    // 4 kHz): whole sentences still come through, names and dates less so.
    let said = "Can I get an appointment with Doctor Nguyen next Monday?";
    let heard = recognizer()
        .transcribe(&speak(said, true), &Bias::none())
        .unwrap();
    eprintln!("heard {:?} ({:?})", heard.text, heard.confidence);
    let text = heard.text.to_lowercase();
    assert!(
        text.contains("appointment") && text.contains("monday"),
        "heard {:?}",
        heard.text
    );
    // Raw WER: "Doctor" written "Dr." is one error, the name another.
    assert!(wer(said, &heard.text) <= 0.35, "heard {:?}", heard.text);
}

#[test]
fn streams_in_chunks_and_silence_is_empty_or_short() {
    let said = "Can I speak to someone at the front desk?";
    let pcm = speak(said, false);
    let mut stream = recognizer().start(&Bias::none());
    for chunk in pcm.chunks(320) {
        stream.push(chunk);
    }
    let heard = stream.finish().unwrap();
    assert!(wer(said, &heard.text) <= 0.15, "heard {:?}", heard.text);

    let silence = recognizer()
        .transcribe(&vec![0; 16_000], &Bias::none())
        .unwrap();
    assert!(
        silence.text.split_whitespace().count() <= 3,
        "heard {:?}",
        silence.text
    );
}

#[test]
fn two_calls_decode_at_once_through_a_shared_recognizer() {
    let shared: Arc<dyn Recognizer> = Arc::new(recognizer().clone());
    let lines = [
        "Please cancel my appointment.",
        "I want to talk to the nurse.",
    ];
    let handles: Vec<_> = lines
        .iter()
        .map(|&line| {
            let shared = Arc::clone(&shared);
            let pcm = speak(line, false);
            std::thread::spawn(move || (line, shared.transcribe(&pcm, &Bias::none())))
        })
        .collect();
    for handle in handles {
        let (line, heard) = handle.join().unwrap();
        let heard = heard.unwrap();
        assert!(
            wer(line, &heard.text) <= 0.2,
            "{line:?} heard {:?}",
            heard.text
        );
    }
}

#[test]
fn a_missing_model_says_how_to_get_it() {
    let err = WhisperRecognizer::load(
        std::path::Path::new("/nonexistent/whisper-tiny.en"),
        WhisperOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, SpeechError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("scripts/fetch-models.sh"), "{err}");
}

#[test]
fn the_bias_becomes_a_previous_text_prompt() {
    let prompt = recognizer().prompt_tokens(&Bias::terms(["Metformin", "Dr. Patel"]));
    assert_eq!(prompt.first().map(String::as_str), Some("<|startofprev|>"));
    assert_eq!(
        &prompt[prompt.len() - 2..],
        ["<|startoftranscript|>", "<|notimestamps|>"]
    );
    // Byte-level BPE: 'Ġ' stands for a space.
    assert_eq!(
        prompt[1..prompt.len() - 2].concat(),
        "ĠMetformin,ĠDr.ĠPatel."
    );
    assert_eq!(
        recognizer().prompt_tokens(&Bias::none()),
        ["<|startoftranscript|>", "<|notimestamps|>"]
    );
}

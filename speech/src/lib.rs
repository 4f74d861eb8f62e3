//! Speech engines behind small traits: streaming recognisers (STT),
//! streaming synthesisers (TTS) and realtime speech-to-speech clients, with
//! the offline engines (Whisper tiny.en through CTranslate2, Piper through
//! ONNX Runtime) as the embedded defaults and network providers beside them.
//!
//! It knows nothing about SIP or slots. Not built yet: see issue 6.
#![warn(missing_docs, unreachable_pub)]

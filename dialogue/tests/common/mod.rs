//! Shared test helpers: the development data lives in ../shared beside the repo.
#![allow(dead_code)]

use std::path::PathBuf;

use echo_dialogue::{Flow, VocabularySources};

/// `../shared/data/<rel>` from the repository root.
pub fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(rel)
}

/// A file under ../shared/data.
pub fn read(rel: &str) -> String {
    std::fs::read_to_string(data(rel)).unwrap_or_else(|e| panic!("{}: {e}", data(rel).display()))
}

/// The clinic's vocabulary files, as text.
pub struct Vocabulary {
    pub providers: String,
    pub specialties: String,
    pub medications: String,
    pub confusions: String,
}

impl Vocabulary {
    pub fn load() -> Self {
        Vocabulary {
            providers: read("clinic/providers.txt"),
            specialties: read("clinic/specialties.txt"),
            medications: read("clinic/medications.txt"),
            confusions: read("clinic/confusions.txt"),
        }
    }
    pub fn sources(&self) -> VocabularySources<'_> {
        VocabularySources {
            providers: &self.providers,
            specialties: &self.specialties,
            medications: &self.medications,
            confusions: &self.confusions,
        }
    }
}

/// The shipped clinic flow with the development vocabulary, read the way
/// the gateway does: the paths under `[vocabulary]`, from the clinic's folder.
pub fn clinic_flow() -> Flow {
    let dir = data("clinic");
    Flow::clinic()
        .with_vocabulary_from(|p| std::fs::read_to_string(dir.join(p)))
        .expect("vocabulary loads")
}

/// Every scenario: (file name, text).
pub fn scenarios() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(data("scenarios"))
        .expect("scenarios dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

//! Try the clinic flow on the terminal, the way `echo-gateway chat` will:
//!
//! ```sh
//! cargo run -p echo-dialogue --example chat -- ../shared/data/clinic 2026-12-01
//! ```
//!
//! Arguments: the folder with the vocabulary files, and the call's date
//! (default: 2026-12-01). Optionally a flow file as a third argument.
use std::io;
use std::path::PathBuf;

use echo_dialogue::Flow;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(
        args.first()
            .map(String::as_str)
            .unwrap_or("../shared/data/clinic"),
    );
    let today = chrono::NaiveDate::parse_from_str(
        args.get(1).map(String::as_str).unwrap_or("2026-12-01"),
        "%Y-%m-%d",
    )?;
    let flow = match args.get(2) {
        Some(path) => Flow::from_toml(&std::fs::read_to_string(path)?)?,
        None => Flow::clinic(),
    };
    let flow = flow.with_vocabulary_from(|p| std::fs::read_to_string(dir.join(p)))?;
    echo_dialogue::chat::run(io::stdin().lock(), io::stdout().lock(), &flow, today)?;
    Ok(())
}

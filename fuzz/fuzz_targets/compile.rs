//! Parse → check → lower on any input, against the demo catalog (`checks::compile`).
#![no_main]

#[path = "../checks.rs"]
#[allow(dead_code)] // each target uses one of the checks
mod checks;

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use segql::Session;

fn session() -> &'static Mutex<Session> {
    static SESSION: OnceLock<Mutex<Session>> = OnceLock::new();
    SESSION.get_or_init(|| {
        let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop/segql.toml");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let session = runtime
            .block_on(Session::open(&catalog))
            .unwrap_or_else(|r| panic!("the demo catalog does not open:\n{}", r.render(false)));
        Mutex::new(session)
    })
}

fuzz_target!(|data: &[u8]| {
    // Files are decoded as UTF-8 first (`segql::read_source`): other bytes go no further.
    if let Ok(text) = std::str::from_utf8(data) {
        let mut session = session().lock().unwrap_or_else(|e| e.into_inner());
        checks::compile(&mut session, text);
    }
});

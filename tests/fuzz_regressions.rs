#![cfg(not(target_arch = "wasm32"))]
//! Replays every kept fuzz input — the corpus (`fuzz/corpus/<target>/`) and each crash found
//! (`fuzz/regressions/<target>/`) — through the same target bodies the fuzzer runs.
mod common;
mod fuzzing;

use std::path::Path;

#[test]
fn every_kept_fuzz_input_replays_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for (name, run) in fuzzing::TARGETS {
        for kind in ["corpus", "regressions"] {
            let dir = root.join(kind).join(name);
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            let mut files: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
            files.sort();
            for f in files {
                let data = std::fs::read(&f).unwrap();
                let r = std::panic::catch_unwind(|| run(&data));
                assert!(r.is_ok(), "{name}: {} fails", f.display());
                replayed += 1;
            }
        }
    }
    assert!(replayed >= 3, "the kept corpus is missing ({replayed} files)");
    println!("replayed {replayed} kept fuzz inputs");
}

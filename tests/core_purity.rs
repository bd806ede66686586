#![cfg(not(target_arch = "wasm32"))]
//! The core must stay pure: no `wasm_bindgen`, `js_sys` or `web_sys` anywhere under src/core.

use std::fs;
use std::path::Path;

fn visit(dir: &Path, offenders: &mut Vec<String>) {
    for entry in fs::read_dir(dir).expect("src/core exists") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            visit(&path, offenders);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = fs::read_to_string(&path).expect("readable source");
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for banned in ["wasm_bindgen", "js_sys", "web_sys"] {
                    if code.split(|c: char| !(c.is_alphanumeric() || c == '_')).any(|w| w == banned) {
                        offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                    }
                }
            }
        }
    }
}

#[test]
fn core_imports_no_browser_crates() {
    let mut offenders = Vec::new();
    visit(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core"), &mut offenders);
    assert!(offenders.is_empty(), "browser imports in the pure core:\n{}", offenders.join("\n"));
}

#[test]
fn the_check_catches_an_import() {
    // The scanner itself must see an import when there is one.
    let dir = std::env::temp_dir().join(format!("ks-purity-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("bad.rs"), "use web_sys::Window;\n// js_sys in a comment is fine\n").unwrap();
    let mut offenders = Vec::new();
    visit(&dir, &mut offenders);
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(offenders.len(), 1);
}

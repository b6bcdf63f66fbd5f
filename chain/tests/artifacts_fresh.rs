//! The committed ABI and bytecode in `chain/artifacts/` must be what the pinned solc makes of
//! `chain/contracts/` today; a contract edited without `scripts/build-contracts` fails here.

use std::path::Path;
use std::process::Command;

#[test]
fn artifacts_match_the_contract_sources() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let solc = root.join(".tools/node_modules/solc/package.json");
    assert!(
        solc.exists(),
        "the pinned solc is not installed at {}: run `scripts/setup` from the repository root",
        solc.display()
    );
    let output = Command::new("node")
        .arg("scripts/build-contracts.js")
        .arg("--check")
        .current_dir(&root)
        .output()
        .expect("node is needed to run solc: run `scripts/setup`, which installs it");
    assert!(
        output.status.success(),
        "artifacts are stale:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

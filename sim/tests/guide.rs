//! `docs/guide.md` cannot rot: every `sh` block of the researcher's guide runs, in order, in one
//! empty folder, under `bash -euo pipefail`, with the `olsim` binary of this build first on the
//! `PATH`; every `sh repo` block (cargo commands run from a checkout) names only packages,
//! tests, benches, modules and files that exist.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A fenced block: its info string, the line of its opening fence, its text.
struct Block {
    info: String,
    line: usize,
    body: String,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in markdown.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(info)) => {
                open = Some(Block {
                    info: info.trim().to_owned(),
                    line: i + 1,
                    body: String::new(),
                })
            }
            (Some(_), Some(_)) => out.extend(open.take()),
            (Some(block), None) => {
                block.body.push_str(line);
                block.body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(
        open.is_none(),
        "docs/guide.md: a fenced block is never closed"
    );
    out
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn guide() -> Vec<Block> {
    let text = std::fs::read_to_string(root().join("docs/guide.md")).expect("docs/guide.md");
    let blocks = blocks(&text);
    for b in &blocks {
        let shell_like = ["sh", "bash", "shell", "console"]
            .iter()
            .any(|s| b.info.starts_with(s));
        assert!(
            !shell_like || b.info == "sh" || b.info == "sh repo",
            "docs/guide.md line {}: fence `{}` would escape this test; use `sh` or `sh repo`",
            b.line,
            b.info
        );
    }
    blocks
}

#[test]
fn every_command_of_the_guide_runs() {
    let blocks = guide();
    let runnable: Vec<&Block> = blocks.iter().filter(|b| b.info == "sh").collect();
    assert!(runnable.len() >= 8, "the guide lost its commands");
    for step in [
        "olsim run ",
        "olsim sweep ",
        "olsim merge ",
        "olsim compare ",
        "olsim check ",
    ] {
        assert!(
            runnable.iter().any(|b| b.body.contains(step)),
            "the guide has no `{step}` step"
        );
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("guide");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_olsim")).parent().unwrap();
    let path = std::env::join_paths(std::iter::once(bin.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    for b in runnable {
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &b.body])
            .current_dir(&dir)
            .env("PATH", &path)
            .output()
            .expect("bash starts");
        assert!(
            out.status.success(),
            "docs/guide.md line {}: the block failed ({}):\n{}\n--- stdout\n{}\n--- stderr\n{}",
            b.line,
            out.status,
            b.body,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The folder of a workspace package, checked against its Cargo.toml.
fn package_dir(name: &str) -> PathBuf {
    let dir = match name {
        "olsim" => "sim",
        "olsim-chain" => "chain",
        "olsim-ml" => "ml",
        "olsim-benches" => "benches",
        other => panic!("docs/guide.md names package `{other}`, not one of this workspace"),
    };
    let manifest = std::fs::read_to_string(root().join(dir).join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(&format!("name = \"{name}\"")),
        "{dir}/Cargo.toml"
    );
    root().join(dir)
}

#[test]
fn repository_commands_name_what_exists() {
    let blocks = guide();
    let repo: Vec<&Block> = blocks.iter().filter(|b| b.info == "sh repo").collect();
    assert!(!repo.is_empty());
    for b in repo {
        for line in b.body.lines().filter(|l| !l.trim().is_empty()) {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(
                words[0], "cargo",
                "line {}: `{line}`: only cargo here",
                b.line
            );
            let after = |flag: &str| {
                words
                    .iter()
                    .position(|w| *w == flag)
                    .map(|i| *words.get(i + 1).unwrap_or(&""))
            };
            let pkg = after("-p").map(package_dir);
            let exists = |p: PathBuf| assert!(p.exists(), "`{line}`: {} is missing", p.display());
            if let Some(path) = after("--path") {
                exists(root().join(path).join("Cargo.toml"));
            }
            let dir = || {
                pkg.clone()
                    .unwrap_or_else(|| panic!("`{line}`: which package (-p)?"))
            };
            if let Some(test) = after("--test") {
                exists(dir().join("tests").join(format!("{test}.rs")));
            }
            if let Some(bench) = after("--bench") {
                exists(dir().join("benches").join(format!("{bench}.rs")));
            }
            if let Some(filter) = after("--lib") {
                let module = filter.split("::").next().unwrap();
                let src = dir().join("src");
                assert!(
                    src.join(module).is_dir() || src.join(format!("{module}.rs")).exists(),
                    "`{line}`: no module `{module}` in {}",
                    src.display()
                );
            }
            for file in words.iter().filter(|w| w.ends_with(".toml")) {
                exists(root().join(file));
            }
        }
    }
}

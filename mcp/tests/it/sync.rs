//! `vector_sync_shard` against a real QUIC hub on loopback (an in-process `SyncServer`),
//! driven with raw JSON-RPC: records flow both ways, and an untrusted peer is a tool error.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use reasonbank::memory::{Embedding, NewRecord, ShardId, Store, StoreOptions};
use reasonbank::sync::{Access, SyncConfig, SyncServer, generate_identity};
use serde_json::{Value, json};

use crate::support;

const MODEL: &str = "hub-test-model";

fn store(dir: &std::path::Path) -> Arc<Store> {
    let mut o = StoreOptions::new();
    o.shard_options_mut().dimensions(4).model_id(MODEL);
    Arc::new(Store::open(dir, o).expect("open store"))
}

#[test]
fn vector_sync_shard_exchanges_changes_with_a_trusted_hub_only() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hub_dir = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();

    // This side's identity where the tool looks by default, and its local shard.
    let (cert, key) = generate_identity("mcp").unwrap();
    std::fs::create_dir_all(root.path().join(".sync")).unwrap();
    std::fs::write(root.path().join(".sync/cert.pem"), &cert).unwrap();
    std::fs::write(root.path().join(".sync/key.pem"), &key).unwrap();
    let mine = SyncConfig::new(&cert, &key).unwrap().fingerprint();
    let team = ShardId::new("team").unwrap();
    let e = |v: [f32; 4]| Embedding::new(v.to_vec()).unwrap();
    store(root.path())
        .shard(&team)
        .unwrap()
        .insert(&NewRecord::new("local lesson", e([1.0, 0.0, 0.0, 0.0])))
        .unwrap();

    // The hub: has one record of its own and trusts this side for `team` only.
    let hub = store(hub_dir.path());
    hub.shard(&team)
        .unwrap()
        .insert(&NewRecord::new("hub lesson", e([0.0, 1.0, 0.0, 0.0])))
        .unwrap();
    let (hc, hk) = generate_identity("hub").unwrap();
    let mut cfg = SyncConfig::new(&hc, &hk).unwrap();
    cfg.grant(mine, Some(&team), Access::READ_WRITE);
    let hub_fp = cfg.fingerprint().to_string();
    let server = rt
        .block_on(async { SyncServer::bind("127.0.0.1:0".parse().unwrap(), Arc::clone(&hub), cfg) })
        .unwrap();
    let addr = server.local_addr().unwrap().to_string();
    // A fingerprint that is not the hub's: the hub's real certificate must be refused.
    let (sc, sk) = generate_identity("stranger").unwrap();
    let stranger_fp = SyncConfig::new(&sc, &sk).unwrap().fingerprint().to_string();

    let calls = [
        json!({"name": "vector_sync_shard", "arguments": {"shard": "team", "peer": addr, "trust": hub_fp}}),
        json!({"name": "vector_sync_shard", "arguments": {"shard": "team", "peer": addr, "trust": stranger_fp}}),
        json!({"name": "vector_sync_shard", "arguments": {"shard": "nope", "peer": addr, "trust": hub_fp}}),
        json!({"name": "vector_sync_shard", "arguments": {"shard": "team", "peer": "not an address", "trust": hub_fp}}),
    ];
    let mut lines = vec![
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "sync-test", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    ];
    for (i, c) in calls.iter().enumerate() {
        lines.push(json!({"jsonrpc": "2.0", "id": i + 2, "method": "tools/call", "params": c}));
    }
    let mut child = Command::new(support::binary())
        .arg("--root")
        .arg(root.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut answers = std::collections::HashMap::new();
    // One call at a time, so the sync calls do not race each other.
    for l in &lines {
        writeln!(stdin, "{l}").unwrap();
        if l.get("id").is_some() {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            answers.insert(v["id"].as_u64().unwrap(), v);
        }
    }
    drop(stdin);
    support::wait_with_deadline(&mut child, std::time::Duration::from_secs(30));

    let ok = &answers[&2]["result"];
    assert_eq!(ok["isError"], false, "{ok}");
    let report = &ok["structuredContent"];
    assert_eq!(
        (report["sent"].as_u64(), report["received"].as_u64()),
        (Some(1), Some(1)),
        "{ok}"
    );
    for id in [3, 4, 5] {
        assert_eq!(
            answers[&id]["result"]["isError"], true,
            "call {id}: {}",
            answers[&id]
        );
    }
    // Both sides now hold both lessons.
    assert_eq!(hub.shard(&team).unwrap().count(None).unwrap(), 2);
    assert_eq!(
        store(root.path())
            .shard(&team)
            .unwrap()
            .count(None)
            .unwrap(),
        2
    );
    server.close();
}

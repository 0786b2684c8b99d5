//! Issue #14: sync over a lossy network on real sockets. A UDP relay (tokio `UdpSocket`)
//! between a peer and a hub drops 10% of the datagrams each way, delays some past later ones
//! (reordering) and duplicates others; QUIC retransmits, and a sync of 10,000 records
//! converges with nothing lost or duplicated.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reasonbank_memory::NewRecord;
use reasonbank_sync::{SyncClient, SyncServer};
use tokio::net::UdpSocket;

use crate::{contents, peers, rng, sid, vector};

/// What the relay did, for the test to check that the faults happened.
#[derive(Debug, Default)]
struct Faults {
    forwarded: u64,
    dropped: u64,
    delayed: u64,
    duplicated: u64,
}

/// Sends `buf` to `to` through `sock` with the faults: 10% dropped, 10% delayed by 1–25 ms
/// (so later datagrams overtake them), 5% sent twice.
fn forward(
    sock: &Arc<UdpSocket>,
    to: SocketAddr,
    buf: Vec<u8>,
    rng: &Mutex<StdRng>,
    faults: &Mutex<Faults>,
) {
    let (lose, delay, dup) = {
        let mut r = rng.lock().unwrap();
        (
            r.random_bool(0.10),
            r.random_bool(0.10).then(|| r.random_range(1..25u64)),
            r.random_bool(0.05),
        )
    };
    let mut f = faults.lock().unwrap();
    f.forwarded += 1;
    if lose {
        f.dropped += 1;
        return;
    }
    let copies = if dup {
        f.duplicated += 1;
        2
    } else {
        1
    };
    if delay.is_some() {
        f.delayed += 1;
    }
    drop(f);
    let sock = Arc::clone(sock);
    match delay {
        Some(ms) => {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                for _ in 0..copies {
                    let _ = sock.send_to(&buf, to).await;
                }
            });
        }
        None => {
            for _ in 0..copies {
                // A full socket buffer loses the datagram: one more fault QUIC recovers from.
                let _ = sock.try_send_to(&buf, to);
            }
        }
    }
}

/// A relay in front of `server`: returns the address peers connect to.
async fn relay(server: SocketAddr, seed: u64) -> (SocketAddr, Arc<Mutex<Faults>>) {
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = front.local_addr().unwrap();
    let faults = Arc::new(Mutex::new(Faults::default()));
    let rng = Arc::new(Mutex::new(StdRng::seed_from_u64(seed)));
    let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
    {
        let (front, back, faults, rng, client) = (
            Arc::clone(&front),
            Arc::clone(&back),
            Arc::clone(&faults),
            Arc::clone(&rng),
            Arc::clone(&client),
        );
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            while let Ok((n, from)) = front.recv_from(&mut buf).await {
                *client.lock().unwrap() = Some(from);
                forward(&back, server, buf[..n].to_vec(), &rng, &faults);
            }
        });
    }
    let seen = Arc::clone(&faults);
    tokio::spawn(async move {
        let faults = seen;
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, _)) = back.recv_from(&mut buf).await {
            let to = *client.lock().unwrap();
            if let Some(to) = to {
                forward(&front, to, buf[..n].to_vec(), &rng, &faults);
            }
        }
    });
    (addr, faults)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_14_ten_thousand_records_converge_through_a_lossy_relay() {
    let p = peers(2);
    let id = sid("lossy");
    let (hub, edge) = (p[0].shard("lossy"), p[1].shard("lossy"));
    // 5,000 records on each side, so both directions carry half.
    let mut r = rng(14);
    for (s, who) in [(&hub, "hub"), (&edge, "edge")] {
        let recs: Vec<NewRecord> = (0..5_000)
            .map(|i| {
                NewRecord::new(
                    format!("{who} memory {i}: retry with backoff"),
                    vector(&mut r),
                )
            })
            .collect();
        for chunk in recs.chunks(1_000) {
            s.insert_batch(chunk).unwrap();
        }
    }
    let server = SyncServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        Arc::clone(&p[0].store),
        p[0].config.clone(),
    )
    .unwrap();
    let (addr, faults) = relay(server.local_addr().unwrap(), 14).await;
    let t = std::time::Instant::now();
    let client = SyncClient::connect(addr, p[1].config.clone())
        .await
        .unwrap();
    let rep = client.sync(&id, &edge).await.unwrap();
    eprintln!(
        "lossy sync: {rep:?} in {:?}; relay {:?}",
        t.elapsed(),
        faults.lock().unwrap()
    );
    // Every row crossed exactly once each way and was applied once.
    assert_eq!(
        (rep.changes_sent, rep.changes_received),
        (5_000, 5_000),
        "{rep:?}"
    );
    assert_eq!(rep.changes_applied, 5_000, "{rep:?}");
    let (h, e) = (contents(&hub), contents(&edge));
    assert_eq!(h.len(), 10_000);
    assert_eq!(h, e, "the hub and the peer hold the same rows");
    // Nothing left either way.
    let again = client.sync(&id, &edge).await.unwrap();
    assert_eq!(
        (again.changes_sent, again.changes_received),
        (0, 0),
        "{again:?}"
    );
    let f = faults.lock().unwrap();
    assert!(f.dropped > 0 && f.delayed > 0 && f.duplicated > 0, "{f:?}");
}

//! Security: unknown certificates are rejected before any data, access rules hold for read
//! and write, and malformed, oversized, truncated or bomb frames close the stream with an
//! error code (the server keeps serving).

use std::sync::Arc;

use reasonbank_sync::frame::{self, CODEC_ZSTD};
use reasonbank_sync::proto::{Message, Pull};
use reasonbank_sync::quic::{CODE_DENIED, CODE_FRAME, CODE_PROTOCOL, CODE_VERSION};
use reasonbank_sync::{Access, Error, SyncClient, SyncServer};

use crate::{Peer, contents, edit, rng, sid};

fn local() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_client_certificate_gets_nothing() {
    let server_peer = Peer::new("server");
    let mut client_peer = Peer::new("intruder");
    edit(&server_peer.shard("secret"), &mut rng(1), 10, &[]);
    // The client trusts the server, but the server does not know the client.
    client_peer
        .config
        .grant(server_peer.config.fingerprint(), None, Access::READ_WRITE);
    let server = SyncServer::bind(
        local(),
        Arc::clone(&server_peer.store),
        server_peer.config.clone(),
    )
    .unwrap();
    let b = client_peer.shard("secret");
    // In TLS 1.3 the client may finish its side of the handshake before the server has
    // checked its certificate; then the first stream fails instead.
    match SyncClient::connect(server.local_addr().unwrap(), client_peer.config.clone()).await {
        Err(_) => {}
        Ok(c) => {
            assert!(c.pull(&sid("secret"), &b).await.is_err());
            assert!(
                c.push(&sid("fresh"), &client_peer.shard("fresh"))
                    .await
                    .is_err()
            );
        }
    }
    assert_eq!(
        b.changes_since(0, 10).unwrap().len(),
        0,
        "no data reached the intruder"
    );
    assert!(
        !server_peer.store.exists(&sid("fresh")),
        "the server never opened a shard for it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_server_certificate_is_rejected() {
    let server_peer = Peer::new("impostor");
    let mut client_peer = Peer::new("client");
    let mut sc = server_peer.config.clone();
    sc.grant(client_peer.config.fingerprint(), None, Access::READ_WRITE);
    // The client trusts some other server only.
    client_peer.config.grant(
        Peer::new("real").config.fingerprint(),
        None,
        Access::READ_WRITE,
    );
    let server = SyncServer::bind(local(), Arc::clone(&server_peer.store), sc).unwrap();
    let err = SyncClient::connect(server.local_addr().unwrap(), client_peer.config.clone())
        .await
        .unwrap_err();
    // Refused by this side, in words: what the server presented and what was pinned.
    let Error::HandshakeRefused { by, reason, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*by, "this side");
    let presented = server_peer.config.fingerprint().to_string();
    assert!(
        reason.contains(&presented) && reason.contains("you pinned"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_rules_hold_for_read_and_write() {
    let mut sp = Peer::new("server");
    let mut cp = Peer::new("client");
    let (sf, cf) = (sp.config.fingerprint(), cp.config.fingerprint());
    sp.config
        .allow(cf)
        .grant(cf, Some(&sid("public")), Access::READ)
        .grant(cf, Some(&sid("inbox")), Access::WRITE);
    cp.config.grant(sf, None, Access::READ_WRITE);
    let mut r = rng(2);
    for s in ["public", "inbox"] {
        edit(&sp.shard(s), &mut r, 10, &[]);
        edit(&cp.shard(s), &mut r, 10, &[]);
    }
    let before_public = contents(&sp.shard("public"));
    let before_inbox_client = contents(&cp.shard("inbox"));
    let server = SyncServer::bind(local(), Arc::clone(&sp.store), sp.config.clone()).unwrap();
    let client = SyncClient::connect(server.local_addr().unwrap(), cp.config.clone())
        .await
        .unwrap();
    let refused = |e: Error| matches!(e, Error::Refused { code } if code == u64::from(CODE_DENIED));

    // Read-only shard: pull works, push and sync are refused, the server's shard unchanged.
    client
        .pull(&sid("public"), &cp.shard("public"))
        .await
        .unwrap();
    let e = client
        .push(&sid("public"), &cp.shard("public"))
        .await
        .unwrap_err();
    assert!(refused(e));
    let e = client
        .sync(&sid("public"), &cp.shard("public"))
        .await
        .unwrap_err();
    assert!(refused(e));
    assert_eq!(contents(&sp.shard("public")), before_public);

    // Write-only shard: push works, pull is refused and the client receives nothing.
    client
        .push(&sid("inbox"), &cp.shard("inbox"))
        .await
        .unwrap();
    let e = client
        .pull(&sid("inbox"), &cp.shard("inbox"))
        .await
        .unwrap_err();
    assert!(refused(e));
    assert_eq!(contents(&cp.shard("inbox")), before_inbox_client);

    // No grant: refused, and the server does not even create the shard.
    let e = client
        .pull(&sid("secret"), &cp.shard("secret"))
        .await
        .unwrap_err();
    assert!(refused(e));
    assert!(!sp.store.exists(&sid("secret")));

    // The client's own rules: it lets the server read "mine" only, so it will not pull it.
    let mut cc = cp.config.clone();
    cc.grant(sf, Some(&sid("mine")), Access::READ);
    let c2 = SyncClient::connect(server.local_addr().unwrap(), cc)
        .await
        .unwrap();
    let e = c2.pull(&sid("mine"), &cp.shard("mine")).await.unwrap_err();
    assert!(matches!(e, Error::AccessDenied { .. }), "{e:?}");
}

async fn send_raw(client: &SyncClient, bytes: &[u8], finish: bool) -> Option<u64> {
    let (mut send, mut recv) = client.raw_stream().await.unwrap();
    let _ = send.write_all(bytes).await;
    if finish {
        let _ = send.finish();
    }
    match tokio::time::timeout(
        std::time::Duration::from_secs(10),
        recv.read_to_end(1 << 20),
    )
    .await
    .expect("the server answers a bad frame within 10 s")
    {
        Ok(data) => {
            assert!(data.is_empty(), "nothing is sent back");
            None
        }
        Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(code))) => Some(code.into_inner()),
        Err(e) => panic!("{e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_the_stream_with_an_error() {
    let p = crate::peers(2);
    edit(&p[0].shard("s"), &mut rng(3), 10, &[]);
    let server = SyncServer::bind(local(), Arc::clone(&p[0].store), p[0].config.clone()).unwrap();
    let client = SyncClient::connect(server.local_addr().unwrap(), p[1].config.clone())
        .await
        .unwrap();
    let frame_err = Some(u64::from(CODE_FRAME));

    // Oversized: a length prefix over the 16 MiB default.
    assert_eq!(
        send_raw(&client, &[0xff, 0xff, 0xff, 0xff], false).await,
        frame_err
    );
    // Truncated: 100 bytes announced, 3 sent, then the stream ends.
    assert_eq!(
        send_raw(&client, &[0, 0, 0, 100, 0, 1, 2], true).await,
        frame_err
    );
    // Unknown codec.
    assert_eq!(
        send_raw(&client, &[0, 0, 0, 2, 9, 0], false).await,
        frame_err
    );
    // Not a message.
    assert_eq!(
        send_raw(&client, &[0, 0, 0, 3, 0, 0xff, 0xff], false).await,
        frame_err
    );
    // Decompression bomb: 64 MiB of zeros declared as 1 MiB.
    let packed = zstd::bulk::compress(&vec![0u8; 64 << 20], 1).unwrap();
    let mut bomb = Vec::new();
    bomb.extend_from_slice(&((packed.len() + 5) as u32).to_be_bytes());
    bomb.push(CODEC_ZSTD);
    bomb.extend_from_slice(&(1u32 << 20).to_be_bytes());
    bomb.extend_from_slice(&packed);
    assert_eq!(send_raw(&client, &bomb, false).await, frame_err);
    // A valid frame out of turn: a pull before Open.
    let pull = Message::Pull(Pull {
        req: 1,
        origin: None,
        after: 0,
        limit: 10,
        text_only: false,
    });
    let f = frame::encode(&pull, 0, 1 << 20).unwrap().bytes;
    assert_eq!(
        send_raw(&client, &f, false).await,
        Some(u64::from(CODE_PROTOCOL))
    );

    // The server is still up, and a well-formed sync on the same connection works.
    let b = p[1].shard("s");
    client.pull(&sid("s"), &b).await.unwrap();
    assert_eq!(contents(&p[0].shard("s")), contents(&b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_of_another_model_are_refused() {
    let p = crate::peers(2);
    edit(&p[0].shard("s"), &mut rng(4), 5, &[]);
    let server = SyncServer::bind(local(), Arc::clone(&p[0].store), p[0].config.clone()).unwrap();
    let client = SyncClient::connect(server.local_addr().unwrap(), p[1].config.clone())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut o = reasonbank_memory::ShardOptions::new();
    o.dimensions(crate::DIM).model_id("another-model");
    let other = Arc::new(reasonbank_memory::Shard::open(dir.path().join("s.sqlite"), &o).unwrap());
    let e = client.pull(&sid("s"), &other).await.unwrap_err();
    assert!(
        matches!(e, Error::Refused { code } if code == u64::from(CODE_PROTOCOL)),
        "{e:?}"
    );
    assert_eq!(other.changes_since(0, 10).unwrap().len(), 0);
}

/// A peer of protocol version 1 (whose `Open` has no `text_only`) is refused with
/// `CODE_VERSION`, not as a malformed frame, and receives nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_of_another_protocol_version_is_refused_with_the_version_code() {
    #[derive(serde::Serialize)]
    struct OpenV1 {
        protocol: u16,
        shard: String,
        origin: String,
        model_id: String,
        dims: u32,
        pull: bool,
        push: bool,
    }
    #[derive(serde::Serialize)]
    enum MessageV1 {
        Open(OpenV1),
    }
    let p = crate::peers(2);
    edit(&p[0].shard("s"), &mut rng(5), 5, &[]);
    let server = SyncServer::bind(local(), Arc::clone(&p[0].store), p[0].config.clone()).unwrap();
    let client = SyncClient::connect(server.local_addr().unwrap(), p[1].config.clone())
        .await
        .unwrap();
    let body = postcard::to_stdvec(&MessageV1::Open(OpenV1 {
        protocol: 1,
        shard: "s".into(),
        origin: "old-peer".into(),
        model_id: "test-model".into(),
        dims: crate::DIM as u32,
        pull: true,
        push: false,
    }))
    .unwrap();
    let mut f = ((body.len() + 1) as u32).to_be_bytes().to_vec();
    f.push(frame::CODEC_PLAIN);
    f.extend_from_slice(&body);
    assert_eq!(
        send_raw(&client, &f, false).await,
        Some(u64::from(CODE_VERSION))
    );
    let e = Error::Refused {
        code: u64::from(CODE_VERSION),
    };
    assert!(e.to_string().contains("protocol version"), "{e}");
}

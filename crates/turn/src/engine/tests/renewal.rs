//! Short-lived credentials on the fake clock: expired ones open nothing new, and an allocation
//! made with them lives on only while its member is renewed.

use super::*;

/// The wall clock's Unix seconds at `secs` into the bench.
fn unix(b: &Bench, secs: u64) -> u64 {
    b.wall.duration_since(UNIX_EPOCH).unwrap().as_secs() + secs
}

/// An allocation for `tuple` at `secs`, with credentials issued then for `ttl` seconds.
fn allocate_with_ttl(b: &mut Bench, tuple: FiveTuple, secs: u64, ttl: u64) -> Creds {
    let wall = b.wall + Duration::from_secs(secs);
    let (user, pass) = credentials(SECRET, "peer-1", Duration::from_secs(ttl), wall);
    b.e.handle_client(tuple, &request(ALLOCATE, None, udp_transport), b.at(secs));
    let nonce = error_of(&b.reply()).1.expect("a nonce");
    let creds = Creds { user, pass, nonce };
    let req = request(ALLOCATE, Some(&creds), udp_transport);
    b.e.handle_client(tuple, &req, b.at(secs));
    match b.outputs().as_slice() {
        [Output::OpenRelay { relay }] => b.e.relay_opened(*relay, Some(RELAY_PORT), b.at(secs)),
        other => panic!("expected OpenRelay, got {other:?}"),
    }
    assert_eq!(code_of(&b.reply()), 0);
    creds
}

fn refresh(b: &mut Bench, tuple: FiveTuple, creds: &Creds, secs: u64) -> u16 {
    b.e.handle_client(tuple, &request(REFRESH, Some(creds), |_, _| {}), b.at(secs));
    code_of(&b.reply())
}

/// An Allocate from `tuple` with these credentials at `secs`, after its own challenge.
fn try_allocate(b: &mut Bench, tuple: FiveTuple, user: String, pass: String, secs: u64) -> u16 {
    b.e.handle_client(tuple, &request(ALLOCATE, None, udp_transport), b.at(secs));
    let nonce = error_of(&b.reply()).1.expect("a nonce");
    let creds = Creds { user, pass, nonce };
    b.e.handle_client(
        tuple,
        &request(ALLOCATE, Some(&creds), udp_transport),
        b.at(secs),
    );
    let outputs = b.outputs();
    if let [Output::OpenRelay { relay }] = outputs.as_slice() {
        b.e.relay_opened(*relay, Some(RELAY_PORT + 1), b.at(secs));
        return code_of(&b.reply());
    }
    let replies: Vec<&Vec<u8>> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::ToClient { data, .. } => Some(data),
            _ => None,
        })
        .collect();
    assert_eq!(replies.len(), 1, "{outputs:?}");
    code_of(replies[0])
}

#[test]
fn expired_credentials_open_nothing_new_but_a_renewed_members_allocation_lives_on() {
    let mut b = Bench::new();
    let tuple = udp_client(1000);
    let old = allocate_with_ttl(&mut b, tuple, 0, 100);
    // Halfway, the member is handed fresh credentials for another 100 s, and renewed.
    let (new_user, new_pass) = credentials(
        SECRET,
        "peer-1",
        Duration::from_secs(100),
        b.wall + Duration::from_secs(50),
    );
    b.e.renew("peer-1", unix(&b, 150), b.at(50));

    // Past the old credentials' expiry: the allocation made with them is still refreshed and
    // still gets permissions, from its own 5-tuple.
    assert_eq!(refresh(&mut b, tuple, &old, 120), 0);
    assert_eq!(b.permit(tuple, &old, adv(), b.at(121)), 0);
    // But they open no new allocation, from anywhere; the fresh ones do.
    let other = udp_client(2000);
    assert_eq!(
        try_allocate(&mut b, other, old.user.clone(), old.pass.clone(), 122),
        401
    );
    assert_eq!(try_allocate(&mut b, other, new_user, new_pass, 123), 0);

    // Once the renewal lapses without another, the old credentials are refused everywhere.
    assert_eq!(refresh(&mut b, tuple, &old, 149), 0);
    assert_eq!(refresh(&mut b, tuple, &old, 152), 401);
}

#[test]
fn without_renewal_credentials_stop_at_their_expiry_and_leaving_ends_a_renewal() {
    let mut b = Bench::new();
    let tuple = udp_client(1000);
    let old = allocate_with_ttl(&mut b, tuple, 0, 100);
    assert_eq!(refresh(&mut b, tuple, &old, 100), 0);
    assert_eq!(refresh(&mut b, tuple, &old, 101), 401);

    // Renewed, then the member leaves: its allocation is freed and the renewal forgotten.
    let mut b = Bench::new();
    let old = allocate_with_ttl(&mut b, tuple, 0, 100);
    b.e.renew("peer-1", unix(&b, 300), b.at(50));
    b.e.revoke("peer-1", unix(&b, 300), b.at(60));
    assert_eq!(b.e.stats().allocations, 0);
    assert_eq!(refresh(&mut b, tuple, &old, 61), 401);
    // A renewal that comes after the leave (a race) does not bring it back.
    b.e.renew("peer-1", unix(&b, 400), b.at(62));
    assert_eq!(refresh(&mut b, tuple, &old, 120), 401);
    // Another member's renewal does nothing for this one's credentials.
    let mut b = Bench::new();
    let old = allocate_with_ttl(&mut b, tuple, 0, 100);
    b.e.renew("peer-2", unix(&b, 300), b.at(50));
    assert_eq!(refresh(&mut b, tuple, &old, 120), 401);
}

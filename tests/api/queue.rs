//! The sending queue's claims, straight on the store (no workers racing the test): a
//! worker whose claim was taken over changes nothing but keep the sid of a `201`, which the
//! next holder records instead of posting, and a sid that one message holds is never
//! recorded for another.

use std::sync::Arc;
use std::time::Duration;

use smsdesk::config::DatabaseUrl;
use smsdesk::domain::{ClientId, MessageBody, NewAgent, PhoneNumber};
use smsdesk::model::{AgentId, MessageId, Status};
use smsdesk::store::{Accepted, CreateGate, NewOutbound, Outbound, SendJob, Store};

use crate::helpers::{answer, listed, new_sid, wait_until};

/// Runs `test` on a fresh store of each backend (PostgreSQL when `TEST_DATABASE_URL` is set).
macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => { $(
        mod $test {
            use crate::helpers::{Backend, with_database};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                with_database(Backend::Sqlite, async |url| super::$test(super::open(&url).await).await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                with_database(Backend::Postgres, async |url| super::$test(super::open(&url).await).await).await
            }
        }
    )* };
}

on_both_stores! {
    a_claim_that_was_taken_over_changes_nothing,
    a_sid_another_message_holds_is_refused_and_the_job_stays,
    a_created_sid_outlives_a_lost_claim_and_is_never_posted_again,
}

fn phone(number: &str) -> PhoneNumber {
    PhoneNumber::parse("phone", number).unwrap()
}

async fn open(url: &str) -> Arc<Store> {
    smsdesk::store::connect(&DatabaseUrl::parse(url).unwrap(), Duration::from_secs(5))
        .await
        .unwrap()
}

/// An agent on +15550001000 and `n` queued messages to one contact, all saying "ok".
async fn queued(store: &Store, n: usize) -> (AgentId, Vec<MessageId>) {
    let agent = store
        .create_agent(
            &NewAgent::parse_invited("a@x.io", "A", &["+15550001000".into()]).unwrap(),
            "hash",
        )
        .await
        .unwrap()
        .unwrap();
    let conversation = store
        .open_conversation(&phone("+15550001000"), &phone("+14155550123"), None)
        .await
        .unwrap()
        .conversation;
    let mut ids = Vec::new();
    for i in 0..n {
        let new = NewOutbound {
            conversation_id: conversation.id,
            agent_id: agent.id,
            client_id: ClientId::try_from(format!("c-{i}")).unwrap(),
            body: MessageBody::try_from("ok".to_owned()).unwrap(),
            segments: 1,
            retry_of: None,
            assign: false,
            media: Vec::new(),
        };
        match store.insert_outbound(&new).await.unwrap() {
            Outbound::Created(m) => ids.push(m.message.id),
            other => panic!("not queued: {other:?}"),
        }
    }
    (agent.id, ids)
}

/// Claims the next job, waiting for a lease that is running out.
async fn claim(store: &Store, lease: Duration) -> SendJob {
    wait_until("a job to claim", async || {
        store.claim_send(lease).await.unwrap()
    })
    .await
}

async fn a_claim_that_was_taken_over_changes_nothing(store: Arc<Store>) {
    let (agent, ids) = queued(&store, 1).await;
    let before = store.message(agent, ids[0]).await.unwrap().unwrap();
    let stale = claim(&store, Duration::ZERO).await;
    // Its lease ran out at once: another worker takes the message over.
    let current = claim(&store, Duration::from_secs(60)).await;
    assert_eq!(current.claim.message, stale.claim.message);
    assert!(current.claim.token > stale.claim.token);
    assert!(current.maybe_sent, "the first worker may have sent it");

    let stale = stale.claim;
    let now = chrono::Utc::now();
    assert!(
        !store
            .renew_lease(stale, Duration::from_secs(60))
            .await
            .unwrap()
    );
    let accepted = store
        .mark_accepted(stale, &listed(&new_sid(), Status::Queued))
        .await;
    assert!(matches!(accepted.unwrap(), Accepted::LostClaim));
    let failed = store.mark_failed(stale, Some(21610), "x", true).await;
    assert!(failed.unwrap().is_none());
    assert!(!store.reschedule(stale, now, "x", false).await.unwrap());
    assert!(!store.defer(stale, now).await.unwrap());

    let after = store.message(agent, ids[0]).await.unwrap().unwrap();
    assert_eq!(after.status, Status::Pending);
    assert_eq!(after.twilio_sid, None);
    assert_eq!(after.seq, before.seq, "no change at all");
    let conversation = store.conversation(agent, after.conversation_id).await;
    assert!(!conversation.unwrap().unwrap().contact.opted_out);
    assert_eq!(store.queue_stats().await.unwrap().depth, 1);
    assert!(
        store
            .claim_send(Duration::from_secs(60))
            .await
            .unwrap()
            .is_none(),
        "still leased to the current worker"
    );

    // The current holder renews and records.
    let current = current.claim;
    assert!(
        store
            .renew_lease(current, Duration::from_secs(60))
            .await
            .unwrap()
    );
    let sid = new_sid();
    match store
        .mark_accepted(current, &answer(&sid, Status::Queued))
        .await
        .unwrap()
    {
        Accepted::Recorded(changed) => {
            assert_eq!(changed.message.twilio_sid.as_deref(), Some(sid.as_str()));
            assert_eq!(changed.message.status, Status::Queued);
        }
        other => panic!("not recorded: {other:?}"),
    }
    assert_eq!(store.queue_stats().await.unwrap().depth, 0);
}

async fn a_sid_another_message_holds_is_refused_and_the_job_stays(store: Arc<Store>) {
    let (agent, ids) = queued(&store, 2).await;
    let first = claim(&store, Duration::from_secs(60)).await;
    assert_eq!(first.claim.message, ids[0]);
    let sid = new_sid();
    let recorded = store
        .mark_accepted(first.claim, &answer(&sid, Status::Queued))
        .await;
    assert!(matches!(recorded.unwrap(), Accepted::Recorded(_)));

    let second = claim(&store, Duration::from_secs(60)).await;
    assert_eq!(second.claim.message, ids[1]);
    let refused = store
        .mark_accepted(second.claim, &listed(&sid, Status::Sent))
        .await;
    assert!(matches!(refused.unwrap(), Accepted::SidTaken));
    let held = store.message(agent, ids[0]).await.unwrap().unwrap();
    assert_eq!(held.twilio_sid.as_deref(), Some(sid.as_str()));
    assert_eq!(held.status, Status::Queued);
    let waiting = store.message(agent, ids[1]).await.unwrap().unwrap();
    assert_eq!(waiting.twilio_sid, None);
    assert_eq!(waiting.status, Status::Pending);

    // Not wedged: the claim still holds the job, which goes back to the queue.
    assert_eq!(store.queue_stats().await.unwrap().depth, 1);
    let back = store
        .reschedule(second.claim, chrono::Utc::now(), "sid taken", true)
        .await
        .unwrap();
    assert!(back);
    let again = claim(&store, Duration::from_secs(60)).await;
    assert_eq!(again.claim.message, ids[1]);
    assert!(again.maybe_sent);
    let other = new_sid();
    let recorded = store
        .mark_accepted(again.claim, &listed(&other, Status::Queued))
        .await;
    assert!(matches!(recorded.unwrap(), Accepted::Recorded(_)));
    assert_eq!(store.queue_stats().await.unwrap().depth, 0);
}

async fn a_created_sid_outlives_a_lost_claim_and_is_never_posted_again(store: Arc<Store>) {
    let (agent, ids) = queued(&store, 2).await;
    let lease = Duration::from_secs(60);
    let stale = claim(&store, Duration::ZERO).await;
    // Its lease runs out on the next millisecond (leases are kept to the millisecond);
    // then another worker takes the first message over, not the second.
    tokio::time::sleep(Duration::from_millis(2)).await;
    let current = claim(&store, lease).await;
    assert_eq!(current.claim.message, ids[0]);
    assert_eq!(current.created_sid, None);

    // The stale worker's create was answered 201: it cannot record it, but keeps its sid.
    let sid = new_sid();
    let kept = store
        .mark_accepted(stale.claim, &answer(&sid, Status::Queued))
        .await;
    assert!(matches!(kept.unwrap(), Accepted::LostClaim));
    assert!(store.has_sid(&sid).await.unwrap(), "no look-alike takes it");
    // The current holder, about to post, records that sid instead.
    let gate = store
        .ready_to_create(current.claim, lease, None)
        .await
        .unwrap();
    assert_eq!(gate, CreateGate::Created(sid.clone()));
    let recorded = store
        .mark_accepted(current.claim, &answer(&sid, Status::Queued))
        .await;
    let Accepted::Recorded(first) = recorded.unwrap() else {
        panic!("not recorded")
    };
    assert_eq!(first.message.twilio_sid.as_deref(), Some(sid.as_str()));

    // A 201 with the sid another message holds: Twilio has the message, so it is recorded
    // (its status by the answer) without the sid, and its job is done.
    let second = claim(&store, lease).await;
    assert_eq!(second.claim.message, ids[1]);
    let gate = store
        .ready_to_create(second.claim, lease, None)
        .await
        .unwrap();
    assert_eq!(gate, CreateGate::Go(Duration::ZERO));
    let recorded = store
        .mark_accepted(second.claim, &answer(&sid, Status::Sent))
        .await;
    let Accepted::Recorded(changed) = recorded.unwrap() else {
        panic!("not recorded")
    };
    assert_eq!(changed.message.twilio_sid, None);
    assert_eq!(changed.message.status, Status::Sent);
    assert_eq!(store.queue_stats().await.unwrap().depth, 0);
    let held = store.message(agent, ids[0]).await.unwrap().unwrap();
    assert_eq!(held.twilio_sid.as_deref(), Some(sid.as_str()));
    assert_eq!(held.status, Status::Queued);
}

//! Status precedence as the store applies it, against the rule in Rust
//! ([`Status::may_replace`], [`Status::reported_for`]), over every pair of statuses and on
//! both backends: Twilio's callbacks, the sid recorded after statuses came in early, and a
//! failed send.

use std::sync::Arc;
use std::time::Duration;

use smsdesk::config::DatabaseUrl;
use smsdesk::domain::{ClientId, MessageBody, NewAgent, PhoneNumber};
use smsdesk::model::{AgentId, ConversationId, Direction, Message, MessageId, Status};
use smsdesk::store::{
    Accepted, NewInbound, NewOutbound, Outbound, SendJob, StatusOutcome, StatusReport, Store,
};

use crate::helpers::{Backend, answer, new_sid, with_database};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_applies_the_precedence_rule_on_sqlite() {
    with_database(Backend::Sqlite, async |url| {
        every_pair(open(&url).await).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_applies_the_precedence_rule_on_postgres() {
    with_database(Backend::Postgres, async |url| {
        every_pair(open(&url).await).await
    })
    .await
}

fn phone(number: &str) -> PhoneNumber {
    PhoneNumber::parse("phone", number).unwrap()
}

async fn open(url: &str) -> Arc<Store> {
    smsdesk::store::connect(&DatabaseUrl::parse(url).unwrap(), Duration::from_secs(5))
        .await
        .unwrap()
}

const OURS: &str = "+15550001000";
const CONTACT: &str = "+14155550123";

/// The store, an agent on [`OURS`] and their conversation with [`CONTACT`].
struct Desk {
    store: Arc<Store>,
    agent: AgentId,
    conversation: ConversationId,
    sends: usize,
}

impl Desk {
    async fn new(store: Arc<Store>) -> Self {
        let agent = store
            .create_agent(
                &NewAgent::parse_invited("a@x.io", "A", &[OURS.into()]).unwrap(),
                "hash",
            )
            .await
            .unwrap()
            .unwrap();
        let conversation = store
            .open_conversation(&phone(OURS), &phone(CONTACT), None)
            .await
            .unwrap();
        Self {
            store,
            agent: agent.id,
            conversation: conversation.conversation.id,
            sends: 0,
        }
    }

    /// A new outbound message, `pending` and queued.
    async fn outbound(&mut self) -> Message {
        self.sends += 1;
        let new = NewOutbound {
            conversation_id: self.conversation,
            agent_id: self.agent,
            client_id: ClientId::try_from(format!("c-{}", self.sends)).unwrap(),
            body: MessageBody::try_from("ok".to_owned()).unwrap(),
            segments: 1,
            retry_of: None,
            assign: false,
            media: Vec::new(),
        };
        match self.store.insert_outbound(&new).await.unwrap() {
            Outbound::Created(created) => created.message,
            other => panic!("not queued: {other:?}"),
        }
    }

    /// A new inbound message, `received`.
    async fn inbound(&self) -> Message {
        let new = NewInbound {
            twilio_sid: new_sid(),
            from: CONTACT.into(),
            to: OURS.into(),
            body: "hi".into(),
            media: Vec::new(),
            segments: 1,
            opt_change: None,
        };
        self.store
            .insert_inbound(new, self.store.inbound_arrival())
            .await
            .unwrap()
            .unwrap()
            .message
    }

    /// Claims `message`'s job (the only one due).
    async fn claim(&self, message: &Message) -> SendJob {
        let job = self
            .store
            .claim_send(Duration::from_secs(60))
            .await
            .unwrap()
            .expect("a job is due");
        assert_eq!(job.claim.message, message.id);
        job
    }

    /// Reports `status` for `sid`, naming `message` as our `StatusCallback` URL does.
    async fn report(&self, message: Option<MessageId>, sid: &str, status: Status) -> StatusOutcome {
        let report = StatusReport {
            message_id: message,
            twilio_sid: sid.to_owned(),
            status,
            error_code: status.is_failure().then_some(30003),
        };
        self.store.apply_status(&report).await.unwrap()
    }

    async fn stored(&self, message: &Message) -> Message {
        self.store
            .message(self.agent, message.id)
            .await
            .unwrap()
            .unwrap()
    }

    /// A message of the direction `current` is reported for (an outbound one for
    /// `pending`), stored with `current`.
    async fn message_at(&mut self, current: Status) -> (Message, Direction) {
        if current == Status::Received {
            return (self.inbound().await, Direction::Inbound);
        }
        let message = self.outbound().await;
        // Its job waits out the test, so the other sections claim only their own.
        let job = self.claim(&message).await;
        let later = chrono::Utc::now() + chrono::Duration::days(1);
        assert!(self.store.defer(job.claim, later).await.unwrap());
        if current != Status::Pending {
            let sid = new_sid();
            let outcome = self.report(Some(message.id), &sid, current).await;
            assert!(
                matches!(outcome, StatusOutcome::Applied(_)),
                "{current:?} over pending: {outcome:?}"
            );
        }
        let message = self.stored(&message).await;
        assert_eq!(message.status, current);
        (message, Direction::Outbound)
    }
}

/// Where applying `reports` one after the other, by the rule, leaves a message at `start`.
fn in_turn(start: Status, direction: Direction, reports: &[Status]) -> Status {
    reports
        .iter()
        .filter(|s| s.reported_for(direction))
        .fold(start, |kept, s| if s.may_replace(kept) { *s } else { kept })
}

async fn every_pair(store: Arc<Store>) {
    let mut desk = Desk::new(store).await;

    // A callback for a stored message.
    for current in Status::ALL {
        for new in Status::ALL {
            let (message, direction) = desk.message_at(current).await;
            let sid = message.twilio_sid.clone().unwrap_or_else(new_sid);
            let named = (direction == Direction::Outbound).then_some(message.id);
            let outcome = desk.report(named, &sid, new).await;
            let expected = new.reported_for(direction) && new.may_replace(current);
            assert_eq!(
                matches!(outcome, StatusOutcome::Applied(_)),
                expected,
                "{new:?} over {current:?} ({direction:?}): {outcome:?}"
            );
            let after = desk.stored(&message).await;
            assert_eq!(
                after.status,
                if expected { new } else { current },
                "{new:?} over {current:?}"
            );
            assert_eq!(after.seq > message.seq, expected, "seq moves with a change");
        }
    }

    // Two statuses that came in before the send's sid was recorded, then the sid.
    for first in Status::ALL {
        for second in Status::ALL {
            let message = desk.outbound().await;
            let job = desk.claim(&message).await;
            let sid = new_sid();
            for early in [first, second] {
                let outcome = desk.report(None, &sid, early).await;
                let kept = early.reported_for(Direction::Outbound);
                assert_eq!(
                    matches!(outcome, StatusOutcome::Deferred),
                    kept,
                    "{early:?} early: {outcome:?}"
                );
            }
            let accepted = desk
                .store
                .mark_accepted(job.claim, &answer(&sid, Status::Queued))
                .await
                .unwrap();
            let Accepted::Recorded(change) = accepted else {
                panic!("not recorded: {accepted:?}")
            };
            // They are kept in the order they came to the millisecond: two within one may
            // be taken either way round.
            let either = [[first, second], [second, first]].map(|[a, b]| {
                in_turn(
                    Status::Pending,
                    Direction::Outbound,
                    &[Status::Queued, a, b],
                )
            });
            assert!(
                either.contains(&change.message.status),
                "queued, then {first:?} and {second:?} early: {:?}",
                change.message.status
            );
            let expected = change.message.status;
            assert_eq!(desk.stored(&message).await.status, expected);
        }
    }

    // The answer to the send itself, after a callback that named the message came first.
    for current in Status::ALL {
        for answered in Status::ALL {
            if !current.reported_for(Direction::Outbound) {
                continue;
            }
            let message = desk.outbound().await;
            let job = desk.claim(&message).await;
            let sid = new_sid();
            desk.report(Some(message.id), &sid, current).await;
            let accepted = desk
                .store
                .mark_accepted(job.claim, &answer(&sid, answered))
                .await
                .unwrap();
            let Accepted::Recorded(change) = accepted else {
                panic!("not recorded: {accepted:?}")
            };
            let expected =
                if answered.reported_for(Direction::Outbound) && answered.may_replace(current) {
                    answered
                } else {
                    current
                };
            assert_eq!(
                change.message.status, expected,
                "{answered:?} answered after {current:?}"
            );
        }
    }

    // A send that failed for good, after any callback that named the message.
    for current in Status::ALL {
        if current == Status::Received {
            continue;
        }
        let message = desk.outbound().await;
        let job = desk.claim(&message).await;
        if current != Status::Pending {
            desk.report(Some(message.id), &new_sid(), current).await;
        }
        let failed = desk
            .store
            .mark_failed(job.claim, Some(21211), "invalid number", false)
            .await
            .unwrap()
            .expect("the claim is ours");
        let expected = if Status::Failed.may_replace(current) {
            Status::Failed
        } else {
            current
        };
        assert_eq!(failed.message.status, expected, "failed after {current:?}");
    }
}

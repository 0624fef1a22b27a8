//! The conversation list of an agent with several numbers, one of them shared: each number's
//! conversations are read in activity order and merged, so every page must be exactly the
//! next conversations of all the agent's numbers together, newest activity first, however
//! their activity interleaves, and a walk through the pages must neither repeat nor skip a
//! conversation while others move to the top.

use std::collections::{HashMap, HashSet};

use serde_json::json;
use smsdesk::api::conversations::{ConversationPage, MessagePage};
use smsdesk::model::Conversation;

use crate::helpers::{Agent, TestApp};
use crate::on_both_backends;

on_both_backends! {
    every_page_is_the_next_of_all_the_agents_numbers_merged: FakeTwilio,
    a_walk_sees_each_conversation_once_while_others_move: FakeTwilio,
}

const A: &str = "+15550003001";
const B: &str = "+15550003002";
/// Shared by Alice and Bob.
const C: &str = "+15550003003";
/// Bob's alone.
const D: &str = "+15550003004";

/// Which number each contact writes to, in the order they write: runs of one number of
/// different lengths, so that a page mixes the numbers in every proportion.
const WRITES_TO: &[&str] = &[
    A, A, A, B, C, B, D, C, C, C, A, A, B, D, B, B, B, B, C, A, C, D, A, B,
];

/// What the test knows of each conversation, from the messages it sent (never from the list).
struct Inbox {
    /// Conversation id → (our number, activity: the `seq` of its newest message).
    conversations: HashMap<i64, (&'static str, i64)>,
    contacts: HashMap<i64, String>,
}

impl Inbox {
    /// One inbound message from each contact, to the number [`WRITES_TO`] gives it.
    async fn fill(app: &TestApp, alice: &Agent, bob: &Agent) -> Self {
        let mut inbox = Inbox {
            conversations: HashMap::new(),
            contacts: HashMap::new(),
        };
        for (i, &number) in WRITES_TO.iter().enumerate() {
            let contact = format!("+1415555{i:04}");
            app.inbound(&contact, number, &format!("hello {i}")).await;
            let owner = if number == D { bob } else { alice };
            let (status, conversation) = app
                .post_json_as::<Conversation>(
                    "/api/crm/sms/conversations",
                    Some(owner),
                    json!({"phone": contact, "from": number}),
                )
                .await;
            assert_eq!(status, 200, "{conversation:?}");
            let id = conversation.id.get();
            let activity = newest_seq(app, owner, id).await;
            inbox.conversations.insert(id, (number, activity));
            inbox.contacts.insert(id, contact);
        }
        inbox
    }

    /// A new inbound message in conversation `id`, which moves it to the top.
    async fn touch(&mut self, app: &TestApp, reader: &Agent, id: i64) {
        let number = self.conversations[&id].0;
        app.inbound(&self.contacts[&id], number, "again").await;
        let activity = newest_seq(app, reader, id).await;
        assert!(activity > self.conversations[&id].1);
        self.conversations.insert(id, (number, activity));
    }

    /// The conversations of `numbers` after `cursor` as (activity, id), in the list's order.
    fn after(&self, numbers: &[&str], cursor: Option<i64>) -> Vec<(i64, i64)> {
        let mut rows: Vec<(i64, i64)> = self
            .conversations
            .iter()
            .filter(|(_, (n, a))| numbers.contains(n) && cursor.is_none_or(|c| *a < c))
            .map(|(id, (_, a))| (*a, *id))
            .collect();
        rows.sort_by(|x, y| y.cmp(x));
        rows
    }

    fn ids_after(&self, numbers: &[&str], cursor: Option<i64>) -> Vec<i64> {
        self.after(numbers, cursor)
            .into_iter()
            .map(|(_, id)| id)
            .collect()
    }

    /// The page the list owes `numbers` after `cursor`: ids, and the next cursor.
    fn page(&self, numbers: &[&str], cursor: Option<i64>, limit: usize) -> (Vec<i64>, Option<i64>) {
        let mut rows = self.after(numbers, cursor);
        rows.truncate(limit);
        let next = (rows.len() == limit).then(|| rows[limit - 1].0);
        (rows.into_iter().map(|(_, id)| id).collect(), next)
    }
}

/// The `seq` of the conversation's newest message, as its thread shows it.
async fn newest_seq(app: &TestApp, agent: &Agent, conversation: i64) -> i64 {
    let (status, page) = app
        .get_as::<MessagePage>(
            &format!("/api/crm/sms/conversations/{conversation}/messages?limit=1"),
            Some(agent),
        )
        .await;
    assert_eq!(status, 200);
    page.messages[0].seq
}

/// One page of the list as the server gives it: ids, and the next cursor.
async fn list(
    app: &TestApp,
    agent: &Agent,
    cursor: Option<i64>,
    limit: usize,
) -> (Vec<i64>, Option<i64>) {
    let cursor = cursor.map(|c| c.to_string()).unwrap_or_default();
    let (status, page) = app
        .get_as::<ConversationPage>(
            &format!("/api/crm/sms/conversations?limit={limit}&cursor={cursor}"),
            Some(agent),
        )
        .await;
    assert_eq!(status, 200);
    (
        page.conversations.iter().map(|c| c.id.get()).collect(),
        page.next_cursor.map(|c| c.0),
    )
}

async fn every_page_is_the_next_of_all_the_agents_numbers_merged(app: TestApp) {
    let alice = app.agent("alice@example.com", &[A, B, C]).await;
    let bob = app.agent("bob@example.com", &[C, D]).await;
    let inbox = Inbox::fill(&app, &alice, &bob).await;
    for (agent, numbers) in [(&alice, &[A, B, C][..]), (&bob, &[C, D][..])] {
        for limit in [1, 2, 3, 5, 200] {
            let mut cursor = None;
            let mut walked = Vec::new();
            loop {
                let page = list(&app, agent, cursor, limit).await;
                assert_eq!(
                    page,
                    inbox.page(numbers, cursor, limit),
                    "page after {cursor:?}, limit {limit}, of {numbers:?}"
                );
                walked.extend(page.0);
                match page.1 {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            assert_eq!(
                walked,
                inbox.ids_after(numbers, None),
                "the walk with limit {limit} is the whole list"
            );
        }
    }
}

async fn a_walk_sees_each_conversation_once_while_others_move(app: TestApp) {
    let alice = app.agent("alice@example.com", &[A, B, C]).await;
    let bob = app.agent("bob@example.com", &[C, D]).await;
    let mut inbox = Inbox::fill(&app, &alice, &bob).await;
    let numbers = [A, B, C];
    let mut cursor = None;
    let mut seen: Vec<i64> = Vec::new();
    let mut moved = HashSet::new();
    loop {
        let page = list(&app, &alice, cursor, 3).await;
        assert_eq!(
            page,
            inbox.page(&numbers, cursor, 3),
            "page after {cursor:?}"
        );
        seen.extend(&page.0);
        let Some(next) = page.1 else { break };
        cursor = Some(next);
        // One already seen moves to the top, one not seen yet (the oldest) jumps over the
        // cursor, and one of Bob's own number moves where Alice cannot see it.
        let unseen = inbox.ids_after(&numbers, cursor);
        let mut moves = vec![page.0[0]];
        moves.extend(unseen.last());
        moves.extend(inbox.page(&[D], None, 1).0);
        for id in moves {
            let reader = if inbox.conversations[&id].0 == D {
                &bob
            } else {
                &alice
            };
            inbox.touch(&app, reader, id).await;
            moved.insert(id);
        }
    }
    let mut once = HashSet::new();
    assert!(
        seen.iter().all(|id| once.insert(*id)),
        "no conversation twice: {seen:?}"
    );
    let still: Vec<i64> = inbox
        .ids_after(&numbers, None)
        .into_iter()
        .filter(|id| !moved.contains(id))
        .collect();
    assert!(
        still.iter().all(|id| once.contains(id)),
        "every conversation that did not move was seen: {still:?} in {seen:?}"
    );
}

//! What differs between the backends, as one [`Dialect`] each backend gives (`postgres.rs`,
//! `sqlite.rs`): the statements the rest of the store runs on whichever is open (`db.rs`)
//! without naming the backend.

/// A backend: a database sqlx speaks, and the dialect the store speaks to it.
pub(super) trait Backend: sqlx::Database {
    const DIALECT: Dialect;
}

/// The statements that differ between the backends.
pub(super) struct Dialect {
    pub name: &'static str,
    /// Run before a commit, with the number of `seq`s the transaction took as `$1`, where
    /// `seq_base` does not move by itself.
    pub count_seqs: Option<&'static str>,
    /// Reads message `$1`'s status, which must not change until the transaction ends: a
    /// status is only written after Rust decided it may replace the stored one.
    pub lock_status: &'static str,
    /// A status callback's message by id (`[0]`) or by sid (`[1]`) as `$1`, with its status
    /// locked as by `lock_status` (see `statuses.rs`).
    pub status_target: [&'static str; 2],
    /// A page of agent `$1`'s conversations with `activity` below `$2`, at most `$3`, newest
    /// activity first (ties: highest id first), as [`super::rows::ListedRow`]s: of every
    /// status and assignee (`[0]`), of status `$4` (`[1]`), unassigned (`[2]`), or both
    /// (`[3]`) (see [`list_filters!`]). Each of the agent's numbers reads its own page from
    /// an index that starts with `our_number` (and the status), and the pages are merged:
    /// an `IN` over the numbers would cost a scan and sort of all the agent's conversations.
    pub list_conversations: [&'static str; 4],
    /// Agent `$1`'s conversations with `changed` above `$2` and at most `$4`, at most `$3`,
    /// in change order (ties: lowest id first), as [`super::rows::ConversationRow`]s. Each
    /// number reads its own changes from `conversations_changed_per_number`, as the list
    /// reads its pages (`migrations/*/0018_changes_per_number.sql`).
    pub conversation_changes: &'static str,
    /// Whether agent `$1` may be assigned conversation `$2` (see `inbox.rs`).
    pub assignable: &'static str,
    /// Opens the snoozed conversations whose time came, locking them in order (see `inbox.rs`).
    pub wake_snoozed: &'static str,
    /// Unassigns an agent's conversations they may no longer be assigned, locking them in
    /// order (see `inbox.rs`).
    pub unassign_lost: &'static str,
    /// Folds at most `$1` of the counters' changes into the counters, where triggers append
    /// changes instead of updating the counters (see `inbox.rs`).
    pub fold_counts: Option<&'static str>,
    /// Claims the first due job of the sending queue (see `queue.rs`).
    pub claim: &'static str,
    /// Makes another first-agent insert wait for this one, where writers are not serialised
    /// anyway.
    pub lock_agents: Option<&'static str>,
    /// Starts a session if its agent is enabled (see `agents.rs`), with the agent's row held
    /// against a concurrent disable where writers are not serialised anyway.
    pub insert_session: &'static str,
    /// Deletes the login subjects not used for `$1` microseconds, never waiting for one that
    /// a login attempt holds (see `logins.rs`).
    pub prune_login_subjects: &'static str,
    /// Of the sessions whose token hashes are the JSON array `$1`, those that hold at `$2`
    /// (see `agents.rs`).
    pub live_sessions: &'static str,
}

/// The filters of `list_conversations`, in its order, each as `$list!` writes it into a
/// number's page (columns unqualified: they are the page's conversations).
macro_rules! list_filters {
    ($list:ident) => {
        [
            $list!(""),
            $list!(" AND status = $4"),
            $list!(" AND assignee_id IS NULL"),
            $list!(" AND status = $4 AND assignee_id IS NULL"),
        ]
    };
}

pub(super) use list_filters;

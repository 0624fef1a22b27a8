//! Integration tests: the real server, a real database, real HTTP and socket.io clients,
//! and Twilio replaced by a fake HTTP server (or the built-in simulator).

mod helpers;

mod admin;
mod auth;
mod balancer;
mod connections;
mod crash;
mod disabling;
mod fanout;
mod group_commit;
mod inbound;
mod inbox_list;
mod input;
mod instances;
mod media;
mod metrics;
mod mms;
mod names;
mod outage;
mod precedence;
mod queue;
mod realtime;
mod reliability;
mod replies;
mod resync;
mod search;
mod search_input;
mod sending;
mod socket_input;
mod status;
mod status_checks;
mod stored;
mod sync;
mod team_inbox;
mod team_instances;
mod team_rules;
mod upgrade;
mod upload_input;
mod uploads;
mod watermark;

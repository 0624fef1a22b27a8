//! The simulator's routes (docs/api.md, "The simulator"), mounted only in simulator mode:
//! `POST /dev/simulate/inbound` for the page's "Simulate incoming SMS", and the fake
//! Messages API the real Twilio client talks to (`/dev/twilio/…`, `/dev/status`).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::CurrentAgent;
use crate::domain::{MessageBody, PhoneNumber};
use crate::error::{AppError, AppResult, Json};
use crate::twilio::simulator::{self, Simulator};
use crate::webhooks::{INBOUND_PATH, MAX_MEDIA, is_media_url};

pub fn router(sim: Arc<Simulator>) -> Router<AppState> {
    Router::new()
        .route("/dev/simulate/inbound", post(simulate_inbound))
        .merge(simulator::router_for(sim))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SimulateBody {
    from: String,
    to: String,
    body: String,
    #[serde(default)]
    media_urls: Vec<String>,
}

/// What became of the simulated webhook's first delivery.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulatedInbound {
    pub message_sid: String,
    /// What our webhook answered, if it answered.
    pub webhook_status: Option<u16>,
    /// Whether the simulator goes on retrying it, as Twilio would.
    pub retrying: bool,
}

/// `POST /dev/simulate/inbound`: the simulator posts a signed inbound webhook to us.
async fn simulate_inbound(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    Json(body): Json<SimulateBody>,
) -> AppResult<(StatusCode, Json<SimulatedInbound>)> {
    let Some(sim) = state.services.simulator.clone() else {
        return Err(AppError::NotFound("route"));
    };
    let from = PhoneNumber::parse("from", &body.from)?;
    let to = PhoneNumber::parse("to", &body.to)?;
    if !agent.numbers.iter().any(|n| n == to.as_str()) {
        return Err(AppError::invalid("to must be one of your numbers"));
    }
    MessageBody::check_caption(&body.body, !body.media_urls.is_empty())?;
    if body.media_urls.len() > MAX_MEDIA || !body.media_urls.iter().all(|u| is_media_url(u)) {
        return Err(AppError::invalid("mediaUrls must be up to 10 http(s) URLs"));
    }
    let params = sim.inbound_params(from.as_str(), to.as_str(), &body.body, &body.media_urls);
    let sid = params[0].1.clone();
    let url = format!("{}{INBOUND_PATH}", state.config.public_url);
    let delivery = sim
        .deliver(url, params, state.runtime.shutdown.clone())
        .await;
    let simulated = SimulatedInbound {
        message_sid: sid,
        webhook_status: delivery.status,
        retrying: delivery.retrying,
    };
    Ok((StatusCode::ACCEPTED, Json(simulated)))
}

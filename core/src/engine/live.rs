//! The engine's side of the live view: it feeds [`LiveStats`] with what
//! happens and answers the runtime's "status now" with a snapshot that
//! adds the calls in progress.

use std::time::Instant;

use super::Engine;
use crate::acd::AgentConfig;
use crate::call::Call;
use crate::ids::CallKey;
use crate::leg::LegState;
use crate::live::{CallView, LiveAgent, LiveEvent, LiveSettings, LiveSnapshot, LiveStats};

/// Builds the live figures for an engine at start: every queue, every
/// agent logged out.
pub(super) fn new_stats(
    settings: LiveSettings,
    queues: &[crate::acd::QueueConfig],
    agents: &[AgentConfig],
    now: Instant,
    epoch: (Instant, u64),
) -> LiveStats {
    let names: Vec<String> = queues.iter().map(|q| q.name.clone()).collect();
    let agents = agents
        .iter()
        .map(|a| LiveAgent {
            id: a.id.clone(),
            name: a.name.clone(),
            number: a.number.clone(),
            queues: a.queues.clone(),
        })
        .collect();
    LiveStats::new(settings, &names, agents, now, epoch)
}

impl Engine {
    /// Changes when a call, queue or agent figure changes: the runtime
    /// pushes a new snapshot to the wallboard then.
    pub fn live_version(&self) -> u64 {
        self.live.version()
    }

    /// The live view at `now`; `detail` adds each call in progress and
    /// each waiting caller.
    pub fn live_status(&mut self, now: Instant, detail: bool) -> LiveSnapshot {
        let clock = self.clock;
        let mut snapshot = self
            .live
            .snapshot(now, detail, |key| crate::call::record_id(&clock, key));
        snapshot.calls.in_progress = self.calls.len();
        snapshot.outbound = crate::live::OutboundView {
            trunks: self.trunk_views(),
            campaigns: self
                .campaigns()
                .map(|c| crate::live::CampaignView {
                    id: c.id.0,
                    name: c.spec.name.clone(),
                    state: c.state.as_str(),
                    numbers: c.targets.len(),
                    counts: c.counts(),
                })
                .collect(),
        };
        snapshot.tasks = self.tasks_view(now);
        if detail {
            let mut list: Vec<(Instant, CallKey, CallView)> = self
                .calls
                .iter()
                .map(|(key, call)| (call.arrived_at, *key, self.call_view(now, *key, call)))
                .collect();
            list.sort_by_key(|(at, key, _)| (*at, *key));
            snapshot.calls.list = Some(list.into_iter().map(|(_, _, v)| v).collect());
        }
        snapshot
    }

    fn call_view(&self, now: Instant, key: CallKey, call: &Call) -> CallView {
        let queue = call.queue.as_ref();
        let leg = call.customer_leg();
        let state = match leg.map(|l| l.state) {
            Some(LegState::Incoming) | None => "ringing",
            Some(LegState::Answering) => "answering",
            _ if call.feature.is_some() => "feature_code",
            _ => match queue {
                Some(q) if q.bridged_at.is_some() => "with_agent",
                Some(q) if q.answered_at.is_some() => "connecting",
                Some(q) if q.result.is_none() => "queued",
                _ => "ivr",
            },
        };
        CallView {
            call_id: self.record_id(key.0),
            state,
            age_ms: now.saturating_duration_since(call.arrived_at).as_millis() as u64,
            queue: queue.map(|q| q.queue.clone()),
            agent: queue.and_then(|q| q.agent.clone()),
            business_type: call.ivr.business.clone(),
        }
    }

    /// Tells the live figures what happened.
    pub(super) fn live_event(&mut self, now: Instant, event: LiveEvent<'_>) {
        self.live.handle(now, event);
    }
}

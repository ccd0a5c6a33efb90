//! Which number to dial when: the pure machine behind campaigns. Time is
//! wall-clock milliseconds (attempts are due at wall times that survive a
//! restart); the engine converts to and from its `Instant`s.
//!
//! The engine asks [`Scheduler::poll`] for the next call allowed now
//! (due, in its window, under the campaign's and the trunk's limits),
//! makes the attempt durable, dials, and reports the end with
//! [`Scheduler::attempt_ended`]. [`Scheduler::next_due`] says when to ask
//! again.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::{
    number_key, Attempt, AttemptResult, Campaign, CampaignId, CampaignState, NumberState, Target,
};

/// What the scheduler wants done now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Call `number` (attempt number `attempt`, 1 for the first) through
    /// `trunk`. The target is `Dialing` from now.
    Dial {
        campaign: CampaignId,
        target: usize,
        number: String,
        attempt: u32,
        trunk: String,
    },
    /// A number on the do-not-call list: stopped without a call.
    Blocked { campaign: CampaignId, target: usize },
}

#[derive(Debug, Default)]
pub struct Scheduler {
    campaigns: BTreeMap<CampaignId, Campaign>,
    /// Per campaign, targets waiting for a call, by raw due time.
    queues: HashMap<CampaignId, BTreeSet<(u64, usize)>>,
    /// Attempts on the line, per campaign.
    in_flight: HashMap<CampaignId, u32>,
    /// Targets not yet final, per campaign: a campaign is complete at 0
    /// (kept, so that each call's end does not scan every number).
    open: HashMap<CampaignId, usize>,
    dnc: HashSet<String>,
    /// Campaigns another node runs (several nodes): kept to show, never
    /// dialled here.
    foreign: HashSet<CampaignId>,
}

impl Scheduler {
    /// Takes a campaign (new, or read back from the store). Its targets
    /// found `Dialing` were on the line when the engine stopped: their
    /// attempts end as [`AttemptResult::Interrupted`] at `now_ms`
    /// (returned, to be written), and they are retried on the schedule,
    /// never dialled again as the same attempt.
    pub fn add(&mut self, mut campaign: Campaign, now_ms: u64) -> Vec<(usize, Attempt)> {
        self.foreign.remove(&campaign.id);
        let mut interrupted = Vec::new();
        let mut queue = BTreeSet::new();
        for (i, t) in campaign.targets.iter_mut().enumerate() {
            if t.state == NumberState::Dialing {
                if let Some(a) = t.attempts.last_mut() {
                    a.ended_ms = Some(now_ms);
                    a.result = Some(AttemptResult::Interrupted);
                    interrupted.push((i, a.clone()));
                }
                next_step(t, &campaign.spec.retry, AttemptResult::Interrupted, now_ms);
            }
            if let (false, Some(due)) = (t.state.is_final(), t.due_ms) {
                queue.insert((due, i));
            }
        }
        let id = campaign.id;
        let open = campaign
            .targets
            .iter()
            .filter(|t| !t.state.is_final())
            .count();
        self.queues.insert(id, queue);
        self.in_flight.insert(id, 0);
        self.open.insert(id, open);
        self.campaigns.insert(id, campaign);
        self.complete_if_done(id);
        interrupted
    }

    /// A campaign another node runs, as the store holds it now: kept to
    /// show (replacing this node's copy), never dialled here.
    pub fn cache(&mut self, campaign: Campaign) {
        let id = campaign.id;
        self.foreign.insert(id);
        self.queues.remove(&id);
        self.in_flight.remove(&id);
        self.open.remove(&id);
        self.campaigns.insert(id, campaign);
    }

    /// One number of a campaign another node runs, as the store holds it.
    pub fn cache_target(&mut self, id: CampaignId, index: usize, target: Target) {
        if !self.foreign.contains(&id) {
            return;
        }
        if let Some(t) = self
            .campaigns
            .get_mut(&id)
            .and_then(|c| c.targets.get_mut(index))
        {
            *t = target;
        }
    }

    /// Whether another node runs campaign `id`.
    pub fn is_foreign(&self, id: CampaignId) -> bool {
        self.foreign.contains(&id)
    }

    pub fn campaign(&self, id: CampaignId) -> Option<&Campaign> {
        self.campaigns.get(&id)
    }

    pub fn campaigns(&self) -> impl Iterator<Item = &Campaign> {
        self.campaigns.values()
    }

    /// A number on the do-not-call list is never called again.
    pub fn add_dnc(&mut self, number: &str) {
        self.dnc.insert(number_key(number));
    }

    pub fn is_dnc(&self, number: &str) -> bool {
        self.dnc.contains(&number_key(number))
    }

    /// Pause, resume or cancel. Cancelling ends every number not yet
    /// final (calls on the line finish). Returns the targets whose state
    /// changed, for the store.
    pub fn set_state(&mut self, id: CampaignId, state: CampaignState) -> Option<Vec<usize>> {
        let c = self.campaigns.get_mut(&id)?;
        if matches!(c.state, CampaignState::Cancelled | CampaignState::Completed) {
            return (c.state == state).then(Vec::new);
        }
        c.state = state;
        let mut changed = Vec::new();
        if state == CampaignState::Cancelled {
            for (i, t) in c.targets.iter_mut().enumerate() {
                if matches!(t.state, NumberState::Pending | NumberState::WaitingRetry) {
                    t.state = NumberState::Cancelled;
                    t.due_ms = None;
                    changed.push(i);
                }
            }
            if let Some(q) = self.queues.get_mut(&id) {
                q.clear();
            }
            self.close(id, changed.len());
        }
        Some(changed)
    }

    /// When the next call may be due (the earliest waiting target of a
    /// running campaign, moved into its window).
    pub fn next_due(&self) -> Option<u64> {
        self.campaigns
            .values()
            .filter(|c| c.state == CampaignState::Running && !self.foreign.contains(&c.id))
            .filter_map(|c| {
                let (due, _) = *self.queues.get(&c.id)?.first()?;
                effective(c, due)
            })
            .min()
    }

    /// The next call to place at `now_ms`, if any: due, in its window,
    /// under the campaign's `max_concurrent`, and allowed by `can_dial`
    /// for its trunk (channels and call rate).
    pub fn poll(
        &mut self,
        now_ms: u64,
        mut can_dial: impl FnMut(&str) -> bool,
    ) -> Option<Decision> {
        let ids: Vec<CampaignId> = self.campaigns.keys().copied().collect();
        for id in ids {
            let Some(c) = self.campaigns.get(&id) else {
                continue;
            };
            if c.state != CampaignState::Running || self.foreign.contains(&id) {
                continue;
            }
            let busy = self.in_flight.get(&id).copied().unwrap_or(0);
            if c.spec.max_concurrent.is_some_and(|max| busy >= max) {
                continue;
            }
            let Some(&(due, target)) = self.queues.get(&id).and_then(|q| q.first()) else {
                continue;
            };
            if effective(c, due).is_none_or(|at| at > now_ms) {
                continue;
            }
            let number = c.targets[target].number.clone();
            if self.dnc.contains(&number_key(&number)) {
                self.take(id, due, target);
                let t = &mut self.campaigns.get_mut(&id)?.targets[target];
                t.state = NumberState::OptedOut;
                t.due_ms = None;
                self.close(id, 1);
                self.complete_if_done(id);
                return Some(Decision::Blocked {
                    campaign: id,
                    target,
                });
            }
            if !can_dial(&c.spec.trunk) {
                continue;
            }
            let trunk = c.spec.trunk.clone();
            self.take(id, due, target);
            *self.in_flight.entry(id).or_default() += 1;
            let t = &mut self.campaigns.get_mut(&id)?.targets[target];
            let attempt = t.attempts.len() as u32 + 1;
            t.state = NumberState::Dialing;
            t.due_ms = None;
            t.attempts.push(Attempt {
                number: attempt,
                at_ms: now_ms,
                ended_ms: None,
                result: None,
                sip_status: 0,
                call_id: None,
            });
            return Some(Decision::Dial {
                campaign: id,
                target,
                number,
                attempt,
                trunk,
            });
        }
        None
    }

    fn take(&mut self, id: CampaignId, due: u64, target: usize) {
        if let Some(q) = self.queues.get_mut(&id) {
            q.remove(&(due, target));
        }
    }

    /// An attempt ended: the number goes final, or waits for its retry.
    /// Returns the target as it now stands, for the store.
    pub fn attempt_ended(
        &mut self,
        id: CampaignId,
        target: usize,
        result: AttemptResult,
        sip_status: u16,
        call_id: Option<String>,
        now_ms: u64,
    ) -> Option<&Target> {
        if let Some(n) = self.in_flight.get_mut(&id) {
            *n = n.saturating_sub(1);
        }
        let c = self.campaigns.get_mut(&id)?;
        let cancelled = c.state == CampaignState::Cancelled;
        let retry = c.spec.retry.clone();
        let t = c.targets.get_mut(target)?;
        let was_final = t.state.is_final();
        if let Some(a) = t.attempts.last_mut() {
            a.ended_ms = Some(now_ms);
            a.result = Some(result);
            a.sip_status = sip_status;
            a.call_id = call_id;
        }
        next_step(t, &retry, result, now_ms);
        if cancelled && !t.state.is_final() {
            t.state = NumberState::Cancelled;
            t.due_ms = None;
        }
        if let (false, Some(due)) = (t.state.is_final(), t.due_ms) {
            self.queues.entry(id).or_default().insert((due, target));
        }
        if result == AttemptResult::OptedOut {
            let number = number_key(&t.number);
            self.dnc.insert(number);
        }
        let closed = !was_final && t.state.is_final();
        if closed {
            self.close(id, 1);
        }
        self.complete_if_done(id);
        self.campaigns.get(&id)?.targets.get(target)
    }

    /// Another node sharing the store started this target's attempt
    /// first: the attempt asked for is dropped (it was never made here)
    /// and the number is left to that node, never due here again.
    pub fn taken_elsewhere(&mut self, id: CampaignId, target: usize) {
        if let Some(n) = self.in_flight.get_mut(&id) {
            *n = n.saturating_sub(1);
        }
        let Some(t) = self
            .campaigns
            .get_mut(&id)
            .and_then(|c| c.targets.get_mut(target))
        else {
            return;
        };
        if t.attempts.last().is_some_and(|a| a.ended_ms.is_none()) {
            t.attempts.pop();
        }
        t.due_ms = None;
        if let Some(queue) = self.queues.get_mut(&id) {
            queue.retain(|&(_, tg)| tg != target);
        }
    }

    /// `n` more targets of `id` are final.
    fn close(&mut self, id: CampaignId, n: usize) {
        if let Some(open) = self.open.get_mut(&id) {
            *open = open.saturating_sub(n);
        }
    }

    /// A campaign whose numbers are all final is completed.
    fn complete_if_done(&mut self, id: CampaignId) {
        let done = self.open.get(&id) == Some(&0);
        if let Some(c) = self.campaigns.get_mut(&id) {
            debug_assert_eq!(done, c.targets.iter().all(|t| t.state.is_final()));
            if done && matches!(c.state, CampaignState::Running | CampaignState::Paused) {
                c.state = CampaignState::Completed;
            }
        }
    }

    /// Calls on the line, in all.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.values().sum()
    }
}

/// After an attempt: a final state, a retry `retry[n-1]` after this end
/// (attempt n failed), or failed when no retry is left.
fn next_step(t: &mut Target, retry: &[std::time::Duration], result: AttemptResult, now_ms: u64) {
    if let Some(state) = result.final_state() {
        t.state = state;
        t.due_ms = None;
        return;
    }
    let failed = t.attempts.len();
    match retry.get(failed.saturating_sub(1)) {
        Some(wait) => {
            t.state = NumberState::WaitingRetry;
            t.due_ms = Some(now_ms + wait.as_millis() as u64);
        }
        None => {
            t.state = NumberState::Failed;
            t.due_ms = None;
        }
    }
}

/// A due time moved into the campaign's calling window (`None` if the
/// window never opens).
fn effective(c: &Campaign, due: u64) -> Option<u64> {
    match &c.spec.window {
        Some(w) => w.next_open(due),
        None => Some(due),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::spec::CampaignSpec;
    use serde_json::json;

    const MIN: u64 = 60_000;
    const T0: u64 = 1_796_520_600_000; // 2026-12-06 09:30 +08:00, a Sunday

    fn campaign(numbers: &[&str], extra: serde_json::Value) -> Campaign {
        let mut v = json!({"name": "n", "trunk": "pstn", "prompt": "p", "numbers": numbers});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        let spec = CampaignSpec::parse(&v, None, 480).expect("spec");
        Campaign::new(CampaignId(1), spec, T0)
    }

    fn dial(s: &mut Scheduler, now: u64) -> Option<(usize, u32)> {
        match s.poll(now, |_| true)? {
            Decision::Dial {
                target, attempt, ..
            } => Some((target, attempt)),
            Decision::Blocked { .. } => None,
        }
    }

    #[test]
    fn busy_every_time_is_called_at_1m_then_10m_1h_3h_after_each_failure_then_stops() {
        let mut s = Scheduler::default();
        s.add(campaign(&["10086"], json!({})), T0);
        assert_eq!(s.next_due(), Some(T0 + MIN));
        assert_eq!(dial(&mut s, T0 + MIN - 1), None, "not a millisecond early");
        let mut now = T0 + MIN;
        let mut times = Vec::new();
        for expected_wait in [10 * MIN, 60 * MIN, 180 * MIN] {
            assert_eq!(s.next_due(), Some(now));
            let (t, n) = dial(&mut s, now).expect("due");
            times.push((now, n));
            // The callee is busy; the attempt took 4 s.
            now += 4_000;
            s.attempt_ended(CampaignId(1), t, AttemptResult::Busy, 486, None, now);
            assert_eq!(s.next_due(), Some(now + expected_wait));
            assert_eq!(dial(&mut s, now + expected_wait - 1), None);
            now += expected_wait;
        }
        let (t, n) = dial(&mut s, now).expect("the fourth and last");
        assert_eq!(n, 4);
        let target = s
            .attempt_ended(
                CampaignId(1),
                t,
                AttemptResult::Busy,
                486,
                None,
                now + 4_000,
            )
            .expect("target")
            .clone();
        assert_eq!(target.state, NumberState::Failed);
        assert_eq!(target.attempts.len(), 4);
        assert_eq!(s.next_due(), None);
        assert_eq!(
            s.campaign(CampaignId(1)).map(|c| c.state),
            Some(CampaignState::Completed)
        );
        assert_eq!(
            times,
            vec![
                (T0 + MIN, 1),
                (T0 + MIN + 4_000 + 10 * MIN, 2),
                (T0 + MIN + 8_000 + 70 * MIN, 3)
            ]
        );
    }

    #[test]
    fn a_number_another_node_dials_first_is_left_to_it() {
        let mut s = Scheduler::default();
        s.add(campaign(&["10086", "10010"], json!({})), T0);
        let now = T0 + MIN;
        let (first, n) = dial(&mut s, now).expect("due");
        assert_eq!(n, 1);
        assert_eq!(s.in_flight(), 1);
        // The store says another node started this attempt first.
        s.taken_elsewhere(CampaignId(1), first);
        assert_eq!(s.in_flight(), 0, "no call of ours on the line");
        let c = s.campaign(CampaignId(1)).expect("campaign");
        assert!(c.targets[first].attempts.is_empty(), "never made here");
        assert_eq!(c.targets[first].due_ms, None);
        // The other number is still ours; the taken one never comes back.
        let (second, _) = dial(&mut s, now).expect("the other number");
        assert_ne!(second, first);
        s.attempt_ended(CampaignId(1), second, AttemptResult::Busy, 486, None, now);
        for hours in 1..=24 {
            if let Some((t, _)) = dial(&mut s, now + hours * 60 * MIN) {
                assert_ne!(t, first, "the taken number is dialled again");
                s.attempt_ended(CampaignId(1), t, AttemptResult::Busy, 486, None, now);
            }
        }
    }

    #[test]
    fn final_results_stop_at_once_and_success_needs_confirmation() {
        let mut s = Scheduler::default();
        s.add(
            campaign(
                &["101", "202", "303", "404", "55555"],
                json!({"first_after": "0s"}),
            ),
            T0,
        );
        let mut got = BTreeMap::new();
        while let Some((t, _)) = dial(&mut s, T0) {
            got.insert(t, ());
        }
        assert_eq!(got.len(), 5);
        let id = CampaignId(1);
        let end = |s: &mut Scheduler, t, r, st| {
            s.attempt_ended(id, t, r, st, None, T0 + 1000)
                .map(|t| t.state)
        };
        assert_eq!(
            end(&mut s, 0, AttemptResult::Invalid, 404),
            Some(NumberState::Invalid)
        );
        assert_eq!(
            end(&mut s, 1, AttemptResult::Rejected, 603),
            Some(NumberState::Failed)
        );
        assert_eq!(
            end(&mut s, 2, AttemptResult::Confirmed, 200),
            Some(NumberState::Confirmed)
        );
        assert_eq!(
            end(&mut s, 3, AttemptResult::Unconfirmed, 200),
            Some(NumberState::WaitingRetry)
        );
        assert_eq!(
            end(&mut s, 4, AttemptResult::OptedOut, 200),
            Some(NumberState::OptedOut)
        );
        assert!(s.is_dnc("55555"), "an opt-out joins the do-not-call list");
    }

    #[test]
    fn the_do_not_call_list_is_checked_before_every_attempt() {
        let mut s = Scheduler::default();
        s.add(
            campaign(
                &["138-0000-0001", "13800000002"],
                json!({"first_after": "0s"}),
            ),
            T0,
        );
        s.add_dnc("13800000001");
        let decisions: Vec<Decision> = std::iter::from_fn(|| s.poll(T0, |_| true)).collect();
        assert_eq!(
            decisions[0],
            Decision::Blocked {
                campaign: CampaignId(1),
                target: 0
            }
        );
        assert!(matches!(&decisions[1], Decision::Dial { number, .. } if number == "13800000002"));
        assert_eq!(decisions.len(), 2);
    }

    #[test]
    fn a_window_moves_calls_to_the_next_open_time_and_skips_dates() {
        let mut s = Scheduler::default();
        // Created Sunday 09:30; weekdays 09:00-18:00 only, and Monday the
        // 7th is a holiday: the first call waits for Tuesday 09:00.
        s.add(
            campaign(
                &["10086"],
                json!({"window": {"from": "09:00", "to": "18:00",
                    "days": ["mon", "tue", "wed", "thu", "fri"], "skip_dates": ["2026-12-07"]}}),
            ),
            T0,
        );
        let tuesday_9 = T0 + (2 * 24 * 60 - 30) * MIN;
        assert_eq!(s.next_due(), Some(tuesday_9));
        assert_eq!(dial(&mut s, tuesday_9 - 1), None);
        let (t, _) = dial(&mut s, tuesday_9).expect("due");
        // Busy at 17:55: the 10-minute retry falls at 18:05, outside:
        // Wednesday 09:00.
        let at_1755 = tuesday_9 + (8 * 60 + 55) * MIN;
        s.attempt_ended(CampaignId(1), t, AttemptResult::Busy, 486, None, at_1755);
        assert_eq!(s.next_due(), Some(tuesday_9 + 24 * 60 * MIN));
    }

    #[test]
    fn concurrency_and_trunk_limits_hold_calls_back() {
        let mut s = Scheduler::default();
        let numbers: Vec<String> = (0..10).map(|i| format!("1380000{i:04}")).collect();
        let refs: Vec<&str> = numbers.iter().map(String::as_str).collect();
        s.add(
            campaign(&refs, json!({"first_after": "0s", "max_concurrent": 3})),
            T0,
        );
        let mut placed = 0;
        while dial(&mut s, T0).is_some() {
            placed += 1;
        }
        assert_eq!(placed, 3, "max_concurrent");
        s.attempt_ended(CampaignId(1), 0, AttemptResult::Heard, 200, None, T0 + 1);
        assert!(dial(&mut s, T0 + 1).is_some(), "one freed, one more");
        // A trunk with no room: nothing, and the number stays waiting.
        assert_eq!(s.poll(T0 + 2, |_| false), None);
        assert_eq!(s.in_flight(), 3);
    }

    #[test]
    fn a_restart_ends_the_attempt_on_the_line_and_retries_it_on_schedule() {
        let mut s = Scheduler::default();
        s.add(campaign(&["10086"], json!({"first_after": "0s"})), T0);
        dial(&mut s, T0).expect("dialing");
        // The engine dies; the store has the campaign as it stood.
        let stored = s.campaign(CampaignId(1)).expect("c").clone();
        assert_eq!(stored.targets[0].state, NumberState::Dialing);
        let mut after = Scheduler::default();
        let restart = T0 + 30_000;
        let ended = after.add(stored, restart);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].1.result, Some(AttemptResult::Interrupted));
        let t = &after.campaign(CampaignId(1)).expect("c").targets[0];
        assert_eq!(t.state, NumberState::WaitingRetry);
        assert_eq!(t.due_ms, Some(restart + 10 * MIN));
        assert_eq!(
            dial(&mut after, restart),
            None,
            "never the same attempt twice"
        );
        assert_eq!(dial(&mut after, restart + 10 * MIN), Some((0, 2)));
    }

    #[test]
    fn another_nodes_campaign_is_shown_not_dialled_until_taken_over() {
        let mut runner = Scheduler::default();
        runner.add(
            campaign(&["10086", "10087"], json!({"first_after": "0s"})),
            T0,
        );
        dial(&mut runner, T0).expect("the runner dials");
        let mut other = Scheduler::default();
        other.cache(runner.campaign(CampaignId(1)).expect("c").clone());
        assert!(other.is_foreign(CampaignId(1)));
        assert_eq!(dial(&mut other, T0 + MIN), None, "never dialled here");
        assert_eq!(other.next_due(), None);
        // The runner's attempt ends; the other node's copy follows it.
        let t = runner
            .attempt_ended(CampaignId(1), 0, AttemptResult::Busy, 486, None, T0 + 5)
            .expect("t")
            .clone();
        other.cache_target(CampaignId(1), 0, t.clone());
        let shown = &other.campaign(CampaignId(1)).expect("c").targets[0];
        assert_eq!(shown, &t);
        // The runner dies on its second number's call; the other node
        // takes over what the store holds: that attempt is interrupted,
        // and the rest goes on the schedule from here.
        dial(&mut runner, T0 + 6).expect("second number");
        let stored = runner.campaign(CampaignId(1)).expect("c").clone();
        let ended = other.add(stored, T0 + 10);
        assert_eq!(ended.len(), 1, "{ended:?}");
        assert_eq!(ended[0].0, 1);
        assert!(!other.is_foreign(CampaignId(1)));
        assert_eq!(dial(&mut other, T0 + 9 * MIN), None, "nothing due yet");
        // Busy retries after 10 min, like the interrupted one: busy first.
        assert_eq!(
            dial(&mut other, T0 + 10 * MIN + 5),
            Some((0, 2)),
            "the busy retry"
        );
        assert_eq!(
            dial(&mut other, T0 + 10 * MIN + 10),
            Some((1, 2)),
            "the interrupted one"
        );
    }

    #[test]
    fn pause_holds_and_cancel_ends_what_is_left() {
        let mut s = Scheduler::default();
        s.add(
            campaign(&["1001", "1002"], json!({"first_after": "0s"})),
            T0,
        );
        s.set_state(CampaignId(1), CampaignState::Paused);
        assert_eq!(s.next_due(), None);
        assert_eq!(dial(&mut s, T0), None);
        s.set_state(CampaignId(1), CampaignState::Running);
        assert_eq!(dial(&mut s, T0), Some((0, 1)));
        let changed = s
            .set_state(CampaignId(1), CampaignState::Cancelled)
            .expect("known");
        assert_eq!(changed, vec![1]);
        // The call on the line ends as it ends, and is not retried.
        let t = s
            .attempt_ended(CampaignId(1), 0, AttemptResult::Busy, 486, None, T0 + 5)
            .expect("t");
        assert_eq!(t.state, NumberState::Cancelled);
        assert_eq!(s.next_due(), None);
        assert_eq!(s.set_state(CampaignId(1), CampaignState::Running), None);
    }
}

//! Work that outlives a call, where several nodes share the store
//! (docs/cluster.md): each campaign and task is run by one node, the one
//! that created it or took it over; the others keep it to show and to
//! route by. What another node changed reaches this one as
//! [`WorkChanges`]; the work of a node whose lease ran out, as adopted
//! [`StoredWork`], run from then on as if read back at a restart.

use std::time::Instant;

use tracing::{info, warn};

use super::Engine;
use crate::campaign::CampaignState;
use crate::store::{Changed, ChangedTarget, Notice, StoredCampaign, StoredWork, WorkChanges};
use crate::tasks::{Task, TaskState};

impl Engine {
    /// What other nodes changed in the store.
    pub(super) fn work_changed(&mut self, now: Instant, changes: WorkChanges) {
        let WorkChanges {
            campaigns,
            targets,
            tasks,
            do_not_call,
            contacts,
        } = changes;
        for number in &do_not_call {
            self.scheduler.add_dnc(number);
        }
        for contact in contacts {
            let key = crate::number::number_key(&contact.number);
            if self
                .contacts
                .get(&key)
                .is_none_or(|c| c.at_ms <= contact.at_ms)
            {
                self.contacts.insert(key, contact);
            }
        }
        for changed in campaigns {
            self.campaign_changed(now, changed);
        }
        for changed in targets {
            self.target_changed(changed);
        }
        for Changed { item, foreign } in tasks {
            self.task_changed(now, item, foreign);
        }
        self.poll_campaigns(now);
        self.poll_tasks(now);
    }

    /// Work this node takes over from a node whose lease ran out: what was
    /// on the line there ends as interrupted and is retried on schedule,
    /// as after a restart.
    pub(super) fn work_adopted(&mut self, now: Instant, work: StoredWork) {
        info!(
            campaigns = work.campaigns.len(),
            tasks = work.tasks.len(),
            "taking over work from a node that died"
        );
        // As read back at start: its `foreign` is empty, so every task and
        // campaign in it is this node's from now on.
        self.load_work(now, work);
    }

    fn campaign_changed(&mut self, now: Instant, changed: Changed<StoredCampaign>) {
        let Changed { item, foreign } = changed;
        let id = item.campaign.id;
        if foreign {
            if self.scheduler.campaign(id).is_some() && !self.scheduler.is_foreign(id) {
                // Taken over while this node could not renew its lease.
                warn!(
                    campaign = id.0,
                    "another node runs this campaign now: no more calls from here"
                );
            }
            self.scheduler.cache(item.campaign);
            return;
        }
        // This node runs it: another node paused, resumed or cancelled it.
        let Some(current) = self.scheduler.campaign(id).map(|c| c.state) else {
            return self.add_campaign(now, item);
        };
        let state = item.campaign.state;
        let commanded = matches!(
            state,
            CampaignState::Running | CampaignState::Paused | CampaignState::Cancelled
        );
        if state != current && commanded {
            info!(
                campaign = id.0,
                state = state.as_str(),
                "campaign changed on another node"
            );
            if let Some(targets) = self.scheduler.set_state(id, state) {
                self.write_targets(id, &targets);
            }
        }
    }

    fn target_changed(&mut self, changed: ChangedTarget) {
        let ChangedTarget {
            campaign,
            index,
            target,
        } = changed;
        if !self.scheduler.is_foreign(campaign) {
            return;
        }
        // A notice heard through another node is recognised here too when
        // the number calls the hotline.
        let heard = target
            .attempts
            .last()
            .filter(|a| a.sip_status == 200)
            .and_then(|a| a.ended_ms);
        if let Some(at_ms) = heard {
            if let Some(name) = self
                .scheduler
                .campaign(campaign)
                .map(|c| c.spec.name.clone())
            {
                self.remember_notice(Notice {
                    number: target.number.clone(),
                    campaign,
                    campaign_name: name,
                    at_ms,
                });
            }
        }
        self.scheduler.cache_target(campaign, index, target);
    }

    fn task_changed(&mut self, now: Instant, remote: Task, foreign: bool) {
        let id = remote.id;
        let local = self.tasks.get(id);
        if local == Some(&remote) {
            return;
        }
        if foreign {
            if local.is_some() && !self.tasks.is_foreign(id) {
                warn!(task = id.0, "another node runs this task now");
                self.withdraw_task(now, id);
            }
            self.tasks.set_foreign(id, true);
            self.tasks.replace(remote);
            return;
        }
        let Some(local) = local else {
            // New to this node, and its own (written before a restart).
            self.tasks.set_foreign(id, false);
            self.tasks.replace(remote);
            return;
        };
        let in_flight = matches!(
            local.state,
            TaskState::Offered | TaskState::Dialing | TaskState::Connected
        );
        if in_flight {
            // This node's attempt stands; the other node's edits or close
            // are taken in, and written over its version.
            info!(
                task = id.0,
                "task changed on another node while on a call here"
            );
            let closed = remote.state.is_final();
            self.tasks.merge_in_flight(&remote);
            if closed {
                self.withdraw_task(now, id);
            }
            self.write_task(id, false);
            return;
        }
        let due_moved = local.due_ms != remote.due_ms;
        let closed = remote.state.is_final() && !local.state.is_final();
        info!(
            task = id.0,
            version = remote.version,
            "task changed on another node"
        );
        self.tasks.replace(remote);
        if closed {
            self.withdraw_task(now, id);
            self.tasks.left_queue(id);
        } else if due_moved {
            self.requeue_by_deadline(now, id);
        }
    }
}

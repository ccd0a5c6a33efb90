//! The engine's side of several nodes sharing one store
//! ([`crate::cluster`], docs/cluster.md): offers wait for the store's
//! claim, waiting callers and agents' statuses and phones are told to the
//! store, and what other nodes did comes back in as ACD inputs.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use tracing::{info, warn};

use super::Engine;
use crate::acd::{AcdInput, AgentStatus};
use crate::cluster::{ClusterEvent, ClusterRequest, SharedBinding};
use crate::ids::CallKey;
use crate::io::Output;
use crate::sip::registrar::Binding;

/// The task ids a node numbers from ([`crate::tasks::TaskBook::set_id_space`]):
/// 1 to 4095, from its name (FNV-1a), so that ids stay below 2^53 for the
/// desk's JavaScript. Two nodes' names meet with odds of 1 in 4095; the
/// store then refuses the second node's new task (`Taken`).
pub fn task_id_space(node: &str) -> u64 {
    let hash = node.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    1 + hash % 4095
}

/// This node among several (`None` in `Engine::cluster` for one node).
#[derive(Debug, Default)]
pub struct ClusterState {
    next_claim: u64,
    /// Claims asked for and not answered: (caller, agent).
    pending: HashMap<u64, (CallKey, String)>,
    /// Agents' statuses as last told to the store.
    told_status: HashMap<String, AgentStatus>,
    /// Phones last told to the store, per user.
    told_bindings: HashMap<String, Vec<SharedBinding>>,
    /// The store is out of reach and the lease has run out.
    store_lost: bool,
    /// Agents held by other nodes, as the store last said.
    held: HashSet<String>,
    /// Agents on a call this node placed outside the ACD.
    engaged: HashSet<String>,
}

impl Engine {
    /// Whether several nodes share the store.
    pub(super) fn clustered(&self) -> bool {
        self.cluster.is_some()
    }

    fn tell_store(&mut self, request: ClusterRequest) {
        self.wire.push(Output::Cluster(request));
    }

    /// The ACD offers `agent` the caller: ask the store first.
    pub(super) fn claim_agent(&mut self, now: Instant, caller: CallKey, agent: String) {
        let Some((queue, priority, arrival)) = self
            .acd
            .caller(caller)
            .map(|c| (c.queue.to_string(), c.priority, c.arrival))
        else {
            return;
        };
        let arrival_ms = self.wall_ms(arrival);
        let Some(cluster) = self.cluster.as_mut() else {
            return self.offer(now, caller, agent);
        };
        if cluster.store_lost {
            self.acd.handle(now, AcdInput::OfferTaken { caller, agent });
            return;
        }
        cluster.next_claim += 1;
        let claim = cluster.next_claim;
        cluster.pending.insert(claim, (caller, agent.clone()));
        self.tell_store(ClusterRequest::Claim {
            claim,
            agent,
            caller,
            queue,
            priority,
            arrival_ms,
        });
    }

    /// The ACD's word on a caller waiting unoffered, for the store.
    pub(super) fn tell_waiting(
        &mut self,
        caller: CallKey,
        queue: String,
        priority: u8,
        at: Instant,
    ) {
        if self.clustered() {
            let arrival_ms = self.wall_ms(at);
            self.tell_store(ClusterRequest::Waiting {
                caller,
                queue,
                priority,
                arrival_ms,
            });
        }
    }

    pub(super) fn tell_not_waiting(&mut self, caller: CallKey) {
        if self.clustered() {
            self.tell_store(ClusterRequest::NotWaiting { caller });
        }
    }

    /// An agent's status or state changed here: the store hears the
    /// status when it changed, and the end of this node's claim when the
    /// agent is idle again.
    pub(super) fn tell_agent(&mut self, agent: &str, status: &AgentStatus, idle: bool) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        let mut requests = Vec::new();
        if cluster.told_status.get(agent) != Some(status) {
            cluster
                .told_status
                .insert(agent.to_string(), status.clone());
            requests.push(ClusterRequest::Status {
                agent: agent.to_string(),
                status: status.clone(),
            });
        }
        // An agent engaged outside the ACD stays held until that ends.
        if idle && !cluster.engaged.contains(agent) {
            requests.push(ClusterRequest::Release {
                agent: agent.to_string(),
            });
        }
        for request in requests {
            self.tell_store(request);
        }
    }

    /// An agent is on a call this node placed outside the ACD (a
    /// transfer or consultation straight to them), or no longer.
    pub(super) fn tell_engaged(&mut self, agent: &str, engaged: bool) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        let changed = if engaged {
            cluster.engaged.insert(agent.to_string())
        } else {
            cluster.engaged.remove(agent)
        };
        if changed {
            self.tell_store(ClusterRequest::Engaged {
                agent: agent.to_string(),
                engaged,
            });
        }
    }

    /// The phones registered here for `user`, when they changed.
    pub(super) fn tell_bindings(&mut self, user: &str) {
        if !self.clustered() {
            return;
        }
        let clock = self.clock;
        let bindings: Vec<SharedBinding> = self
            .registrar
            .local_bindings(user)
            .into_iter()
            .map(|b| SharedBinding {
                contact: b.contact.clone(),
                source: b.source,
                transport: b.transport,
                path: b.path.clone(),
                expires_ms: clock.ms(b.expires_at),
            })
            .collect();
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        if cluster.told_bindings.get(user) == Some(&bindings) {
            return;
        }
        cluster
            .told_bindings
            .insert(user.to_string(), bindings.clone());
        self.tell_store(ClusterRequest::Bindings {
            user: user.to_string(),
            bindings,
        });
    }

    pub(super) fn handle_cluster(&mut self, now: Instant, event: ClusterEvent) {
        if self.cluster.is_none() {
            return;
        }
        match event {
            ClusterEvent::Claimed { claim, granted } => {
                let Some((caller, agent)) =
                    self.cluster.as_mut().and_then(|c| c.pending.remove(&claim))
                else {
                    return;
                };
                let still_offered = self
                    .acd
                    .agent(&agent)
                    .is_some_and(|a| a.state == crate::acd::AgentState::Offered { caller });
                if !still_offered {
                    // The offer ended while the store was asked; the
                    // release that followed it ends the claim.
                    return;
                }
                if granted {
                    self.offer(now, caller, agent);
                } else {
                    info!(%caller, %agent, "the store gave the agent to another node");
                    self.acd.handle(now, AcdInput::OfferTaken { caller, agent });
                }
            }
            ClusterEvent::RemoteWaiting {
                entry,
                queue,
                priority,
                arrival_ms,
            } => {
                let arrival = self.clock.at(arrival_ms);
                self.acd.handle(
                    now,
                    AcdInput::RemoteWaiting {
                        entry,
                        queue,
                        priority,
                        arrival,
                    },
                );
            }
            ClusterEvent::RemoteGone { entry } => {
                self.acd.handle(now, AcdInput::RemoteGone { entry });
            }
            ClusterEvent::AgentHeld { agent, held } => {
                if let Some(cluster) = self.cluster.as_mut() {
                    if held {
                        cluster.held.insert(agent.clone());
                    } else {
                        cluster.held.remove(&agent);
                    }
                    if cluster.store_lost {
                        return;
                    }
                }
                self.acd.handle(
                    now,
                    AcdInput::AgentClaimedElsewhere {
                        agent,
                        claimed: held,
                    },
                );
            }
            ClusterEvent::AgentStatus { agent, status } => {
                // Told by the store: not told back.
                if let Some(cluster) = self.cluster.as_mut() {
                    cluster.told_status.insert(agent.clone(), status.clone());
                }
                let input = match status {
                    AgentStatus::LoggedOut => AcdInput::AgentLogout { agent },
                    AgentStatus::Available => AcdInput::AgentAvailable { agent },
                    AgentStatus::OnBreak { reason } => AcdInput::AgentBreak { agent, reason },
                };
                self.acd.handle(now, input);
            }
            ClusterEvent::RemoteBindings { user, bindings } => {
                let remote: Vec<Binding> = bindings
                    .into_iter()
                    .map(|b| {
                        let expires_at = self.clock.at(b.expires_ms);
                        Binding {
                            user: user.clone(),
                            contact: b.contact,
                            source: b.source,
                            transport: b.transport,
                            // Another node's connection: a new one here.
                            conn: 0,
                            expires_at,
                            call_id: String::new(),
                            cseq: 0,
                            registered_at: now,
                            path: b.path,
                        }
                    })
                    .filter(|b| b.expires_at > now)
                    .collect();
                self.registrar.set_remote(&user, remote);
                self.registrar_changed(now);
            }
            ClusterEvent::StoreLost => self.store_lost(now),
            ClusterEvent::StoreBack => self.store_back(now),
        }
        self.apply_acd(now);
    }

    /// Without the store, no agent can be claimed: nobody is offered one
    /// here, and callers waiting are offered a message instead of an
    /// endless wait (prompts and the IVR go on).
    fn store_lost(&mut self, now: Instant) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        if cluster.store_lost {
            return;
        }
        cluster.store_lost = true;
        warn!("the shared store is out of reach: no agent is offered until it is back");
        let agents: Vec<String> = self.acd.agents().map(|a| a.id.to_string()).collect();
        for agent in agents {
            self.acd.handle(
                now,
                AcdInput::AgentClaimedElsewhere {
                    agent,
                    claimed: true,
                },
            );
        }
        let waiting: Vec<CallKey> = self
            .calls
            .keys()
            .copied()
            .filter(|&k| self.waiting(k))
            .collect();
        for caller in waiting {
            self.acd.handle(now, AcdInput::SendAway { caller });
        }
    }

    fn store_back(&mut self, now: Instant) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        if !cluster.store_lost {
            return;
        }
        cluster.store_lost = false;
        // Everything told before is told again: the store may have lost it.
        cluster.told_status.clear();
        cluster.told_bindings.clear();
        let held = cluster.held.clone();
        info!("the shared store is back");
        let agents: Vec<(String, AgentStatus)> = self
            .acd
            .agents()
            .map(|a| (a.id.to_string(), a.status.clone()))
            .collect();
        for (agent, status) in agents {
            self.acd.handle(
                now,
                AcdInput::AgentClaimedElsewhere {
                    claimed: held.contains(&agent),
                    agent: agent.clone(),
                },
            );
            let idle = self
                .acd
                .agent(&agent)
                .is_some_and(|a| a.state == crate::acd::AgentState::Idle);
            self.tell_agent(&agent, &status, idle);
            self.tell_bindings(&agent);
        }
    }

    /// A caller joining a queue while the store is lost is sent on at once.
    pub(super) fn send_away_if_store_lost(&mut self, now: Instant, caller: CallKey) {
        if self.cluster.as_ref().is_some_and(|c| c.store_lost) {
            self.acd.handle(now, AcdInput::SendAway { caller });
        }
    }
}

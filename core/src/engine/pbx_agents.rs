//! Agents whose phones are extensions of a PBX (`trunk` and `extension`
//! in `[[agents]]`) instead of softphones registered with hotline: always
//! reachable, and rung by a leg placed through the trunk to the extension.

use std::time::Instant;

use super::Engine;
use crate::acd::AcdInput;
use crate::leg::uac::LegTarget;

impl Engine {
    /// At start: PBX agents are reachable at once (no registration will
    /// come), and logged in when `login_on_register` says so.
    pub(super) fn with_pbx_agents(mut self, now: Instant) -> Engine {
        let ids: Vec<String> = self.settings.pbx_agents.keys().cloned().collect();
        for agent in ids {
            self.acd.handle(
                now,
                AcdInput::AgentReachable {
                    agent: agent.clone(),
                    reachable: true,
                },
            );
            if self.login_on_register.contains(&agent) {
                self.acd.handle(now, AcdInput::AgentLogin { agent });
            }
        }
        self.apply_acd(now);
        self
    }

    /// Whether `agent` is rung through a PBX (its registrations, if any,
    /// change nothing).
    pub(super) fn is_pbx_agent(&self, agent: &str) -> bool {
        self.settings.pbx_agents.contains_key(agent)
    }

    /// Where a PBX agent is rung: `sip:<extension>@<trunk>` through the
    /// trunk (its address, transport and credentials).
    pub(super) fn pbx_target(&self, agent: &str) -> Option<LegTarget> {
        let (trunk, extension) = self.settings.pbx_agents.get(agent)?;
        let trunk = self.trunks.iter().find(|t| &t.config.name == trunk)?;
        Some(trunk.target(extension))
    }
}

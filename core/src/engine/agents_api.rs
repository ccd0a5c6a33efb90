//! Agent status for the HTTP API: read the agents, and change their status
//! as the feature codes do.

use std::time::Instant;

use serde::Serialize;

use tracing::info;

use super::Engine;
use crate::acd::{AcdInput, AgentState, AgentStatus};

/// One agent as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentSnapshot {
    pub id: String,
    pub number: String,
    pub name: String,
    /// logged_out, available or on_break.
    pub status: &'static str,
    pub break_reason: Option<String>,
    /// idle, offered, on_call or wrap_up.
    pub state: &'static str,
    /// Whether the agent's phone is registered.
    pub registered: bool,
    pub calls_answered: u64,
}

/// A change of status asked for through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentCommand {
    Login,
    Logout,
    Break { reason: String },
    Available,
}

impl Engine {
    pub fn agent_snapshots(&self) -> Vec<AgentSnapshot> {
        self.acd
            .agents()
            .map(|a| AgentSnapshot {
                id: a.id.to_string(),
                number: a.number.to_string(),
                name: a.name.to_string(),
                status: match a.status {
                    AgentStatus::LoggedOut => "logged_out",
                    AgentStatus::Available => "available",
                    AgentStatus::OnBreak { .. } => "on_break",
                },
                break_reason: match a.status {
                    AgentStatus::OnBreak { reason } => Some(reason.clone()),
                    _ => None,
                },
                state: match a.state {
                    AgentState::Idle => "idle",
                    AgentState::Offered { .. } => "offered",
                    AgentState::OnCall { .. } => "on_call",
                    AgentState::WrapUp { .. } => "wrap_up",
                },
                registered: a.reachable,
                calls_answered: a.calls_answered,
            })
            .collect()
    }

    /// Applies a command; `None` for an unknown agent.
    pub fn agent_command(
        &mut self,
        now: Instant,
        agent: &str,
        command: AgentCommand,
    ) -> Option<AgentSnapshot> {
        self.acd.agent(agent)?;
        let agent = agent.to_string();
        let input = match command {
            AgentCommand::Login => AcdInput::AgentLogin {
                agent: agent.clone(),
            },
            AgentCommand::Logout => AcdInput::AgentLogout {
                agent: agent.clone(),
            },
            AgentCommand::Break { reason } => AcdInput::AgentBreak {
                agent: agent.clone(),
                reason,
            },
            AgentCommand::Available => AcdInput::AgentAvailable {
                agent: agent.clone(),
            },
        };
        info!(?input, "agent command from the API");
        self.acd.handle(now, input);
        self.apply_acd(now);
        self.agent_snapshots().into_iter().find(|a| a.id == agent)
    }
}

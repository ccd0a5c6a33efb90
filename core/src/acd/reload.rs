//! Applying a reloaded configuration to a running ACD. Settings that are
//! read when used (ring timeout, wrap-up, waits, announcements, overflow,
//! an agent's number and name) change in place, keeping every waiting
//! caller and every agent's status and state. Changes to which queues and
//! agents exist, to strategies, skills or memberships would reshape the
//! live rankings: the reload refuses them, naming the first, and nothing
//! changes (restart to apply those).

use super::{Acd, AcdConfigError, AgentConfig, QueueConfig};

impl Acd {
    pub fn reconfigure(
        &mut self,
        queues: Vec<QueueConfig>,
        agents: Vec<AgentConfig>,
    ) -> Result<(), AcdConfigError> {
        // The new configuration must be valid on its own first.
        Acd::new(queues.clone(), agents.clone())?;
        let restart = |what: String| AcdConfigError::NeedsRestart(what);
        if queues.len() != self.queues.len() {
            return Err(restart(format!(
                "the number of queues changes ({} to {})",
                self.queues.len(),
                queues.len()
            )));
        }
        for (old, new) in self.queues.iter().zip(&queues) {
            if old.config.name != new.name {
                return Err(restart(format!(
                    "queue {:?} is replaced by {:?}",
                    old.config.name, new.name
                )));
            }
            if old.config.strategy != new.strategy {
                return Err(restart(format!("queue {:?} changes strategy", new.name)));
            }
        }
        if agents.len() != self.agents.len() {
            return Err(restart(format!(
                "the number of agents changes ({} to {})",
                self.agents.len(),
                agents.len()
            )));
        }
        for (old, new) in self.agents.iter().zip(&agents) {
            if old.config.id != new.id {
                return Err(restart(format!(
                    "agent {:?} is replaced by {:?}",
                    old.config.id, new.id
                )));
            }
            if old.config.queues != new.queues || old.config.skills != new.skills {
                return Err(restart(format!(
                    "agent {:?} changes queues or skills",
                    new.id
                )));
            }
        }
        for (queue, config) in self.queues.iter_mut().zip(queues) {
            queue.config = config;
        }
        for (agent, config) in self.agents.iter_mut().zip(agents) {
            agent.config = config;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{AcdInput, AgentStatus};
    use super::*;

    fn setup() -> (Vec<QueueConfig>, Vec<AgentConfig>) {
        (
            vec![QueueConfig::new("repair"), QueueConfig::new("complaint")],
            vec![
                AgentConfig::new("1001", &["repair"]),
                AgentConfig::new("1002", &["repair", "complaint"]),
            ],
        )
    }

    #[test]
    fn settings_change_in_place_and_live_state_stays() {
        let (queues, agents) = setup();
        let mut acd = Acd::new(queues.clone(), agents.clone()).expect("acd");
        let t0 = crate::time::test_epoch();
        acd.handle(
            t0,
            AcdInput::AgentReachable {
                agent: "1001".into(),
                reachable: true,
            },
        );
        acd.handle(
            t0,
            AcdInput::AgentLogin {
                agent: "1001".into(),
            },
        );
        let mut queues2 = queues.clone();
        queues2[0].wrap_up = Duration::from_secs(5);
        let mut agents2 = agents.clone();
        agents2[0].number = "042".into();
        acd.reconfigure(queues2, agents2).expect("reload");
        assert_eq!(acd.queues[0].config.wrap_up, Duration::from_secs(5));
        let agent = acd.agent("1001").expect("agent");
        assert_eq!(agent.number, "042");
        assert_eq!(*agent.status, AgentStatus::Available);
    }

    #[test]
    fn shape_changes_are_refused_and_nothing_changes() {
        let (queues, agents) = setup();
        let mut acd = Acd::new(queues.clone(), agents.clone()).expect("acd");
        let mut more = queues.clone();
        more.push(QueueConfig::new("sales"));
        let mut wider = agents.clone();
        wider[0].queues.push("complaint".into());
        let mut slower = queues.clone();
        slower[1].wrap_up = Duration::from_secs(99);
        for (q, a) in [
            (more, agents.clone()),
            (slower.clone(), wider),
            (queues.clone(), agents[..1].to_vec()),
        ] {
            let err = acd.reconfigure(q, a).expect_err("refused");
            assert!(matches!(err, AcdConfigError::NeedsRestart(_)), "{err}");
        }
        assert_eq!(acd.queues[1].config.wrap_up, QueueConfig::new("x").wrap_up);
    }
}

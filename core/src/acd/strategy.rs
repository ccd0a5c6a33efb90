//! Distribution strategies: one pure ranking function each, in one table,
//! after Asterisk's `strategies[]` and `calc_metric`.
//!
//! A ranking function looks at one agent and returns its [`Rank`] in a
//! queue (lower is offered first), or `None` when the agent cannot serve
//! the queue at all (a skill below the minimum). Only agents that are
//! *usable* (available, reachable, idle, serving the queue) are ever
//! ranked; the ACD keeps each queue's usable agents in a `BTreeSet<Rank>`,
//! so the best one is the first element and finding it costs `O(log n)`,
//! not a scan of every agent.
//!
//! Every input of a rank (calls answered, end of the last call, skills)
//! only changes while the agent is busy, so a rank computed when the agent
//! becomes idle stays valid until it is offered a call.
//!
//! Round robin is the one strategy whose order depends on the queue's
//! memory (the last agent offered): its rank is the agent's place in the
//! member list, and [`pick`] starts after the cursor and wraps around.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Instant;

use serde::Deserialize;

/// How a queue chooses among its idle agents.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Strategy {
    /// The agent whose last call ended longest ago (never-called agents
    /// first, in member order).
    #[default]
    LongestIdle,
    /// The next agent in member order after the last one offered a call
    /// by this queue, wrapping around.
    RoundRobin,
    /// The agent who answered the fewest calls; ties go to the longest idle.
    FewestCalls,
    /// Every idle agent at once; the first to answer takes the call.
    RingAll,
    /// Agents with at least `min_level` in `skill`, highest level first,
    /// then longest idle. Agents below the minimum are not members.
    Skills { skill: String, min_level: u8 },
}

/// An agent's place in a queue's offer order: lower is offered first.
/// Compared field by field; `agent` (the agent's index, which is also its
/// place in the member list) makes every rank unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rank {
    pub primary: u64,
    /// When the agent's last call ended; `None` (never called) sorts first.
    pub idle_since: Option<Instant>,
    pub agent: u32,
}

/// What a ranking function may look at.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Index of the agent in the configuration, i.e. its member order.
    pub agent: u32,
    pub calls_answered: u64,
    pub last_call_end: Option<Instant>,
    pub skills: &'a BTreeMap<String, u8>,
}

/// A ranking function: `None` when the agent cannot serve the queue.
pub type RankFn = fn(&Strategy, &Candidate<'_>) -> Option<Rank>;

/// One row of the strategy table.
#[derive(Debug, Clone, Copy)]
pub struct StrategyEntry {
    /// The name used in configuration and logs.
    pub name: &'static str,
    /// Offer each caller to every ranked agent at once.
    pub rings_all: bool,
    pub rank: RankFn,
}

/// The strategy table, in [`Strategy`] variant order.
pub const STRATEGIES: [StrategyEntry; 5] = [
    StrategyEntry {
        name: "longest-idle",
        rings_all: false,
        rank: longest_idle,
    },
    StrategyEntry {
        name: "round-robin",
        rings_all: false,
        rank: round_robin,
    },
    StrategyEntry {
        name: "fewest-calls",
        rings_all: false,
        rank: fewest_calls,
    },
    StrategyEntry {
        name: "ring-all",
        rings_all: true,
        rank: ring_all,
    },
    StrategyEntry {
        name: "skills",
        rings_all: false,
        rank: skills,
    },
];

fn longest_idle(_: &Strategy, c: &Candidate<'_>) -> Option<Rank> {
    Some(Rank {
        primary: 0,
        idle_since: c.last_call_end,
        agent: c.agent,
    })
}

fn round_robin(_: &Strategy, c: &Candidate<'_>) -> Option<Rank> {
    // Member order; `pick` rotates it to start after the cursor.
    Some(Rank {
        primary: u64::from(c.agent),
        idle_since: None,
        agent: c.agent,
    })
}

fn fewest_calls(_: &Strategy, c: &Candidate<'_>) -> Option<Rank> {
    Some(Rank {
        primary: c.calls_answered,
        idle_since: c.last_call_end,
        agent: c.agent,
    })
}

fn ring_all(_: &Strategy, c: &Candidate<'_>) -> Option<Rank> {
    Some(Rank {
        primary: 0,
        idle_since: None,
        agent: c.agent,
    })
}

fn skills(s: &Strategy, c: &Candidate<'_>) -> Option<Rank> {
    let Strategy::Skills { skill, min_level } = s else {
        return None;
    };
    let level = *c.skills.get(skill)?;
    (level >= *min_level).then(|| Rank {
        primary: u64::from(u8::MAX - level),
        idle_since: c.last_call_end,
        agent: c.agent,
    })
}

impl Strategy {
    fn index(&self) -> usize {
        match self {
            Strategy::LongestIdle => 0,
            Strategy::RoundRobin => 1,
            Strategy::FewestCalls => 2,
            Strategy::RingAll => 3,
            Strategy::Skills { .. } => 4,
        }
    }

    /// This strategy's row in [`STRATEGIES`].
    pub fn entry(&self) -> &'static StrategyEntry {
        &STRATEGIES[self.index()]
    }

    pub fn name(&self) -> &'static str {
        self.entry().name
    }

    pub fn rings_all(&self) -> bool {
        self.entry().rings_all
    }

    /// The agent's rank in a queue with this strategy, `None` when it
    /// cannot serve the queue.
    pub fn rank(&self, candidate: &Candidate<'_>) -> Option<Rank> {
        (self.entry().rank)(self, candidate)
    }

    /// The strategy named `name`, for the strategies without parameters.
    pub fn from_name(name: &str) -> Option<Strategy> {
        [
            Strategy::LongestIdle,
            Strategy::RoundRobin,
            Strategy::FewestCalls,
            Strategy::RingAll,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::Skills { skill, min_level } => write!(f, "skills({skill}>={min_level})"),
            other => f.write_str(other.name()),
        }
    }
}

/// The ranks in offer order: from the cursor on for round robin (the
/// agent after the last one offered, wrapping), from the best otherwise.
fn in_offer_order<'a>(
    strategy: &Strategy,
    idle: &'a BTreeSet<Rank>,
    cursor: Option<u32>,
) -> impl Iterator<Item = &'a Rank> {
    let start = match (strategy, cursor) {
        (Strategy::RoundRobin, Some(last)) => Rank {
            primary: u64::from(last) + 1,
            idle_since: None,
            agent: 0,
        },
        _ => Rank {
            primary: 0,
            idle_since: None,
            agent: 0,
        },
    };
    idle.range(start..).chain(idle.range(..start))
}

/// The agent to offer a caller to: the first in offer order that is not
/// in `avoid` (agents that already failed to answer this caller), or the
/// first of all when every idle agent is in `avoid`. `None` when `idle`
/// is empty. Costs `O(log n + avoid.len())`.
pub fn pick(
    strategy: &Strategy,
    idle: &BTreeSet<Rank>,
    cursor: Option<u32>,
    avoid: &[u32],
) -> Option<u32> {
    let mut first = None;
    for (i, rank) in in_offer_order(strategy, idle, cursor).enumerate() {
        first.get_or_insert(rank.agent);
        if !avoid.contains(&rank.agent) {
            return Some(rank.agent);
        }
        if i >= avoid.len() {
            break;
        }
    }
    first
}

/// Ring-all: every idle agent not in `avoid`, or every idle agent when
/// all of them are in `avoid`.
pub fn pick_all(idle: &BTreeSet<Rank>, avoid: &[u32]) -> Vec<u32> {
    let fresh: Vec<u32> = idle
        .iter()
        .map(|r| r.agent)
        .filter(|a| !avoid.contains(a))
        .collect();
    if fresh.is_empty() {
        idle.iter().map(|r| r.agent).collect()
    } else {
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::Strategy;
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn skills_of(level: u8) -> BTreeMap<String, u8> {
        BTreeMap::from([("billing".to_string(), level)])
    }

    #[test]
    fn table_matches_variants() {
        let all = [
            Strategy::LongestIdle,
            Strategy::RoundRobin,
            Strategy::FewestCalls,
            Strategy::RingAll,
            Strategy::Skills {
                skill: "x".into(),
                min_level: 1,
            },
        ];
        for (i, s) in all.iter().enumerate() {
            assert_eq!(s.entry().name, STRATEGIES[i].name);
        }
        assert_eq!(Strategy::from_name("ring-all"), Some(Strategy::RingAll));
        assert_eq!(Strategy::from_name("skills"), None);
        assert!(Strategy::RingAll.rings_all());
        assert!(!Strategy::default().rings_all());
        assert_eq!(all[4].to_string(), "skills(x>=1)");
    }

    #[test]
    fn skills_rank_by_level_and_refuse_below_minimum() {
        let s = Strategy::Skills {
            skill: "billing".into(),
            min_level: 5,
        };
        let low = skills_of(4);
        let high = skills_of(9);
        let none = BTreeMap::new();
        let c = |agent, skills| Candidate {
            agent,
            calls_answered: 0,
            last_call_end: None,
            skills,
        };
        assert_eq!(s.rank(&c(0, &low)), None);
        assert_eq!(s.rank(&c(0, &none)), None);
        let mid = skills_of(5);
        assert!(s.rank(&c(1, &high)) < s.rank(&c(0, &mid)));
    }

    #[test]
    fn round_robin_continues_after_the_cursor_and_avoids() {
        let idle: BTreeSet<Rank> = [0u32, 2, 3, 5]
            .iter()
            .map(|&a| {
                round_robin(
                    &Strategy::RoundRobin,
                    &Candidate {
                        agent: a,
                        calls_answered: 0,
                        last_call_end: None,
                        skills: &BTreeMap::new(),
                    },
                )
                .expect("rank")
            })
            .collect();
        let rr = Strategy::RoundRobin;
        assert_eq!(pick(&rr, &idle, None, &[]), Some(0));
        assert_eq!(pick(&rr, &idle, Some(0), &[]), Some(2));
        assert_eq!(pick(&rr, &idle, Some(3), &[]), Some(5));
        assert_eq!(pick(&rr, &idle, Some(5), &[]), Some(0), "wraps");
        assert_eq!(pick(&rr, &idle, Some(3), &[5]), Some(0));
        assert_eq!(pick(&rr, &idle, Some(3), &[5, 0, 2, 3]), Some(5));
        assert_eq!(pick(&rr, &BTreeSet::new(), Some(3), &[]), None);
        assert_eq!(pick_all(&idle, &[0, 2]), vec![3, 5]);
        assert_eq!(pick_all(&idle, &[0, 2, 3, 5]), vec![0, 2, 3, 5]);
    }

    /// The reference: rank every agent, sort, rotate for round robin,
    /// then take the first not avoided. `pick` must agree with it.
    fn reference(
        strategy: &Strategy,
        agents: &[Candidate<'_>],
        cursor: Option<u32>,
        avoid: &[u32],
    ) -> Option<u32> {
        let mut ranked: Vec<(Rank, u32)> = agents
            .iter()
            .filter_map(|c| strategy.rank(c).map(|r| (r, c.agent)))
            .collect();
        ranked.sort();
        if let (Strategy::RoundRobin, Some(cur)) = (strategy, cursor) {
            let split = ranked.iter().position(|(_, a)| *a > cur).unwrap_or(0);
            ranked.rotate_left(split);
        }
        ranked
            .iter()
            .find(|(_, a)| !avoid.contains(a))
            .or(ranked.first())
            .map(|(_, a)| *a)
    }

    proptest! {
        #[test]
        fn indexed_pick_equals_reference(
            agents in prop::collection::vec((0u64..4, prop::option::of(0u64..5), 0u8..=10), 0..12),
            cursor in prop::option::of(0u32..12),
            avoid in prop::collection::vec(0u32..12, 0..4),
            which in 0usize..5,
        ) {
            let t0 = crate::time::test_epoch();
            let strategy = match which {
                0 => Strategy::LongestIdle,
                1 => Strategy::RoundRobin,
                2 => Strategy::FewestCalls,
                3 => Strategy::RingAll,
                _ => Strategy::Skills { skill: "billing".into(), min_level: 4 },
            };
            let skill_maps: Vec<BTreeMap<String, u8>> =
                agents.iter().map(|&(_, _, l)| if l == 0 { BTreeMap::new() } else { skills_of(l) }).collect();
            let candidates: Vec<Candidate<'_>> = agents
                .iter()
                .enumerate()
                .map(|(i, &(calls, end, _))| Candidate {
                    agent: i as u32,
                    calls_answered: calls,
                    last_call_end: end.map(|s| t0 + Duration::from_secs(s)),
                    skills: &skill_maps[i],
                })
                .collect();
            let idle: BTreeSet<Rank> = candidates.iter().filter_map(|c| strategy.rank(c)).collect();
            prop_assert_eq!(
                pick(&strategy, &idle, cursor, &avoid),
                reference(&strategy, &candidates, cursor, &avoid)
            );
        }
    }
}

//! The outbound figures of `hotline report`, per campaign: numbers,
//! attempts, numbers reached and confirmed, and how the attempts that did
//! not succeed failed. Outbound records never enter the inbound figures.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::cdr::CallRecord;

/// Attempt results, in the order the report shows them.
pub const RESULTS: [&str; 10] = [
    "confirmed",
    "heard",
    "unconfirmed",
    "opted_out",
    "busy",
    "no_answer",
    "rejected",
    "invalid",
    "congestion",
    "interrupted",
];

/// What one number's attempts came to, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Best {
    Confirmed,
    OptedOut,
    Reached,
    Invalid,
    NotReached,
}

#[derive(Debug, Default, Clone)]
struct CampaignTally {
    name: Option<String>,
    attempts: u64,
    results: BTreeMap<String, u64>,
    /// Per number: its best outcome so far.
    numbers: HashMap<String, Best>,
}

/// One campaign's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignRow {
    pub campaign: u64,
    pub name: Option<String>,
    /// Numbers with at least one attempt in the records.
    pub numbers: u64,
    pub attempts: u64,
    pub attempts_per_number: Option<f64>,
    /// Numbers that answered at least once.
    pub reached: u64,
    /// Numbers whose notice was confirmed (or heard, with no confirm key).
    pub confirmed: u64,
    pub opted_out: u64,
    /// Numbers found not to exist.
    pub invalid: u64,
    /// Numbers never reached (every attempt busy, unanswered, failed).
    pub not_reached: u64,
    /// Attempts by result (confirmed, busy, no_answer, congestion, ...).
    pub results: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Clone)]
pub struct OutboundTally {
    campaigns: BTreeMap<u64, CampaignTally>,
}

impl OutboundTally {
    /// Counts one outbound record in.
    pub fn add(&mut self, r: &CallRecord) {
        let c = self.campaigns.entry(r.campaign.unwrap_or(0)).or_default();
        if c.name.is_none() {
            c.name = r.campaign_name.clone();
        }
        c.attempts += 1;
        let result = r.attempt_result.as_deref().unwrap_or("unknown");
        *c.results.entry(result.to_string()).or_insert(0) += 1;
        let best = match result {
            "confirmed" | "heard" => Best::Confirmed,
            "opted_out" => Best::OptedOut,
            _ if r.answered_at.is_some() => Best::Reached,
            "invalid" => Best::Invalid,
            _ => Best::NotReached,
        };
        let entry = c
            .numbers
            .entry(r.dialled_number.clone())
            .or_insert(Best::NotReached);
        *entry = (*entry).min(best);
    }

    pub fn rows(&self) -> Vec<CampaignRow> {
        self.campaigns
            .iter()
            .map(|(id, c)| {
                let count = |b: Best| c.numbers.values().filter(|x| **x == b).count() as u64;
                let numbers = c.numbers.len() as u64;
                let confirmed = count(Best::Confirmed);
                let opted_out = count(Best::OptedOut);
                CampaignRow {
                    campaign: *id,
                    name: c.name.clone(),
                    numbers,
                    attempts: c.attempts,
                    attempts_per_number: (numbers > 0).then(|| c.attempts as f64 / numbers as f64),
                    reached: confirmed + opted_out + count(Best::Reached),
                    confirmed,
                    opted_out,
                    invalid: count(Best::Invalid),
                    not_reached: count(Best::NotReached),
                    results: c.results.clone(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(number: &str, result: &str, answered: bool) -> CallRecord {
        CallRecord {
            direction: Some("outbound".into()),
            campaign: Some(7),
            campaign_name: Some("gas outage".into()),
            dialled_number: number.into(),
            attempt_result: Some(result.into()),
            answered_at: answered.then(|| "2026-12-06T01:00:00.000Z".into()),
            ..CallRecord::default()
        }
    }

    #[test]
    fn numbers_count_once_by_their_best_attempt() {
        let mut t = OutboundTally::default();
        for r in [
            attempt("1", "busy", false),
            attempt("1", "busy", false),
            attempt("1", "confirmed", true),
            attempt("2", "invalid", false),
            attempt("3", "busy", false),
            attempt("3", "no_answer", false),
            attempt("4", "unconfirmed", true),
            attempt("4", "busy", false),
            attempt("5", "opted_out", true),
        ] {
            t.add(&r);
        }
        let rows = t.rows();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!((r.campaign, r.name.as_deref()), (7, Some("gas outage")));
        assert_eq!((r.numbers, r.attempts), (5, 9));
        assert_eq!(r.attempts_per_number, Some(1.8));
        assert_eq!(
            (r.confirmed, r.opted_out, r.invalid, r.not_reached),
            (1, 1, 1, 1)
        );
        assert_eq!(
            r.reached, 3,
            "confirmed, opted out, and the unconfirmed answer"
        );
        assert_eq!(r.results["busy"], 4);
        assert_eq!(r.results.values().sum::<u64>(), 9);
    }
}

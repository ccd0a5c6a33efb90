//! What both backends read back the same way: a campaign from its rows,
//! its prompt's audio, a task from its JSON body, a notice's campaign
//! name, and the knowledge base's tag list and `LIKE` pattern. The SQL
//! differs per backend; what the rows mean does not.

use std::path::Path;

use super::StoreError;
use crate::campaign::{
    Attempt, AttemptResult, Campaign, CampaignId, CampaignSpec, CampaignState, NumberState, Target,
};
use crate::media::prompt::decode_wav;
use crate::tasks::Task;

/// Closed tasks are read back for this long (the lists and reports show
/// them); open ones always.
pub(super) const CLOSED_TASKS_DAYS: u64 = 7;
/// Contacts are read back for this long; the engine keeps those inside
/// its repeat window.
pub(super) const CONTACT_DAYS: u64 = 30;
pub(super) const DAY_MS: u64 = 86_400_000;

/// One row of `targets`.
pub(super) struct TargetRow {
    pub idx: i64,
    pub number: String,
    pub state: String,
    pub due_ms: Option<i64>,
}

/// One row of `attempts`.
pub(super) struct AttemptRow {
    pub idx: i64,
    pub n: i64,
    pub at_ms: i64,
    pub ended_ms: Option<i64>,
    pub result: Option<String>,
    pub sip_status: i64,
    pub call_id: Option<String>,
}

/// Campaign `id` from its row, its targets (ordered by index) and its
/// attempts (ordered by index, then number).
pub(super) fn campaign(
    id: i64,
    spec: &str,
    state: &str,
    created_ms: i64,
    target_rows: Vec<TargetRow>,
    attempt_rows: Vec<AttemptRow>,
) -> Result<Campaign, StoreError> {
    let corrupt = |problem: String| StoreError::Corrupt {
        campaign: id as u64,
        problem,
    };
    let mut targets: Vec<Target> = Vec::with_capacity(target_rows.len());
    for row in target_rows {
        if row.idx as usize != targets.len() {
            return Err(corrupt(format!("number {} out of order", row.idx)));
        }
        targets.push(target(id, row)?);
    }
    for row in attempt_rows {
        let t = targets
            .get_mut(row.idx as usize)
            .ok_or_else(|| corrupt(format!("attempt for number {}", row.idx)))?;
        t.attempts.push(attempt(id, row)?);
    }
    // The spec as created, with its numbers from the targets.
    let mut json: serde_json::Value =
        serde_json::from_str(spec).map_err(|e| corrupt(format!("spec: {e}")))?;
    json["numbers"] = targets.iter().map(|t| t.number.clone()).collect();
    let offset = json["window"]["utc_offset"]
        .as_str()
        .and_then(crate::forms::parse_offset)
        .unwrap_or(0);
    let spec =
        CampaignSpec::parse(&json, None, offset).map_err(|e| corrupt(format!("spec: {e}")))?;
    Ok(Campaign {
        id: CampaignId(id as u64),
        spec,
        state: CampaignState::parse(state).ok_or_else(|| corrupt(format!("state {state:?}")))?,
        created_ms: created_ms as u64,
        targets,
    })
}

/// A number of campaign `campaign` from its row, without its attempts
/// (see [`attempt`]).
pub(super) fn target(campaign: i64, row: TargetRow) -> Result<Target, StoreError> {
    Ok(Target {
        state: NumberState::parse(&row.state).ok_or_else(|| StoreError::Corrupt {
            campaign: campaign as u64,
            problem: format!("number state {:?}", row.state),
        })?,
        number: row.number,
        attempts: Vec::new(),
        due_ms: row.due_ms.map(|d| d as u64),
    })
}

/// An attempt of campaign `campaign` from its row.
pub(super) fn attempt(campaign: i64, row: AttemptRow) -> Result<Attempt, StoreError> {
    Ok(Attempt {
        number: row.n as u32,
        at_ms: row.at_ms as u64,
        ended_ms: row.ended_ms.map(|e| e as u64),
        result: match row.result {
            Some(r) => Some(AttemptResult::parse(&r).ok_or_else(|| StoreError::Corrupt {
                campaign: campaign as u64,
                problem: format!("result {r:?}"),
            })?),
            None => None,
        },
        sip_status: row.sip_status as u16,
        call_id: row.call_id,
    })
}

/// A campaign's uploaded prompt, decoded (8 kHz mono).
pub(super) fn prompt_audio(
    campaign: &Campaign,
    wav: Option<Vec<u8>>,
) -> Result<Option<Vec<i16>>, StoreError> {
    let Some(bytes) = wav else {
        return Ok(None);
    };
    decode_wav(
        &campaign.spec.prompt,
        Path::new("<store>"),
        bytes.as_slice(),
    )
    .map(Some)
    .map_err(|e| StoreError::Corrupt {
        campaign: campaign.id.0,
        problem: e.to_string(),
    })
}

/// A task as stored: its JSON.
pub(super) fn task_body(task: &Task) -> Result<String, StoreError> {
    serde_json::to_string(task).map_err(|e| StoreError::CorruptTask {
        task: task.id.0,
        problem: e.to_string(),
    })
}

/// A task read back. A row that does not read back is an error naming
/// it, not a task silently dropped.
pub(super) fn task(id: i64, body: &str) -> Result<Task, StoreError> {
    serde_json::from_str::<Task>(body).map_err(|e| StoreError::CorruptTask {
        task: id as u64,
        problem: e.to_string(),
    })
}

/// The name in a campaign's stored spec ("" if it has none).
pub(super) fn campaign_name(spec: &str) -> String {
    serde_json::from_str::<serde_json::Value>(spec)
        .ok()
        .and_then(|v| v["name"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A knowledge base entry's tags, kept as a comma list.
pub(super) fn split_tags(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// `text` as a `LIKE` pattern (escape character `\`) matching it anywhere.
pub(super) fn like_anywhere(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

//! The knowledge base in the shared store: the `kb` table (each entry as
//! it is now) and `kb_history` (every version ever written), as in the
//! embedded store. Search is `ILIKE` on each word, in the title,
//! question, answer or tags: it finds any piece of text whatever its
//! length or script (Chinese words, mostly two characters, have no spaces
//! between them), case-insensitively, with the same results and order as
//! the embedded store's trigram index and `LIKE`. An edit is a
//! compare-and-set on the version in one `UPDATE`, so it holds with
//! several nodes writing.
//!
//! `ILIKE` reads every entry (no index): a knowledge base of some
//! thousands of entries is searched in milliseconds. Letters outside
//! ASCII are matched whatever their case when the database's `LC_CTYPE`
//! knows them (`C.UTF-8`, `en_US.UTF-8`); under `C`, as SQLite's `LIKE`,
//! only ASCII ones are (Chinese has no case).

use postgres::types::ToSql;
use postgres::{Client, Row};

use super::{col, pg, PostgresStore};
use crate::shell::store::kb::{KbEntry, KbError, KbFields, KbQuery, KbStore, MAX_RESULTS};
use crate::shell::store::rows::{like_anywhere, split_tags};
use crate::shell::store::StoreError;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kb (
    id BIGSERIAL PRIMARY KEY,
    title TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    tags TEXT NOT NULL,
    business_type TEXT,
    version BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS kb_newest ON kb (updated_ms, id);
CREATE TABLE IF NOT EXISTS kb_history (
    kb_id BIGINT NOT NULL,
    version BIGINT NOT NULL,
    title TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    tags TEXT NOT NULL,
    business_type TEXT,
    written_ms BIGINT NOT NULL,
    written_by TEXT NOT NULL,
    PRIMARY KEY (kb_id, version)
);
";

/// The columns an entry is read from, in [`entry`]'s order.
const COLUMNS: &str = "k.id, k.title, k.question, k.answer, k.tags, k.business_type, \
                       k.version, k.created_ms, k.updated_ms, k.updated_by";

const READ: &str = "reading the knowledge base";

fn entry(r: &Row) -> Result<KbEntry, StoreError> {
    Ok(KbEntry {
        id: col::<i64>(r, 0, READ)? as u64,
        fields: KbFields {
            title: col(r, 1, READ)?,
            question: col(r, 2, READ)?,
            answer: col(r, 3, READ)?,
            tags: split_tags(col(r, 4, READ)?),
            business_type: col(r, 5, READ)?,
        },
        version: col::<i64>(r, 6, READ)? as u64,
        created_ms: col::<i64>(r, 7, READ)? as u64,
        updated_ms: col::<i64>(r, 8, READ)? as u64,
        updated_by: col(r, 9, READ)?,
    })
}

fn read(c: &mut Client, id: u64) -> Result<Option<KbEntry>, StoreError> {
    c.query_opt(
        &format!("SELECT {COLUMNS} FROM kb k WHERE k.id = $1"),
        &[&(id as i64)],
    )
    .map_err(pg(READ))?
    .as_ref()
    .map(entry)
    .transpose()
}

/// Writes one version into the history.
fn record_version(c: &mut Client, e: &KbEntry) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO kb_history (kb_id, version, title, question, answer, tags, business_type,
                                 written_ms, written_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &(e.id as i64),
            &(e.version as i64),
            &e.fields.title,
            &e.fields.question,
            &e.fields.answer,
            &e.fields.tags.join(","),
            &e.fields.business_type,
            &(e.updated_ms as i64),
            &e.updated_by,
        ],
    )
    .map_err(pg("writing the knowledge base's history"))?;
    Ok(())
}

impl KbStore for PostgresStore {
    fn kb_search(&mut self, query: &KbQuery) -> Result<Vec<KbEntry>, KbError> {
        let mut sql = format!("SELECT {COLUMNS} FROM kb k WHERE TRUE");
        let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        for word in query.text.split_whitespace() {
            let n = values.len() + 1;
            // `\` escapes `%`, `_` and itself (LIKE's default escape).
            sql.push_str(&format!(
                " AND (k.title ILIKE ${n} OR k.question ILIKE ${n} \
                 OR k.answer ILIKE ${n} OR k.tags ILIKE ${n})"
            ));
            values.push(Box::new(like_anywhere(word)));
        }
        if let Some(b) = &query.business_type {
            sql.push_str(&format!(" AND k.business_type = ${}", values.len() + 1));
            values.push(Box::new(b.clone()));
        }
        sql.push_str(&format!(
            " ORDER BY k.updated_ms DESC, k.id DESC LIMIT ${}",
            values.len() + 1
        ));
        values.push(Box::new(query.limit.clamp(1, MAX_RESULTS) as i64));
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        self.conn.with_tx(true, |c| {
            c.query(&sql, &params)
                .map_err(pg("searching the knowledge base"))?
                .iter()
                .map(|r| Ok(entry(r)?))
                .collect()
        })
    }

    fn kb_get(&mut self, id: u64) -> Result<KbEntry, KbError> {
        self.conn
            .with_tx(true, |c| read(c, id)?.ok_or(KbError::NotFound(id)))
    }

    fn kb_create(&mut self, fields: &KbFields, who: &str, now_ms: u64) -> Result<KbEntry, KbError> {
        self.conn.with_tx(false, |c| {
            const W: &str = "writing the knowledge base";
            let row = c
                .query_one(
                    "INSERT INTO kb (title, question, answer, tags, business_type, version,
                                     created_ms, updated_ms, updated_by)
                     VALUES ($1, $2, $3, $4, $5, 1, $6, $6, $7) RETURNING id",
                    &[
                        &fields.title,
                        &fields.question,
                        &fields.answer,
                        &fields.tags.join(","),
                        &fields.business_type,
                        &(now_ms as i64),
                        &who,
                    ],
                )
                .map_err(pg(W))?;
            let created = KbEntry::created(col::<i64>(&row, 0, W)? as u64, fields, who, now_ms);
            record_version(c, &created)?;
            Ok(created)
        })
    }

    fn kb_update(
        &mut self,
        id: u64,
        expected: u64,
        fields: &KbFields,
        who: &str,
        now_ms: u64,
    ) -> Result<KbEntry, KbError> {
        self.conn.with_tx(false, |c| {
            // Compare and set in one statement: a second writer waits for
            // the first's row lock, then finds the version moved on.
            let updated = c
                .query_opt(
                    &format!(
                        "UPDATE kb k SET title = $3, question = $4, answer = $5, tags = $6,
                                business_type = $7, version = k.version + 1,
                                updated_ms = GREATEST(k.updated_ms, $8), updated_by = $9
                         WHERE k.id = $1 AND k.version = $2
                         RETURNING {COLUMNS}"
                    ),
                    &[
                        &(id as i64),
                        &(expected as i64),
                        &fields.title,
                        &fields.question,
                        &fields.answer,
                        &fields.tags.join(","),
                        &fields.business_type,
                        &(now_ms as i64),
                        &who,
                    ],
                )
                .map_err(pg("updating the knowledge base"))?;
            match updated {
                Some(row) => {
                    let now = entry(&row)?;
                    record_version(c, &now)?;
                    Ok(now)
                }
                None => match read(c, id)? {
                    Some(current) => Err(KbError::Conflict {
                        expected,
                        current: Box::new(current),
                    }),
                    None => Err(KbError::NotFound(id)),
                },
            }
        })
    }

    fn kb_history(&mut self, id: u64) -> Result<Vec<KbEntry>, KbError> {
        self.conn.with_tx(true, |c| {
            const H: &str = "reading the knowledge base's history";
            let created = c
                .query_opt("SELECT created_ms FROM kb WHERE id = $1", &[&(id as i64)])
                .map_err(pg(H))?
                .ok_or(KbError::NotFound(id))?;
            let created_ms: i64 = col(&created, 0, H)?;
            c.query(
                "SELECT kb_id, title, question, answer, tags, business_type, version, $2::BIGINT,
                        written_ms, written_by
                 FROM kb_history WHERE kb_id = $1 ORDER BY version DESC",
                &[&(id as i64), &created_ms],
            )
            .map_err(pg(H))?
            .iter()
            .map(|r| Ok(entry(r)?))
            .collect()
        })
    }
}

//! The knowledge base in the embedded store: the `kb` table (each entry as
//! it is now), `kb_history` (every version ever written, never updated or
//! deleted) and `kb_fts`, an FTS5 index with the trigram tokenizer, which
//! finds any piece of text of three characters or more, case-insensitively
//! and whatever the script (Chinese has no spaces between words). Shorter
//! words (most Chinese words are two characters) are found with `LIKE`.

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension, Row, TransactionBehavior};

use super::SqliteStore;
use crate::shell::store::kb::{KbEntry, KbError, KbFields, KbQuery, KbStore, MAX_RESULTS};
use crate::shell::store::rows::{like_anywhere, split_tags};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kb (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    tags TEXT NOT NULL,
    business_type TEXT,
    version INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS kb_newest ON kb (updated_ms, id);
CREATE TABLE IF NOT EXISTS kb_history (
    kb_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    title TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    tags TEXT NOT NULL,
    business_type TEXT,
    written_ms INTEGER NOT NULL,
    written_by TEXT NOT NULL,
    PRIMARY KEY (kb_id, version)
);
CREATE VIRTUAL TABLE IF NOT EXISTS kb_fts USING fts5 (
    title, question, answer, tags, tokenize = 'trigram'
);
";

/// The columns an entry is read from, in [`entry`]'s order.
const COLUMNS: &str = "k.id, k.title, k.question, k.answer, k.tags, k.business_type, \
                       k.version, k.created_ms, k.updated_ms, k.updated_by";

/// A word this long or longer is looked up in the trigram index.
const TRIGRAM: usize = 3;

fn entry(r: &Row<'_>) -> rusqlite::Result<KbEntry> {
    Ok(KbEntry {
        id: r.get::<_, i64>(0)? as u64,
        fields: KbFields {
            title: r.get(1)?,
            question: r.get(2)?,
            answer: r.get(3)?,
            tags: split_tags(&r.get::<_, String>(4)?),
            business_type: r.get(5)?,
        },
        version: r.get::<_, i64>(6)? as u64,
        created_ms: r.get::<_, i64>(7)? as u64,
        updated_ms: r.get::<_, i64>(8)? as u64,
        updated_by: r.get(9)?,
    })
}

/// `text` as an FTS5 string (one phrase: no operators inside).
fn fts_phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// Writes one version into the history and the entry's text into the
/// index (replacing what it held).
fn record_version(tx: &rusqlite::Transaction<'_>, e: &KbEntry) -> Result<(), KbError> {
    let tags = e.fields.tags.join(",");
    tx.execute(
        "INSERT INTO kb_history (kb_id, version, title, question, answer, tags, business_type,
                                 written_ms, written_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            e.id as i64,
            e.version as i64,
            e.fields.title,
            e.fields.question,
            e.fields.answer,
            tags,
            e.fields.business_type,
            e.updated_ms as i64,
            e.updated_by
        ],
    )?;
    tx.execute("DELETE FROM kb_fts WHERE rowid = ?1", [e.id as i64])?;
    tx.execute(
        "INSERT INTO kb_fts (rowid, title, question, answer, tags) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            e.id as i64,
            e.fields.title,
            e.fields.question,
            e.fields.answer,
            tags
        ],
    )?;
    Ok(())
}

fn read(db: &rusqlite::Connection, id: u64) -> Result<Option<KbEntry>, KbError> {
    Ok(db
        .query_row(
            &format!("SELECT {COLUMNS} FROM kb k WHERE k.id = ?1"),
            [id as i64],
            entry,
        )
        .optional()?)
}

impl KbStore for SqliteStore {
    fn kb_search(&mut self, query: &KbQuery) -> Result<Vec<KbEntry>, KbError> {
        let mut sql = format!("SELECT {COLUMNS} FROM kb k WHERE 1");
        let mut values: Vec<Value> = Vec::new();
        for word in query.text.split_whitespace() {
            let n = values.len() + 1;
            if word.chars().count() >= TRIGRAM {
                sql.push_str(&format!(
                    " AND k.id IN (SELECT rowid FROM kb_fts WHERE kb_fts MATCH ?{n})"
                ));
                values.push(Value::Text(fts_phrase(word)));
            } else {
                sql.push_str(&format!(
                    " AND (k.title LIKE ?{n} ESCAPE '\\' OR k.question LIKE ?{n} ESCAPE '\\' \
                     OR k.answer LIKE ?{n} ESCAPE '\\' OR k.tags LIKE ?{n} ESCAPE '\\')"
                ));
                values.push(Value::Text(like_anywhere(word)));
            }
        }
        if let Some(b) = &query.business_type {
            sql.push_str(&format!(" AND k.business_type = ?{}", values.len() + 1));
            values.push(Value::Text(b.clone()));
        }
        sql.push_str(&format!(
            " ORDER BY k.updated_ms DESC, k.id DESC LIMIT ?{}",
            values.len() + 1
        ));
        values.push(Value::Integer(query.limit.clamp(1, MAX_RESULTS) as i64));
        let mut stmt = self.db.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(values), entry)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn kb_get(&mut self, id: u64) -> Result<KbEntry, KbError> {
        read(&self.db, id)?.ok_or(KbError::NotFound(id))
    }

    fn kb_create(&mut self, fields: &KbFields, who: &str, now_ms: u64) -> Result<KbEntry, KbError> {
        let tx = self.db.transaction()?;
        tx.execute(
            "INSERT INTO kb (title, question, answer, tags, business_type, version,
                             created_ms, updated_ms, updated_by)
             VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6, ?7)",
            params![
                fields.title,
                fields.question,
                fields.answer,
                fields.tags.join(","),
                fields.business_type,
                now_ms as i64,
                who
            ],
        )?;
        let created = KbEntry::created(tx.last_insert_rowid() as u64, fields, who, now_ms);
        record_version(&tx, &created)?;
        tx.commit()?;
        Ok(created)
    }

    fn kb_update(
        &mut self,
        id: u64,
        expected: u64,
        fields: &KbFields,
        who: &str,
        now_ms: u64,
    ) -> Result<KbEntry, KbError> {
        // Compare and set in one statement, so that it holds with several
        // writers too (on PostgreSQL the same UPDATE ... WHERE version).
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = tx.execute(
            "UPDATE kb SET title = ?3, question = ?4, answer = ?5, tags = ?6, business_type = ?7,
                           version = version + 1, updated_ms = MAX(updated_ms, ?8),
                           updated_by = ?9
             WHERE id = ?1 AND version = ?2",
            params![
                id as i64,
                expected as i64,
                fields.title,
                fields.question,
                fields.answer,
                fields.tags.join(","),
                fields.business_type,
                now_ms as i64,
                who
            ],
        )?;
        let Some(now) = read(&tx, id)? else {
            return Err(KbError::NotFound(id));
        };
        if changed == 0 {
            return Err(KbError::Conflict {
                expected,
                current: Box::new(now),
            });
        }
        record_version(&tx, &now)?;
        tx.commit()?;
        Ok(now)
    }

    fn kb_history(&mut self, id: u64) -> Result<Vec<KbEntry>, KbError> {
        let created_ms = self
            .db
            .query_row(
                "SELECT created_ms FROM kb WHERE id = ?1",
                [id as i64],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .ok_or(KbError::NotFound(id))?;
        let mut stmt = self.db.prepare(
            "SELECT kb_id, title, question, answer, tags, business_type, version, ?2,
                    written_ms, written_by
             FROM kb_history WHERE kb_id = ?1 ORDER BY version DESC",
        )?;
        let rows = stmt.query_map(params![id as i64, created_ms], entry)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::store::StoreError;

    // The rest of the knowledge base's tests run on both backends
    // (`store::conformance`).

    #[test]
    fn a_store_error_is_typed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = SqliteStore::open(&dir.path().join("hotline.db")).expect("open");
        store.db.execute_batch("DROP TABLE kb").expect("drop");
        assert!(matches!(
            store.kb_get(1),
            Err(KbError::Store(StoreError::Sql(_)))
        ));
    }
}

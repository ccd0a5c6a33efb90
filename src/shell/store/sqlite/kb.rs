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

fn split_tags(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// `text` as an FTS5 string (one phrase: no operators inside).
fn fts_phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// `text` as a `LIKE ... ESCAPE '\'` pattern matching it anywhere.
fn like_anywhere(text: &str) -> String {
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
        let created = KbEntry {
            id: tx.last_insert_rowid() as u64,
            fields: fields.clone(),
            version: 1,
            created_ms: now_ms,
            updated_ms: now_ms,
            updated_by: who.to_string(),
        };
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
    use std::path::Path;

    const T0: u64 = 1_796_520_600_000;

    fn fields(title: &str, answer: &str, tags: &[&str]) -> KbFields {
        KbFields {
            title: title.into(),
            question: String::new(),
            answer: answer.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            business_type: None,
        }
    }

    fn gas() -> KbFields {
        KbFields {
            title: "燃气表更换后读数不走".into(),
            question: "换了新表以后，表上的数字一直不动，是坏了吗？".into(),
            answer: "新表需要先插卡激活。\n请用户持燃气卡在表上插一次，听到提示音后即可用气。"
                .into(),
            tags: vec!["燃气".into(), "抄表".into()],
            business_type: Some("repair".into()),
        }
    }

    fn broadband() -> KbFields {
        KbFields {
            title: "Broadband outage in the Eastern district".into(),
            question: "My internet is down, is there a fault?".into(),
            answer: "A fibre cut is being repaired; service is expected back by 18:00.".into(),
            tags: vec!["broadband".into(), "outage".into()],
            business_type: Some("consultation".into()),
        }
    }

    fn open(path: &Path) -> SqliteStore {
        SqliteStore::open(path).expect("open")
    }

    fn search(store: &mut SqliteStore, text: &str) -> Vec<u64> {
        store
            .kb_search(&KbQuery {
                text: text.into(),
                business_type: None,
                limit: MAX_RESULTS,
            })
            .expect("search")
            .iter()
            .map(|e| e.id)
            .collect()
    }

    #[test]
    fn an_entry_is_created_at_version_one_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = open(&dir.path().join("hotline.db"));
        let created = store.kb_create(&gas(), "api", T0).expect("create");
        assert_eq!(created.version, 1);
        assert_eq!(created.fields, gas());
        assert_eq!(created.updated_by, "api");
        assert_eq!(store.kb_get(created.id).expect("get"), created);
        assert!(matches!(store.kb_get(999), Err(KbError::NotFound(999))));
    }

    #[test]
    fn search_finds_chinese_and_english_words_anywhere_newest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = open(&dir.path().join("hotline.db"));
        let g = store.kb_create(&gas(), "api", T0).expect("create").id;
        let b = store
            .kb_create(&broadband(), "api", T0 + 1000)
            .expect("create")
            .id;
        let both = store
            .kb_create(
                &fields("停电与宽带", "Power cut: broadband is down too.", &[]),
                "api",
                T0 + 2000,
            )
            .expect("create")
            .id;
        // Two characters (the LIKE path) and longer (the trigram index),
        // in the title, question, answer or a tag.
        assert_eq!(search(&mut store, "燃气"), vec![g]);
        assert_eq!(search(&mut store, "读数不走"), vec![g]);
        assert_eq!(search(&mut store, "插卡激活"), vec![g], "in the answer");
        assert_eq!(search(&mut store, "抄表"), vec![g], "a tag");
        assert_eq!(search(&mut store, "坏了吗"), vec![g], "in the question");
        assert_eq!(search(&mut store, "宽带"), vec![both]);
        // English, whatever the case; newest first.
        assert_eq!(search(&mut store, "BROADBAND"), vec![both, b]);
        assert_eq!(search(&mut store, "fibre"), vec![b]);
        // Every word must be there.
        assert_eq!(search(&mut store, "broadband eastern"), vec![b]);
        assert_eq!(search(&mut store, "broadband 燃气"), Vec::<u64>::new());
        // Nothing asked: the newest entries.
        assert_eq!(search(&mut store, ""), vec![both, b, g]);
        // Characters with a meaning to LIKE or FTS5 are only text.
        assert!(search(&mut store, "%").is_empty());
        assert!(search(&mut store, "_").is_empty());
        assert!(search(&mut store, "\"OR\" broad*").is_empty());
        assert!(search(&mut store, "a\"b").is_empty());
        // By business type, and at most `limit`.
        let found = store
            .kb_search(&KbQuery {
                text: String::new(),
                business_type: Some("repair".into()),
                limit: 10,
            })
            .expect("search");
        assert_eq!(found.iter().map(|e| e.id).collect::<Vec<_>>(), vec![g]);
        let found = store
            .kb_search(&KbQuery {
                text: String::new(),
                business_type: None,
                limit: 1,
            })
            .expect("search");
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn an_edit_from_the_current_version_is_saved_a_stale_one_gets_the_current() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = open(&dir.path().join("hotline.db"));
        let id = store.kb_create(&gas(), "api", T0).expect("create").id;

        // Two agents open version 1; the first saves.
        let first = KbFields {
            answer: "先插卡激活，仍不走则报修。".into(),
            ..gas()
        };
        let saved = store
            .kb_update(id, 1, &first, "1001", T0 + 1000)
            .expect("update");
        assert_eq!(saved.version, 2);
        assert_eq!(saved.fields, first);
        assert_eq!(saved.updated_by, "1001");
        assert_eq!(saved.updated_ms, T0 + 1000);
        assert_eq!(saved.created_ms, T0);

        // The second, still on version 1, is refused and shown the first's.
        let second = KbFields {
            tags: vec!["燃气".into(), "抄表".into(), "激活".into()],
            ..gas()
        };
        match store.kb_update(id, 1, &second, "1002", T0 + 2000) {
            Err(KbError::Conflict { expected, current }) => {
                assert_eq!(expected, 1);
                assert_eq!(*current, saved);
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(store.kb_get(id).expect("get"), saved, "nothing changed");

        // Merged onto version 2, it is saved as 3.
        let merged = KbFields {
            tags: second.tags.clone(),
            ..first.clone()
        };
        let third = store
            .kb_update(id, 2, &merged, "1002", T0 + 3000)
            .expect("merged");
        assert_eq!(third.version, 3);
        // The search index follows the text.
        assert_eq!(search(&mut store, "仍不走则报修"), vec![id]);
        assert!(search(&mut store, "听到提示音").is_empty());
        assert_eq!(search(&mut store, "激活"), vec![id]);

        assert!(matches!(
            store.kb_update(77, 1, &merged, "1002", T0),
            Err(KbError::NotFound(77))
        ));
    }

    #[test]
    fn the_history_keeps_every_version_and_all_of_it_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("var/hotline.db");
        let mut store = open(&path);
        let v1 = store.kb_create(&gas(), "api", T0).expect("create");
        let v2 = store
            .kb_update(v1.id, 1, &broadband(), "1001", T0 + 1000)
            .expect("v2");
        let stale = store.kb_update(v1.id, 1, &gas(), "1002", T0 + 1500);
        assert!(matches!(stale, Err(KbError::Conflict { .. })));
        let v3 = store
            .kb_update(
                v1.id,
                2,
                &KbFields {
                    business_type: None,
                    ..gas()
                },
                "1002",
                T0 + 2000,
            )
            .expect("v3");
        let other = store
            .kb_create(&fields("Other", "x", &["a"]), "api", T0 + 2500)
            .expect("other");
        drop(store);

        let mut store = open(&path);
        assert_eq!(store.kb_get(v1.id).expect("get"), v3);
        assert_eq!(
            store.kb_history(v1.id).expect("history"),
            vec![v3, v2, v1.clone()],
            "every version as it was written, newest first; the refused edit is not one"
        );
        assert_eq!(
            store.kb_history(other.id).expect("history"),
            vec![other.clone()]
        );
        assert!(matches!(store.kb_history(5), Err(KbError::NotFound(5))));
        assert_eq!(search(&mut store, "燃气"), vec![v1.id]);
        assert_eq!(search(&mut store, "eastern"), Vec::<u64>::new());
        // A new entry after the reopen gets a new id.
        let next = store.kb_create(&gas(), "api", T0 + 3000).expect("create");
        assert!(next.id > other.id);
    }

    #[test]
    fn a_store_error_is_typed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = open(&dir.path().join("hotline.db"));
        store.db.execute_batch("DROP TABLE kb").expect("drop");
        assert!(matches!(
            store.kb_get(1),
            Err(KbError::Store(StoreError::Sql(_)))
        ));
    }
}

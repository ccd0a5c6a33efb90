//! The knowledge base's checks, on every backend.

use super::{Backend, T0};
use crate::shell::store::kb::{KbError, KbFields, KbQuery, MAX_RESULTS};
use crate::shell::store::Store;

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
        answer: "新表需要先插卡激活。\n请用户持燃气卡在表上插一次，听到提示音后即可用气。".into(),
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

fn search(store: &mut dyn Store, text: &str) -> Vec<u64> {
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

pub fn an_entry_is_created_at_version_one_and_read_back(backend: &dyn Backend) {
    let mut store = backend.open();
    let created = store.kb_create(&gas(), "api", T0).expect("create");
    assert_eq!(created.version, 1);
    assert_eq!(created.fields, gas());
    assert_eq!(created.updated_by, "api");
    assert_eq!((created.created_ms, created.updated_ms), (T0, T0));
    assert_eq!(store.kb_get(created.id).expect("get"), created);
    let missing = created.id + 1000;
    assert!(matches!(store.kb_get(missing), Err(KbError::NotFound(id)) if id == missing));
    // Another node reads what was committed.
    assert_eq!(backend.open().kb_get(created.id).expect("get"), created);
}

pub fn search_finds_chinese_and_english_words_anywhere_newest_first(backend: &dyn Backend) {
    let mut store = backend.open();
    let store = store.as_mut();
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
    // Two characters and longer (on SQLite, `LIKE` and the trigram
    // index), in the title, question, answer or a tag.
    assert_eq!(search(store, "燃气"), vec![g]);
    assert_eq!(search(store, "读数不走"), vec![g]);
    assert_eq!(search(store, "插卡激活"), vec![g], "in the answer");
    assert_eq!(search(store, "抄表"), vec![g], "a tag");
    assert_eq!(search(store, "坏了吗"), vec![g], "in the question");
    assert_eq!(search(store, "宽带"), vec![both]);
    assert_eq!(search(store, "气"), vec![g], "one character");
    // English, whatever the case; newest first.
    assert_eq!(search(store, "BROADBAND"), vec![both, b]);
    assert_eq!(search(store, "fibre"), vec![b]);
    assert_eq!(search(store, "Do"), vec![both, b], "two letters");
    // Every word must be there.
    assert_eq!(search(store, "broadband eastern"), vec![b]);
    assert_eq!(search(store, "停电 broadband"), vec![both]);
    assert_eq!(search(store, "broadband 燃气"), Vec::<u64>::new());
    // Nothing asked: the newest entries.
    assert_eq!(search(store, ""), vec![both, b, g]);
    assert_eq!(search(store, "   "), vec![both, b, g]);
    // Characters with a meaning to LIKE or FTS5 are only text.
    assert!(search(store, "%").is_empty());
    assert!(search(store, "_").is_empty());
    assert!(search(store, "\\").is_empty());
    assert!(search(store, "\"OR\" broad*").is_empty());
    assert!(search(store, "a\"b").is_empty());
    assert!(search(store, "'; DROP TABLE kb; --").is_empty());
    assert_eq!(search(store, "18:00"), vec![b], "a colon too");
    // By business type, and at most `limit`.
    let found = store
        .kb_search(&KbQuery {
            text: String::new(),
            business_type: Some("repair".into()),
            limit: 10,
        })
        .expect("search");
    assert_eq!(found.iter().map(|e| e.id).collect::<Vec<_>>(), vec![g]);
    assert_eq!(found[0].fields, gas());
    let found = store
        .kb_search(&KbQuery {
            text: String::new(),
            business_type: None,
            limit: 1,
        })
        .expect("search");
    assert_eq!(found.iter().map(|e| e.id).collect::<Vec<_>>(), vec![both]);
}

pub fn an_edit_from_the_current_version_is_saved_a_stale_one_gets_the_current(
    backend: &dyn Backend,
) {
    let mut store = backend.open();
    let store = store.as_mut();
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
    assert_eq!(third.fields, merged);
    // The search follows the text.
    assert_eq!(search(store, "仍不走则报修"), vec![id]);
    assert!(search(store, "听到提示音").is_empty());
    assert_eq!(search(store, "激活"), vec![id]);

    // A clock that went back does not move the entry back in time.
    let fourth = store
        .kb_update(id, 3, &gas(), "1003", T0 + 500)
        .expect("saved");
    assert_eq!(fourth.updated_ms, T0 + 3000);

    assert!(matches!(
        store.kb_update(id + 77, 1, &merged, "1002", T0),
        Err(KbError::NotFound(n)) if n == id + 77
    ));
}

pub fn a_stale_edit_from_another_node_gets_the_current(backend: &dyn Backend) {
    let mut a = backend.open();
    let mut b = backend.open();
    let id = a.kb_create(&gas(), "api", T0).expect("create").id;
    // Both nodes' agents open version 1; node B's saves first.
    let opened = b.kb_get(id).expect("get");
    assert_eq!(opened.version, 1);
    let from_b = KbFields {
        title: "燃气表读数不走（已更新）".into(),
        ..gas()
    };
    let saved = b
        .kb_update(id, 1, &from_b, "2001", T0 + 1000)
        .expect("node B saves");
    let from_a = KbFields {
        answer: "请先插卡。".into(),
        ..gas()
    };
    match a.kb_update(id, 1, &from_a, "1001", T0 + 2000) {
        Err(KbError::Conflict { expected, current }) => {
            assert_eq!(expected, 1);
            assert_eq!(*current, saved, "node A is shown node B's text");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(a.kb_history(id).expect("history").len(), 2);
}

pub fn the_history_keeps_every_version_and_all_of_it_survives_a_restart(backend: &dyn Backend) {
    let mut store = backend.open();
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

    let mut store = backend.open();
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
    let missing = other.id + 5;
    assert!(matches!(store.kb_history(missing), Err(KbError::NotFound(n)) if n == missing));
    assert_eq!(search(store.as_mut(), "燃气"), vec![v1.id]);
    assert_eq!(search(store.as_mut(), "eastern"), Vec::<u64>::new());
    // A new entry after the restart gets a new id.
    let next = store.kb_create(&gas(), "api", T0 + 3000).expect("create");
    assert!(next.id > other.id);
}

//! Reloads the caller directory when its file changes, without a restart.
//!
//! The file's modification time and size are polled (no inotify: it works
//! the same on every filesystem, NFS included). A change is acted on once
//! the file has stopped changing for one interval, so an editor or `scp`
//! still writing it is not read half-way. A file that does not parse is
//! reported and the directory in use is kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::MissedTickBehavior;
use tracing::{info, warn};

use crate::directory::Directory;

/// What is compared between polls; `None` when the file cannot be read.
type Stamp = Option<(Option<SystemTime>, u64)>;

async fn stamp(path: &Path) -> Stamp {
    let m = tokio::fs::metadata(path).await.ok()?;
    Some((m.modified().ok(), m.len()))
}

/// Polls the file's modification time and size every `interval`; when they change and the
/// new file parses, calls `on_reload(Arc<Directory>)`; when it does not parse, logs a
/// tracing::warn! naming the error and keeps the old directory.
///
/// The file as it is when `watch` starts is taken as already loaded. Runs
/// until its task is dropped or aborted.
pub async fn watch(
    path: PathBuf,
    interval: Duration,
    mut on_reload: impl FnMut(Arc<Directory>) + Send + 'static,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks.tick().await;
    // `seen` is the stamp at the previous poll; `done` the stamp last acted on.
    let mut seen = stamp(&path).await;
    let mut done = seen;
    loop {
        ticks.tick().await;
        let now = stamp(&path).await;
        if now != seen {
            // Still changing, or just changed: look again next tick.
            seen = now;
            continue;
        }
        if now == done {
            continue;
        }
        done = now;
        if now.is_none() {
            warn!(file = %path.display(), "caller directory cannot be read; keeping the one in use");
            continue;
        }
        let p = path.clone();
        match tokio::task::spawn_blocking(move || crate::shell::load::directory(&p)).await {
            Ok(Ok(directory)) => {
                info!(file = %path.display(), entries = directory.len(), "caller directory reloaded");
                on_reload(Arc::new(directory));
            }
            Ok(Err(e)) => {
                warn!(error = %e, "caller directory not reloaded; keeping the one in use");
            }
            Err(e) => {
                warn!(file = %path.display(), error = %e, "caller directory reload failed; keeping the one in use");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::CustomerClass;
    use tokio::sync::mpsc;

    const WITHIN: Duration = Duration::from_secs(1);

    fn start(
        path: &Path,
    ) -> (
        mpsc::UnboundedReceiver<Arc<Directory>>,
        tokio::task::JoinHandle<()>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(watch(
            path.to_path_buf(),
            Duration::from_millis(50),
            move |d| {
                let _ = tx.send(d);
            },
        ));
        (rx, task)
    }

    async fn settle() {
        // Let the watcher take its first look before the file is touched.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<Arc<Directory>>) -> Arc<Directory> {
        tokio::time::timeout(WITHIN, rx.recv())
            .await
            .expect("a reload within a second")
            .expect("watcher still running")
    }

    async fn nothing(rx: &mut mpsc::UnboundedReceiver<Arc<Directory>>) {
        let got = tokio::time::timeout(Duration::from_millis(400), rx.recv()).await;
        assert!(got.is_err(), "unexpected reload");
    }

    #[tokio::test]
    async fn reloads_changed_file_and_keeps_old_on_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("callers.csv");
        std::fs::write(&path, "123,public\n").expect("write");
        let mut in_use = Arc::new(crate::shell::load::directory(&path).expect("loads"));
        assert_eq!(in_use.lookup("123").class, CustomerClass::Public);
        let (mut rx, task) = start(&path);
        settle().await;
        nothing(&mut rx).await;

        std::fs::write(&path, "123,group,yes,Boss\n456*,business\n").expect("rewrite");
        in_use = next(&mut rx).await;
        assert_eq!(in_use.len(), 2);
        assert_eq!(in_use.lookup("123").class, CustomerClass::Group);

        std::fs::write(&path, "123,gold,yes,Boss\n").expect("broken");
        nothing(&mut rx).await;
        assert_eq!(
            in_use.lookup("123").class,
            CustomerClass::Group,
            "old one kept"
        );

        // Fixed again: the watcher is still there and picks it up.
        std::fs::write(&path, "123,business,no\n").expect("fixed");
        in_use = next(&mut rx).await;
        assert_eq!(in_use.lookup("123").class, CustomerClass::Business);
        task.abort();
    }

    #[tokio::test]
    async fn missing_file_keeps_old_until_it_returns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("callers.csv");
        std::fs::write(&path, "123,public\n").expect("write");
        let (mut rx, task) = start(&path);
        settle().await;

        std::fs::remove_file(&path).expect("remove");
        nothing(&mut rx).await;

        // Written elsewhere and renamed into place, as deploy tools do.
        let tmp = dir.path().join("callers.csv.new");
        std::fs::write(&tmp, "123,group\n").expect("write");
        std::fs::rename(&tmp, &path).expect("rename");
        let d = next(&mut rx).await;
        assert_eq!(d.lookup("123").class, CustomerClass::Group);
        task.abort();
    }
}

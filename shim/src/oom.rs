//! OOM notifications of a container, turned into TaskOOM events. The
//! watcher is berth's own (the one `berth events` uses, on the cgroup berth
//! recorded for the container); its fd lives in the reaper's epoll set, so
//! watching costs no thread.

use std::os::fd::AsFd;

use berth::api::Runtime;

use crate::error::{Error, Result};
use crate::reaper::Reaper;

/// Watch container `id`'s memory cgroup, calling `on_oom` when OOM kills
/// happen. Returns the reaper token, or None when the container has no
/// memory cgroup to watch.
pub fn watch(
    reaper: &Reaper,
    rt: &Runtime,
    id: &str,
    on_oom: impl Fn() + Send + 'static,
) -> Result<Option<u64>> {
    let Some(mut w) = rt.oom_watcher(id).map_err(Error::berth("oom watch", id))? else {
        return Ok(None);
    };
    let fd = w
        .as_fd()
        .try_clone_to_owned()
        .map_err(Error::io("duplicate the OOM watch fd of", id))?;
    let token = reaper.watch_fd(fd, move |_| match w.take() {
        Ok(Some(n)) => {
            if n > 0 {
                on_oom();
            }
            true
        }
        // The cgroup is gone, or cannot be read any more.
        Ok(None) | Err(_) => false,
    })?;
    Ok(Some(token))
}

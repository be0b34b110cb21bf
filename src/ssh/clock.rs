//! Time a person spends at a prompt, which the connection bound (ConnectTimeout) does not count.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Time spent waiting for a person, which the connection bound does not count.
#[derive(Debug, Default)]
pub struct PromptClock {
    state: Mutex<(Option<Instant>, Duration)>,
}

impl PromptClock {
    /// Wait for a person's answer, pausing the connection bound meanwhile.
    pub async fn during<F: Future>(&self, ask: F) -> F::Output {
        if let Ok(mut s) = self.state.lock() {
            s.0 = Some(Instant::now());
        }
        let answer = ask.await;
        if let Ok(mut s) = self.state.lock()
            && let Some(since) = s.0.take()
        {
            s.1 += since.elapsed();
        }
        answer
    }

    /// Wait `wait` without counting it against the connection bound (for the next one-time code).
    pub async fn pause(&self, wait: Duration) {
        if let Ok(mut s) = self.state.lock() {
            s.0 = Some(Instant::now());
        }
        tokio::time::sleep(wait).await;
        if let Ok(mut s) = self.state.lock()
            && let Some(since) = s.0.take()
        {
            s.1 += since.elapsed();
        }
    }

    /// Total time paused so far, including a prompt in progress; `true` while one is.
    pub(super) fn paused(&self) -> (Duration, bool) {
        match self.state.lock() {
            Ok(s) => match s.0 {
                Some(since) => (s.1 + since.elapsed(), true),
                None => (s.1, false),
            },
            Err(_) => (Duration::ZERO, false),
        }
    }
}

/// Run `fut` within `limit` of wall time, not counting time spent at prompts.
pub async fn bounded<F: Future>(limit: Duration, clock: &PromptClock, fut: F) -> Option<F::Output> {
    let start = tokio::time::Instant::now();
    tokio::pin!(fut);
    loop {
        let (paused, active) = clock.paused();
        let deadline = start + limit + paused + if active { limit } else { Duration::ZERO };
        tokio::select! {
            out = &mut fut => return Some(out),
            _ = tokio::time::sleep_until(deadline) => {
                let (paused, active) = clock.paused();
                if !active && tokio::time::Instant::now() >= start + limit + paused {
                    return None;
                }
            }
        }
    }
}

//! The progress bar on stderr, while a run lasts.
//!
//! Workers only bump two atomic counters; a task of its own redraws the bar
//! a few times a second from them, so that drawing never slows a request.
//! Nothing is drawn when stderr is not a terminal, which keeps logs and
//! pipes clean. The final numbers are [`crate::stats`]'s business.

use std::{
    io::IsTerminal as _,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::{task::JoinHandle, time::Instant};

use crate::config::RunLength;

/// How often the bar is redrawn.
const REDRAW_INTERVAL: Duration = Duration::from_millis(200);

/// Running totals the workers keep for the bar.
#[derive(Debug, Default)]
pub struct Counters {
    answered: AtomicU64,
    failed: AtomicU64,
}

impl Counters {
    /// Counts an answered request.
    pub fn answered(&self) {
        self.answered.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request without an answer.
    pub fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }
}

/// The bar and the task that redraws it, when stderr is a terminal.
#[derive(Debug)]
pub struct Progress {
    drawing: Option<(ProgressBar, JoinHandle<()>)>,
}

impl Progress {
    /// Starts drawing, if stderr is a terminal.
    pub fn start(length: RunLength, counters: Arc<Counters>) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self { drawing: None };
        }

        let bar = bar_for(length);
        let task = tokio::spawn(redraw(bar.clone(), length, counters));
        Self {
            drawing: Some((bar, task)),
        }
    }

    /// Stops drawing and clears the bar, so that the summary stands alone.
    pub fn finish(self) {
        if let Some((bar, task)) = self.drawing {
            task.abort();
            bar.finish_and_clear();
        }
    }
}

fn bar_for(length: RunLength) -> ProgressBar {
    // The bar counts milliseconds in a timed run and requests otherwise.
    let (total, template) = match length {
        RunLength::Duration(duration) => (
            u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            "{bar:40} {elapsed}/{duration} {msg}",
        ),
        RunLength::Requests(requests) => (requests, "{bar:40} {pos}/{len} requests {msg}"),
    };
    let style =
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(style)
}

async fn redraw(bar: ProgressBar, length: RunLength, counters: Arc<Counters>) {
    let start = Instant::now();
    let mut ticks = tokio::time::interval(REDRAW_INTERVAL);
    loop {
        ticks.tick().await;
        let answered = counters.answered.load(Ordering::Relaxed);
        let failed = counters.failed.load(Ordering::Relaxed);
        let elapsed = start.elapsed();

        let position = match length {
            RunLength::Duration(_) => u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            RunLength::Requests(_) => answered + failed,
        };
        let rate = (answered + failed) as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
        bar.set_position(position);
        bar.set_message(format!("{rate:.0} requests/s, {failed} without answer"));
    }
}

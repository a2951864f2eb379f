//! Driving a run: the workers, when each request is sent, and when the run
//! stops.
//!
//! Every request takes a numbered ticket from one shared counter, which is
//! how `--requests N` sends exactly N whatever the number of workers. In
//! open loop, ticket `i` is also due at `start + i / rate`: a worker that is
//! free waits for its ticket's time, one that is late sends at once and
//! takes the latency from the time the ticket was due. A slow answer thus
//! delays the requests behind it and shows up in their latency, instead of
//! silently lowering the rate (the coordinated omission of closed-loop
//! tools). In closed loop a ticket is due as soon as it is taken.
//!
//! What to send is left to [`crate::scenario`], how to send it to
//! [`crate::client`], what to make of the answers to [`crate::stats`].

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{sync::watch, task::JoinSet, time::Instant};

use crate::{
    client::{Connection, TransportError},
    config::{Config, RunLength},
    progress::{Counters, Progress},
    scenario::{Emails, IdPool, Scenario, Shared},
    stats::Recorder,
};

/// How long a worker waits after failing to connect, so that a service
/// that went away is not flooded with connection attempts.
const CONNECT_BACKOFF: Duration = Duration::from_millis(100);

/// What a run measured, before it is summarised.
#[derive(Debug)]
pub struct Measured {
    /// Every worker's measurements, merged.
    pub recorder: Recorder,
    /// From the start to the last answer.
    pub elapsed: Duration,
    /// Whether Ctrl-C stopped the run.
    pub interrupted: bool,
}

/// The shared timetable: who sends next, and when.
#[derive(Debug)]
struct Schedule {
    start: Instant,
    next_ticket: AtomicU64,
    /// The last ticket plus one, with `--requests`.
    ticket_limit: Option<u64>,
    /// Time between two tickets, in open loop.
    interval: Option<Duration>,
    /// When no ticket may be due any more, in an open loop of fixed length.
    due_limit: Option<Duration>,
}

impl Schedule {
    fn new(config: &Config, start: Instant) -> Self {
        let interval = config.rate.map(|rate| Duration::from_secs(1) / rate.get());
        let (ticket_limit, duration) = match config.length() {
            RunLength::Requests(requests) => (Some(requests), None),
            RunLength::Duration(duration) => (None, Some(duration)),
        };
        Self {
            start,
            next_ticket: AtomicU64::new(0),
            ticket_limit,
            interval,
            due_limit: duration.filter(|_| interval.is_some()),
        }
    }

    /// The next ticket and when it is due (`None`: now), or `None` when
    /// the run has sent all it was asked to.
    fn take(&self) -> Option<Option<Instant>> {
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        if self.ticket_limit.is_some_and(|limit| ticket >= limit) {
            return None;
        }
        let Some(interval) = self.interval else {
            return Some(None);
        };

        let offset = due_offset(interval, ticket);
        if self.due_limit.is_some_and(|limit| offset >= limit) {
            return None;
        }
        Some(Some(self.start + offset))
    }
}

/// How long after the start ticket `ticket` is due, computed in
/// nanoseconds from the start so that rounding errors do not accumulate.
fn due_offset(interval: Duration, ticket: u64) -> Duration {
    let nanos = interval.as_nanos().saturating_mul(u128::from(ticket));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// What one worker needs.
struct Worker {
    schedule: Arc<Schedule>,
    scenario: Scenario,
    connection: Connection,
    stop: watch::Receiver<bool>,
    counters: Arc<Counters>,
    recorder: Recorder,
}

/// Runs the workers of `config` against `address` until the run is over.
pub async fn drive(config: &Config, address: SocketAddr) -> Measured {
    let start = Instant::now();
    let schedule = Arc::new(Schedule::new(config, start));
    let counters = Arc::new(Counters::default());
    let progress = Progress::start(config.length(), Arc::clone(&counters));

    let (stop, stopped) = watch::channel(false);
    let interrupted = Arc::new(AtomicBool::new(false));
    let stopper = tokio::spawn(stop_when_due(
        config.length(),
        stop,
        Arc::clone(&interrupted),
    ));

    let mut workers = JoinSet::new();
    for worker in workers_for(config, address, &schedule, &stopped, &counters) {
        workers.spawn(work(worker));
    }
    let mut recorder = Recorder::new();
    while let Some(joined) = workers.join_next().await {
        // A worker that panicked lost its measurements; the others stand.
        if let Ok(measured) = joined {
            recorder.merge(&measured);
        }
    }

    let elapsed = start.elapsed();
    stopper.abort();
    progress.finish();
    Measured {
        recorder,
        elapsed,
        interrupted: interrupted.load(Ordering::Relaxed),
    }
}

fn workers_for(
    config: &Config,
    address: SocketAddr,
    schedule: &Arc<Schedule>,
    stopped: &watch::Receiver<bool>,
    counters: &Arc<Counters>,
) -> Vec<Worker> {
    let shared = Shared {
        mix: config.mix,
        pool: Arc::new(IdPool::default()),
        emails: Arc::new(Emails::new()),
    };
    let seed = config.seed.unwrap_or_else(|| fastrand::u64(..));

    (0..config.connections.get())
        .map(|index| Worker {
            schedule: Arc::clone(schedule),
            scenario: Scenario::new(shared.clone(), seed.wrapping_add(u64::from(index))),
            connection: Connection::new(address, &config.target, config.timeout),
            stop: stopped.clone(),
            counters: Arc::clone(counters),
            recorder: Recorder::new(),
        })
        .collect()
}

/// Says stop when a timed run is over, or at Ctrl-C.
async fn stop_when_due(length: RunLength, stop: watch::Sender<bool>, interrupted: Arc<AtomicBool>) {
    let over = async {
        match length {
            RunLength::Duration(duration) => tokio::time::sleep(duration).await,
            RunLength::Requests(_) => std::future::pending().await,
        }
    };
    // Without a signal handler, only the clock can stop the run.
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };

    tokio::select! {
        () = over => {}
        () = interrupt => interrupted.store(true, Ordering::Relaxed),
    }
    stop.send_replace(true);
}

/// One worker's loop: take a ticket, wait until it is due, send, record.
async fn work(mut worker: Worker) -> Recorder {
    while !*worker.stop.borrow() {
        let Some(due) = worker.schedule.take() else {
            break;
        };
        let Some(sent_at) = wait_until_due(due, &mut worker.stop).await else {
            break;
        };

        let planned = worker.scenario.next_request();
        let answer = worker.connection.send(&planned).await;
        let latency = sent_at.elapsed();

        match answer {
            Ok(answer) => {
                let route = planned.route;
                worker
                    .recorder
                    .answer(&planned.method, route, answer.status, latency);
                worker
                    .scenario
                    .observe(planned.follow_up, answer.status, &answer.body);
                worker.counters.answered();
            }
            Err(error) => {
                worker.recorder.transport_error(error);
                worker.counters.failed();
                if error == TransportError::Connect {
                    tokio::time::sleep(CONNECT_BACKOFF).await;
                }
            }
        }
    }
    worker.recorder
}

/// Waits for a due time, if there is one; returns the time latency is
/// measured from, or `None` if the run was stopped meanwhile.
///
/// A worker that is late (all were busy) measures from the due time, so
/// the service's slowness is counted. A worker that is early measures from
/// when the timer woke it: the timer's lag (up to a millisecond) is the
/// generator's, not the service's.
async fn wait_until_due(due: Option<Instant>, stop: &mut watch::Receiver<bool>) -> Option<Instant> {
    let now = Instant::now();
    let Some(due) = due.filter(|due| *due > now) else {
        return Some(due.unwrap_or(now));
    };
    tokio::select! {
        () = tokio::time::sleep_until(due) => Some(Instant::now()),
        _ = stop.wait_for(|stopped| *stopped) => None,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn schedule(arguments: &[&str]) -> Schedule {
        let all = ["loadgen"].iter().chain(arguments);
        let config = Config::try_parse_from(all).expect("valid arguments");
        Schedule::new(&config, Instant::now())
    }

    #[test]
    fn a_request_count_hands_out_exactly_that_many_tickets() {
        let schedule = schedule(&["--requests", "3"]);

        let tickets = std::iter::from_fn(|| schedule.take()).count();

        assert_eq!(tickets, 3);
    }

    #[test]
    fn open_loop_tickets_are_due_at_fixed_intervals_within_the_duration() {
        let schedule = schedule(&["--rate", "4", "--duration", "1s"]);

        let due: Vec<Duration> = std::iter::from_fn(|| schedule.take())
            .map(|due| due.expect("a due time") - schedule.start)
            .collect();

        let expected = [0, 250, 500, 750].map(Duration::from_millis);
        assert_eq!(due, expected);
    }

    #[test]
    fn closed_loop_tickets_are_due_at_once() {
        let schedule = schedule(&["--requests", "1"]);

        assert_eq!(schedule.take(), Some(None));
    }
}

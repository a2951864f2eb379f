//! Figures about the process itself, with the names and meanings of
//! Prometheus' own process collector, read from `/proc` at each scrape.
//!
//! Only Linux has them; elsewhere nothing is rendered. A figure that cannot
//! be read (a hardened `/proc`, say) is left out rather than reported as 0.

use crate::exposition::Format;

/// Appends the process families to `out`.
#[cfg(target_os = "linux")]
pub(crate) fn render(out: &mut String, format: Format) {
    use std::{fmt::Write as _, sync::OnceLock};

    use procfs::process::{LimitValue, Process};

    use crate::exposition::{counter_family, family, float};

    let Ok(process) = Process::myself() else {
        return;
    };

    if let Ok(stat) = process.stat() {
        let ticks = procfs::ticks_per_second() as f64;

        counter_family(
            out,
            format,
            "process_cpu_seconds",
            "CPU time used in user and kernel mode, in seconds.",
        );
        let cpu = (stat.utime + stat.stime) as f64 / ticks;
        let _ = writeln!(out, "process_cpu_seconds_total {}", float(cpu));

        family(
            out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident set size, in bytes.",
        );
        let resident = stat.rss * procfs::page_size();
        let _ = writeln!(out, "process_resident_memory_bytes {resident}");

        family(
            out,
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size, in bytes.",
        );
        let _ = writeln!(out, "process_virtual_memory_bytes {}", stat.vsize);

        // The start time never changes; boot time plus the start offset
        // needs two reads of /proc, so it is worked out once.
        static START_TIME: OnceLock<Option<f64>> = OnceLock::new();
        let start = START_TIME.get_or_init(|| {
            let boot = procfs::boot_time_secs().ok()?;
            Some(boot as f64 + stat.starttime as f64 / ticks)
        });
        if let Some(start) = start {
            family(
                out,
                "process_start_time_seconds",
                "gauge",
                "When the process started, in seconds since the Unix epoch.",
            );
            let _ = writeln!(out, "process_start_time_seconds {}", float(*start));
        }

        family(
            out,
            "process_threads",
            "gauge",
            "Operating system threads in the process.",
        );
        let _ = writeln!(out, "process_threads {}", stat.num_threads);
    }

    if let Ok(open) = process.fd_count() {
        family(
            out,
            "process_open_fds",
            "gauge",
            "File descriptors the process has open.",
        );
        let _ = writeln!(out, "process_open_fds {open}");
    }

    if let Ok(limits) = process.limits() {
        let max = match limits.max_open_files.soft_limit {
            LimitValue::Value(max) => float(max as f64),
            LimitValue::Unlimited => float(f64::INFINITY),
        };
        family(
            out,
            "process_max_fds",
            "gauge",
            "Most file descriptors the process may open.",
        );
        let _ = writeln!(out, "process_max_fds {max}");
    }
}

/// Appends nothing: process figures are read from Linux's `/proc`.
#[cfg(not(target_os = "linux"))]
pub(crate) fn render(_out: &mut String, _format: Format) {}

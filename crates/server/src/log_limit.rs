//! A rate limit on the log, per line of code that logs: clients can make the server log (a
//! malformed offer makes the media library warn, a member who fails is reported), and a client
//! doing so in a loop must not fill the disk or drown what matters. Each call site may log a
//! burst, then a steady rate; what is held back is counted, reported once a minute in the log
//! itself, and in `/api/stats`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing::Metadata;
use tracing::callsite::Identifier;
use tracing::subscriber::Interest;
use tracing_subscriber::layer::{Context, Filter};

use crate::rate::TokenBucket;

/// Log lines held back since start.
static SUPPRESSED: AtomicU64 = AtomicU64::new(0);

/// How often the count of lines held back is logged, when there are any.
pub const REPORT_EVERY: Duration = Duration::from_secs(60);

/// Log lines held back by the limit since the process started.
pub fn suppressed() -> u64 {
    SUPPRESSED.load(Ordering::Relaxed)
}

/// A per-layer filter that lets each call site log `burst` lines, then `per_second`.
pub struct LogLimit {
    burst: f64,
    per_second: f64,
    /// One bucket per call site that has logged: bounded by the program's call sites.
    buckets: Mutex<HashMap<Identifier, TokenBucket>>,
}

impl LogLimit {
    pub fn new(burst: u32, per_second: f64) -> LogLimit {
        LogLimit {
            burst: burst.into(),
            per_second,
            buckets: Mutex::new(HashMap::new()),
        }
    }
}

impl<S> Filter<S> for LogLimit {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        if !meta.is_event() {
            return true;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let allowed = buckets
            .entry(meta.callsite())
            .or_insert_with(|| TokenBucket::new(self.burst, self.per_second))
            .take(Instant::now());
        if !allowed {
            SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        }
        allowed
    }

    // Decided event by event, never cached per call site.
    fn callsite_enabled(&self, _meta: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }
}

/// Logs, every [`REPORT_EVERY`], how many lines the limit held back since the last report.
pub async fn report() {
    let mut reported = suppressed();
    let mut every = tokio::time::interval(REPORT_EVERY);
    every.tick().await;
    loop {
        every.tick().await;
        let now = suppressed();
        if now > reported {
            tracing::warn!(
                held_back = now - reported,
                "log lines held back by the log rate limit in the last minute"
            );
        }
        reported = now;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Counts the events that reach it.
    struct Counting(Arc<AtomicUsize>);

    impl<S: tracing::Subscriber> Layer<S> for Counting {
        fn on_event(
            &self,
            _e: &tracing::Event<'_>,
            _cx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_line_logged_in_a_loop_is_written_only_its_burst_and_others_still_are() {
        let seen = Arc::new(AtomicUsize::new(0));
        // A rate so slow that the loop below cannot earn a second token.
        let layer = Counting(seen.clone()).with_filter(LogLimit::new(5, 0.0001));
        let subscriber = tracing_subscriber::registry().with(layer);
        let before = suppressed();
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..1000 {
                tracing::warn!(i, "a bad offer");
            }
            assert_eq!(seen.load(Ordering::Relaxed), 5);
            tracing::warn!("another line of code");
            assert_eq!(seen.load(Ordering::Relaxed), 6);
        });
        assert!(suppressed() - before >= 995);
    }
}

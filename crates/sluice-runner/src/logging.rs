//! Routes `tracing` events from every crate into Airbyte LOG messages on stdout.

use sluice_engine::PendingMessages;
use sluice_protocol::Level;
use std::fmt::Write as _;
use std::sync::Arc;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

/// Installs the global subscriber: events at INFO and above (DEBUG with `SLUICE_DEBUG=1`)
/// become LOG messages, queued for the stdout writer.
pub fn install(queue: Arc<PendingMessages>) {
    let max = if std::env::var_os("SLUICE_DEBUG").is_some() {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    let layer = QueueLayer { queue, max };
    // Only fails when a subscriber is already set, which leaves logging working.
    let _ = tracing::subscriber::set_global_default(Registry::default().with(layer));
}

struct QueueLayer {
    queue: Arc<PendingMessages>,
    max: tracing::Level,
}

impl<S: Subscriber> Layer<S> for QueueLayer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        *metadata.level() <= self.max
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => Level::Error,
            tracing::Level::WARN => Level::Warn,
            tracing::Level::INFO => Level::Info,
            tracing::Level::DEBUG => Level::Debug,
            tracing::Level::TRACE => Level::Trace,
        };
        let mut text = MessageText(String::new());
        event.record(&mut text);
        self.queue.push_log(level, text.0);
    }
}

/// The event's message, then its other fields as `name=value`.
struct MessageText(String);

impl Visit for MessageText {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}");
            if !rest.is_empty() {
                self.0.push(' ');
                self.0.push_str(&rest);
            }
        } else {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }
}

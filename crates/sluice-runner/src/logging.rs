//! Routes `tracing` events from every crate into Airbyte LOG messages on stdout.

use sluice_engine::PendingMessages;
use sluice_protocol::Level;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

/// What every log line is masked with: the source's secrets as of the line (see
/// [`mask_secrets`]). Unset until the source is built; nothing secret is known before.
static MASKER: OnceLock<Masker> = OnceLock::new();

/// Masks the secrets `list` gives (`Source::secret_list`) in every log line from now on, as the
/// reference filters every log record: a secret logged by mistake anywhere still shows as `****`.
pub fn mask_secrets(list: impl Fn() -> Vec<String> + Send + Sync + 'static) {
    // A second source in one process (none today) keeps the first's list.
    let _ = MASKER.set(Masker {
        list: Box::new(list),
        forms: Mutex::new((0, Vec::new())),
    });
}

struct Masker {
    list: Box<dyn Fn() -> Vec<String> + Send + Sync>,
    /// The written forms of the list when it had this many secrets: the list only grows (a
    /// signing authenticator adds a token a second), so its length tells whether it changed.
    forms: Mutex<(usize, Vec<String>)>,
}

impl Masker {
    fn mask(&self, text: &str) -> String {
        let secrets = (self.list)();
        let mut forms = self.forms.lock().unwrap_or_else(PoisonError::into_inner);
        if forms.0 != secrets.len() {
            let written =
                sluice_http::secrets::all_written_forms(secrets.iter().map(String::as_str));
            *forms = (secrets.len(), written);
        }
        sluice_http::secrets::hide_forms(text, &forms.1, "****")
    }
}

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
        let text = match MASKER.get() {
            Some(masker) => masker.mask(&text.0),
            None => text.0,
        };
        self.queue.push_log(level, text);
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

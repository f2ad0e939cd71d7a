//! Task events for containerd, published in the order they happen by one thread, so a slow
//! event stream never blocks a Task verb and `/tasks/exit` can never overtake `/tasks/start`.
//!
//! The crate's publisher connects to containerd once; when containerd restarts, that
//! connection is gone and every later event would be lost (a container's exit among them).
//! So a failed publish reconnects to containerd's ttrpc address and tries again, for up to
//! [`RETRY_FOR`], before the event is given up.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use containerd_shim::event::Event;
use containerd_shim::protos::protobuf::MessageDyn;
use containerd_shim::protos::ttrpc::context::Context;
use containerd_shim::publisher::RemotePublisher;
use log::{info, warn};

enum Queued {
    /// The topic, the event, and when it was queued (the debug log tells how long it took to
    /// reach containerd: for `/tasks/exit`, the last phase of a container's life).
    Event(String, Box<dyn MessageDyn + Send>, Instant),
    /// Answered once every event queued before it has been published (or given up).
    Flush(mpsc::Sender<()>),
}

/// How long an event is retried while containerd cannot be reached (a restart takes seconds).
const RETRY_FOR: Duration = Duration::from_secs(60);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// containerd's ttrpc address, as containerd passes it to shims (the crate reads it too).
const TTRPC_ADDRESS_ENV: &str = "TTRPC_ADDRESS";

/// Where the Task service sends its events, in order: containerd ([`Events`]), or a recording
/// sink in the unit tests.
pub trait EventSink: Clone + Send + Sync + 'static {
    /// Queues `event` behind every event sent before it.
    fn send<T: Event + MessageDyn + Send + 'static>(&self, event: T);
}

/// The sending end; cheap to clone.
#[derive(Clone)]
pub struct Events {
    tx: mpsc::Sender<Queued>,
}

impl EventSink for Events {
    fn send<T: Event + MessageDyn + Send + 'static>(&self, event: T) {
        let topic = event.topic();
        if self
            .tx
            .send(Queued::Event(
                topic.clone(),
                Box::new(event),
                Instant::now(),
            ))
            .is_err()
        {
            warn!("event {topic} dropped: the publishing thread is gone");
        }
    }
}

impl Events {
    /// Starts the publishing thread for `namespace`.
    pub fn start(publisher: RemotePublisher, namespace: String) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Queued>();
        let address = std::env::var(TTRPC_ADDRESS_ENV).ok();
        std::thread::Builder::new()
            .name("events".into())
            .spawn(move || {
                let mut publisher = publisher;
                for queued in rx {
                    match queued {
                        Queued::Event(topic, event, queued) => publish(
                            &mut publisher,
                            address.as_deref(),
                            &namespace,
                            &topic,
                            &*event,
                            queued,
                        ),
                        Queued::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })?;
        Ok(Self { tx })
    }

    /// Waits up to `timeout` for the events queued so far to be published: the shim must
    /// not exit with a container's last events still queued (they wait for containerd when
    /// it has just restarted).
    pub fn flush(&self, timeout: Duration) {
        let (done, flushed) = mpsc::channel();
        if self.tx.send(Queued::Flush(done)).is_ok() && flushed.recv_timeout(timeout).is_err() {
            warn!("events still unpublished after {timeout:?}: exiting without them");
        }
    }
}

/// Publishes `event`, reconnecting to `address` and retrying while containerd is away.
fn publish(
    publisher: &mut RemotePublisher,
    address: Option<&str>,
    namespace: &str,
    topic: &str,
    event: &(dyn MessageDyn + Send),
    queued: Instant,
) {
    // `clone_box` is defined on `dyn MessageDyn` alone.
    let event: &dyn MessageDyn = event;
    let began = Instant::now();
    let mut backoff = Duration::from_millis(50);
    let mut failures = 0;
    loop {
        let attempt = publisher.publish(Context::default(), topic, namespace, event.clone_box());
        let error = match attempt {
            Ok(()) => {
                if failures > 0 {
                    info!("published {topic} to containerd after {failures} failed attempts");
                }
                log::debug!(
                    "published {topic} to containerd {:?} after it was queued",
                    queued.elapsed()
                );
                return;
            }
            Err(e) => e,
        };
        failures += 1;
        let Some(address) = address.filter(|_| began.elapsed() < RETRY_FOR) else {
            warn!("publish {topic} to containerd: {error}; the event is lost");
            return;
        };
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
        match RemotePublisher::new(address) {
            Ok(reconnected) => *publisher = reconnected,
            Err(e) => log::debug!("reconnect to containerd at {address}: {e}"),
        }
    }
}

//! Task events for containerd, published in the order they happen by one thread, so a slow
//! event stream never blocks a Task verb and `/tasks/exit` can never overtake `/tasks/start`.

use std::sync::mpsc;

use containerd_shim::event::Event;
use containerd_shim::protos::protobuf::MessageDyn;
use containerd_shim::protos::ttrpc::context::Context;
use containerd_shim::publisher::RemotePublisher;
use log::warn;

type Queued = (String, Box<dyn MessageDyn + Send>);

/// The sending end; cheap to clone.
#[derive(Clone)]
pub struct Events {
    tx: mpsc::Sender<Queued>,
}

impl Events {
    /// Starts the publishing thread for `namespace`.
    pub fn start(publisher: RemotePublisher, namespace: String) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Queued>();
        std::thread::Builder::new()
            .name("events".into())
            .spawn(move || {
                for (topic, event) in rx {
                    if let Err(e) = publisher.publish(Context::default(), &topic, &namespace, event)
                    {
                        warn!("publish {topic} to containerd: {e}");
                    }
                }
            })?;
        Ok(Self { tx })
    }

    /// Queues `event` behind every event sent before it.
    pub fn send<T: Event + MessageDyn + Send + 'static>(&self, event: T) {
        let topic = event.topic();
        if self.tx.send((topic.clone(), Box::new(event))).is_err() {
            warn!("event {topic} dropped: the publishing thread is gone");
        }
    }
}

//! NATS JetStream for `segql watch`: events from a subject through a durable pull
//! consumer with explicit acknowledgements, and changes published to a subject with
//! message ids the server de-duplicates.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::AckPolicy, consumer::DeliverPolicy, consumer::pull};
use futures::StreamExt;
use segql::live::Change;
use segql::live::durable::Position;
use segql::live::json::change_line;
use tokio::sync::mpsc::Sender;

use super::input::{Incoming, Origin};

/// `nats://HOST[:PORT]/SUBJECT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// `HOST:PORT`.
    pub server: String,
    pub subject: String,
}

impl Address {
    /// `None` for text that is not a `nats://` address; an error for one that is malformed.
    pub fn parse(text: &str) -> Option<Result<Address, String>> {
        let rest = text.strip_prefix("nats://")?;
        let malformed = |why: &str| {
            Err(format!(
                "`{text}` is not a NATS address: {why}; write nats://HOST:PORT/SUBJECT, \
                 e.g. nats://127.0.0.1:4222/shop.events"
            ))
        };
        let Some((server, subject)) = rest.split_once('/') else {
            return Some(malformed("there is no subject after the server"));
        };
        if server.is_empty() {
            return Some(malformed("the server is missing"));
        }
        let valid_subject = !subject.is_empty()
            && !subject.contains(char::is_whitespace)
            && subject.split('.').all(|token| !token.is_empty());
        if !valid_subject {
            return Some(malformed(
                "the subject must be dot-separated tokens without spaces",
            ));
        }
        let server = if server.contains(':') {
            server.to_string()
        } else {
            format!("{server}:4222")
        };
        Some(Ok(Address {
            server,
            subject: subject.to_string(),
        }))
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "nats://{}/{}", self.server, self.subject)
    }
}

async fn connect(address: &Address) -> Result<jetstream::Context, String> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(address.server.as_str())
        .await
        .map_err(|e| {
            format!(
                "cannot connect to the NATS server at {}: {e}; is it running (`nats-server -js`)?",
                address.server
            )
        })?;
    Ok(jetstream::new(client))
}

/// The name of the JetStream stream that stores `address`'s subject.
async fn stream_of(context: &jetstream::Context, address: &Address) -> Result<String, String> {
    context
        .stream_by_subject(address.subject.as_str())
        .await
        .map_err(|e| {
            format!(
                "no JetStream stream on {} stores the subject `{}` ({e}); create one, e.g. \
                 `nats stream add EVENTS --subjects '{}'`",
                address.server, address.subject, address.subject
            )
        })
}

/// A message to acknowledge once its event is durably accepted or rejected.
pub struct Delivery(jetstream::Message);

impl Delivery {
    pub async fn ack(self) -> Result<(), String> {
        self.0
            .ack()
            .await
            .map_err(|e| format!("cannot acknowledge a NATS message: {e}"))
    }
}

/// A durable pull consumer of the events subject.
pub struct Subscription {
    messages: pull::Stream,
    /// Messages at or before this stream sequence were accepted already.
    seen: u64,
    consumed: u64,
}

impl Subscription {
    /// Opens the durable consumer `name` on `address`. With `resume`, the consumer is
    /// re-created to start right after that position's stream sequence, so delivery
    /// follows the durable state whatever the server remembers; otherwise the consumer
    /// continues where its acknowledgements left it.
    pub async fn open(
        address: &Address,
        name: &str,
        resume: Option<Position>,
    ) -> Result<Subscription, String> {
        let context = connect(address).await?;
        let stream_name = stream_of(&context, address).await?;
        let stream = context
            .get_stream(&stream_name)
            .await
            .map_err(|e| format!("cannot open the JetStream stream `{stream_name}`: {e}"))?;
        let deliver_policy = match resume {
            Some(at) if at.offset > 0 => DeliverPolicy::ByStartSequence {
                start_sequence: at.offset + 1,
            },
            _ => DeliverPolicy::All,
        };
        let config = pull::Config {
            durable_name: Some(name.to_string()),
            filter_subject: address.subject.clone(),
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(60),
            deliver_policy,
            ..Default::default()
        };
        let failed = |e: &dyn std::fmt::Display| {
            format!("cannot open the consumer `{name}` on the stream `{stream_name}`: {e}")
        };
        let consumer: jetstream::consumer::PullConsumer = if resume.is_some() {
            // The consumer may not exist (a first run) or start elsewhere: replace it.
            let _ = stream.delete_consumer(name).await;
            stream
                .create_consumer(config)
                .await
                .map_err(|e| failed(&e))?
        } else {
            stream
                .get_or_create_consumer(name, config)
                .await
                .map_err(|e| failed(&e))?
        };
        let messages = consumer.messages().await.map_err(|e| failed(&e))?;
        let at = resume.unwrap_or_default();
        Ok(Subscription {
            messages,
            seen: at.offset,
            consumed: at.line,
        })
    }

    /// Sends every message to `lines` until the consumer fails or the receiver is gone.
    pub async fn run(mut self, lines: Sender<Incoming>) -> Result<(), String> {
        while let Some(message) = self.messages.next().await {
            let message =
                message.map_err(|e| format!("receiving events from NATS stopped: {e}"))?;
            let sequence = message
                .info()
                .map_err(|e| format!("a NATS message has no stream position: {e}"))?
                .stream_sequence;
            if sequence <= self.seen {
                // Redelivered after it was accepted: only the acknowledgement was lost.
                Delivery(message).ack().await?;
                continue;
            }
            self.seen = sequence;
            self.consumed += 1;
            let text = String::from_utf8(message.payload.to_vec()).map_err(|e| e.into_bytes());
            let incoming = Incoming {
                text,
                at: Position {
                    line: self.consumed,
                    offset: sequence,
                },
                origin: Origin::Message { sequence },
                ack: Some(Delivery(message)),
            };
            if lines.send(incoming).await.is_err() {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// Publishes changes to a subject a JetStream stream stores.
pub struct Publisher {
    context: jetstream::Context,
    subject: String,
}

impl Publisher {
    pub async fn open(address: &Address) -> Result<Publisher, String> {
        let context = connect(address).await?;
        stream_of(&context, address).await?;
        Ok(Publisher {
            context,
            subject: address.subject.clone(),
        })
    }

    /// Publishes `changes` and waits until the server has stored them. A change with an
    /// id carries it as `Nats-Msg-Id` (prefixed with `origin`), so the server drops a
    /// repeat within the stream's duplicate window.
    pub async fn publish(
        &self,
        changes: &[(Option<u64>, Change)],
        origin: &str,
    ) -> Result<(), String> {
        let failed = |e: &dyn std::fmt::Display| {
            format!("cannot publish changes to `{}`: {e}", self.subject)
        };
        let mut pending = Vec::with_capacity(changes.len());
        for (id, change) in changes {
            let mut headers = async_nats::HeaderMap::new();
            if let Some(id) = id {
                headers.insert(
                    async_nats::header::NATS_MESSAGE_ID,
                    format!("{origin}-{id}").as_str(),
                );
            }
            let payload = change_line(change, *id);
            let ack = self
                .context
                .publish_with_headers(self.subject.clone(), headers, payload.into())
                .await
                .map_err(|e| failed(&e))?;
            pending.push(ack);
        }
        for ack in pending {
            ack.await.map_err(|e| failed(&e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_a_server_and_a_subject() {
        let parsed = Address::parse("nats://127.0.0.1:4222/shop.events");
        assert_eq!(
            parsed,
            Some(Ok(Address {
                server: "127.0.0.1:4222".into(),
                subject: "shop.events".into()
            }))
        );
        let default_port = Address::parse("nats://broker/changes").and_then(Result::ok);
        assert_eq!(default_port.map(|a| a.server), Some("broker:4222".into()));
        assert_eq!(Address::parse("events.ndjson"), None);
        for bad in [
            "nats://host",
            "nats:///subject",
            "nats://h/a..b",
            "nats://h/a b",
        ] {
            let error = Address::parse(bad).and_then(Result::err);
            assert!(
                error.is_some_and(|e| e.contains("nats://HOST:PORT/SUBJECT")),
                "{bad}"
            );
        }
    }
}

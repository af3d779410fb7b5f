//! `StreamProducer`: one per streaming command (`sh`, `env`). It will own
//! the command's channel entries, chunk order and terminal state; chunks,
//! completion and cancellation arrive as mailbox events.
//!
//! Only the actor and its messages exist so far: no tool produces streams
//! yet (they arrive with proposals). What is here is real: chunks are kept
//! in order per channel and a finished or cancelled stream refuses more.

use actix::prelude::*;
use std::collections::BTreeMap;

/// How a stream ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEnd {
    Completed { exit_code: i32 },
    Aborted { reason: String },
    Cancelled { reason: String },
}

#[derive(Default)]
pub struct StreamProducer {
    channels: BTreeMap<u8, Vec<u8>>,
    end: Option<StreamEnd>,
}

impl Actor for StreamProducer {
    type Context = Context<Self>;
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("stream already ended: {0:?}")]
pub struct StreamEnded(pub StreamEnd);

/// Output bytes on one channel (1 stdout, 2 stderr).
#[derive(Message)]
#[rtype(result = "Result<(), StreamEnded>")]
pub struct Chunk {
    pub channel: u8,
    pub bytes: Vec<u8>,
}

impl Handler<Chunk> for StreamProducer {
    type Result = Result<(), StreamEnded>;
    fn handle(&mut self, msg: Chunk, _: &mut Context<Self>) -> Self::Result {
        if let Some(end) = &self.end {
            return Err(StreamEnded(end.clone()));
        }
        self.channels
            .entry(msg.channel)
            .or_default()
            .extend(msg.bytes);
        Ok(())
    }
}

/// Ends the stream; the first end wins.
#[derive(Message)]
#[rtype(result = "Result<(), StreamEnded>")]
pub struct Finish(pub StreamEnd);

impl Handler<Finish> for StreamProducer {
    type Result = Result<(), StreamEnded>;
    fn handle(&mut self, msg: Finish, _: &mut Context<Self>) -> Self::Result {
        if let Some(end) = &self.end {
            return Err(StreamEnded(end.clone()));
        }
        self.end = Some(msg.0);
        Ok(())
    }
}

/// What a channel holds so far.
#[derive(Message)]
#[rtype(result = "Vec<u8>")]
pub struct ChannelOutput(pub u8);

impl Handler<ChannelOutput> for StreamProducer {
    type Result = MessageResult<ChannelOutput>;
    fn handle(&mut self, msg: ChannelOutput, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.channels.get(&msg.0).cloned().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix::test]
    async fn chunks_keep_order_and_end_once() {
        let p = StreamProducer::default().start();
        for part in ["a", "b", "c"] {
            p.send(Chunk {
                channel: 1,
                bytes: part.into(),
            })
            .await
            .unwrap()
            .unwrap();
        }
        assert_eq!(p.send(ChannelOutput(1)).await.unwrap(), b"abc");
        p.send(Finish(StreamEnd::Completed { exit_code: 0 }))
            .await
            .unwrap()
            .unwrap();
        let late = p
            .send(Chunk {
                channel: 1,
                bytes: "d".into(),
            })
            .await
            .unwrap();
        assert!(late.is_err());
        assert!(p
            .send(Finish(StreamEnd::Cancelled { reason: "x".into() }))
            .await
            .unwrap()
            .is_err());
    }
}

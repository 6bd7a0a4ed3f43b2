//! Slow request bodies: after a grace period a body must keep arriving at a minimum average
//! rate, or the request fails and the connection is closed. Never buffers; only counts.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::HttpMessage;
use futures_util::Stream;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Slowest average body rate accepted once the grace period is over: 16 KiB/s, far below
/// any link a router or an operator uses, far above a client that trickles bytes to hold
/// a connection open.
pub const MIN_BYTES_PER_SECOND: u64 = 16 * 1024;

/// A request body that fails once it falls behind `grace + received / MIN_BYTES_PER_SECOND`.
pub struct PacedBody {
    inner: Payload,
    started: Instant,
    grace: Duration,
    received: u64,
    timer: Pin<Box<Sleep>>,
    done: bool,
}

impl PacedBody {
    pub fn new(inner: Payload, grace: Duration) -> PacedBody {
        let started = Instant::now();
        PacedBody {
            inner,
            started,
            grace,
            received: 0,
            timer: Box::pin(tokio::time::sleep_until(started + grace)),
            done: false,
        }
    }

    /// The instant by which the bytes received so far had to have arrived, plus the grace.
    fn deadline(&self) -> Instant {
        let earned = Duration::from_millis(
            self.received
                .saturating_mul(1000)
                .checked_div(MIN_BYTES_PER_SECOND)
                .unwrap_or(0),
        );
        self.started + self.grace + earned
    }

    fn too_slow(&mut self) -> Poll<Option<Result<Bytes, PayloadError>>> {
        self.done = true;
        let text = format!(
            "request body too slow: {} bytes in {} s, below {} bytes/s after {} s",
            self.received,
            self.started.elapsed().as_secs(),
            MIN_BYTES_PER_SECOND,
            self.grace.as_secs()
        );
        tracing::debug!("{text}");
        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            text,
        )))))
    }
}

impl Stream for PacedBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        // Checked before reading too: a client sending a byte just often enough to keep
        // the stream busy must not escape the rate.
        if Instant::now() >= this.deadline() {
            return this.too_slow();
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.received = this.received.saturating_add(chunk.len() as u64);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Pending => {
                let deadline = this.deadline();
                this.timer.as_mut().reset(deadline);
                if this.timer.as_mut().poll(cx).is_ready() {
                    return this.too_slow();
                }
                Poll::Pending
            }
        }
    }
}

/// Wraps every request body in a [`PacedBody`] with the server's request timeout as grace.
pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let grace = req
        .app_data::<actix_web::web::Data<crate::server::AppState>>()
        .map(|s| s.config.request_timeout_seconds)
        .unwrap_or(10);
    let body = req.take_payload();
    let paced = PacedBody::new(body, Duration::from_secs(grace));
    req.set_payload(Payload::Stream {
        payload: Box::pin(paced),
    });
    next.call(req).await.map(|r| r.map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn payload(chunks: Vec<&'static [u8]>, then_stall: bool) -> Payload {
        let items = futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, PayloadError>(Bytes::from_static(c))),
        );
        if then_stall {
            Payload::Stream {
                payload: Box::pin(items.chain(futures_util::stream::pending())),
            }
        } else {
            Payload::Stream {
                payload: Box::pin(items),
            }
        }
    }

    #[tokio::test]
    async fn a_stalled_body_fails_and_a_prompt_one_passes() {
        let grace = Duration::from_millis(200);
        let mut body = PacedBody::new(payload(vec![b"a"], true), grace);
        assert_eq!(
            body.next().await.unwrap().unwrap(),
            Bytes::from_static(b"a")
        );
        // Nothing more arrives: the grace plus what one byte earned runs out.
        let e = body.next().await.unwrap().unwrap_err();
        assert!(e.to_string().contains("too slow"), "{e}");
        assert!(body.next().await.is_none());

        let mut body = PacedBody::new(payload(vec![b"abc", b"def"], false), grace);
        assert_eq!(body.next().await.unwrap().unwrap().len(), 3);
        assert_eq!(body.next().await.unwrap().unwrap().len(), 3);
        assert!(body.next().await.is_none());
    }
}

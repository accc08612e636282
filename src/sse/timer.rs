//! [`Quiet`]: the one timer behind keep-alive comments and the upstream idle timeout.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

/// Fires once a deadline has passed. The deadline moves later every time a stream sends
/// something; the underlying tokio timer is only re-armed when it fires before the current
/// deadline (or when the deadline moves earlier), so a busy stream does not touch the timer
/// wheel once per chunk.
///
/// The sleep is created on first use, inside the runtime that polls the body, so a body can be
/// built anywhere.
#[derive(Default)]
pub(crate) struct Quiet {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Quiet {
    /// Ready once `deadline` has passed; otherwise registers the waker and is pending.
    pub(crate) fn poll_until(&mut self, deadline: Instant, cx: &mut Context<'_>) -> Poll<()> {
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        loop {
            if sleep.deadline() > deadline {
                sleep.as_mut().reset(deadline);
            }
            match sleep.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) if sleep.deadline() >= deadline => return Poll::Ready(()),
                // It fired for an older, earlier deadline: wait for the current one.
                Poll::Ready(()) => sleep.as_mut().reset(deadline),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn fires_at_the_latest_deadline_only() {
        let mut quiet = Quiet::default();
        let start = Instant::now();
        let first = start + Duration::from_millis(100);
        let later = start + Duration::from_millis(250);
        std::future::poll_fn(|cx| {
            assert!(quiet.poll_until(first, cx).is_pending());
            Poll::Ready(())
        })
        .await;
        // The deadline moved: the early firing is ignored.
        std::future::poll_fn(|cx| quiet.poll_until(later, cx)).await;
        assert!(Instant::now() >= later);
        // A deadline that moves earlier re-arms the timer.
        let earlier = Instant::now() + Duration::from_millis(10);
        std::future::poll_fn(|cx| {
            assert!(quiet
                .poll_until(earlier + Duration::from_secs(60), cx)
                .is_pending());
            Poll::Ready(())
        })
        .await;
        std::future::poll_fn(|cx| quiet.poll_until(earlier, cx)).await;
        assert!(Instant::now() < earlier + Duration::from_secs(1));
    }
}

//! Serving a router in the background until told to stop: the one lifecycle the simulated
//! provider and the stand-ins (the help desk, the identity providers) share.

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A router served in a background task; serving stops when this is dropped (or on
/// [`Serving::stop`]): the listener closes, open connections close once their request is
/// answered, and the task ends.
pub(crate) struct Serving {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Serving {
    /// Serves `router` on `listener`. Handlers can read the peer's address
    /// (`ConnectInfo<SocketAddr>`); a serving error is logged as "`what` stopped".
    pub(crate) fn start(listener: TcpListener, router: Router, what: &'static str) -> Serving {
        Serving::until(listener, router, watch::channel(false).0, what)
    }

    /// [`Serving::start`] with a given stop channel, for handlers that watch it too.
    pub(crate) fn until(
        listener: TcpListener,
        router: Router,
        stop: watch::Sender<bool>,
        what: &'static str,
    ) -> Serving {
        let mut stopped = stop.subscribe();
        let task = tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            let served = axum::serve(listener, service)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|stopped| *stopped).await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "{what} stopped");
            }
        });
        Serving {
            stop,
            task: Some(task),
        }
    }

    /// Stops serving and waits for the task to end.
    pub(crate) async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

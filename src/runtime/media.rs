//! One tokio task per call's RTP socket, driving a pure
//! [`MediaSession`]. Buffers are allocated once per call, not per packet.

use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant as TokioInstant};

use crate::engine::CallKey;
use crate::media::prompt::{PromptId, PromptSet};
use crate::media::session::{MediaParams, MediaSession};

use super::Event;

pub enum MediaCommand {
    Play(PromptId),
    Update { remote: SocketAddr, sending: bool },
}

/// Dropping the handle ends the media task and closes its socket.
pub struct MediaHandle {
    pub commands: mpsc::UnboundedSender<MediaCommand>,
}

pub fn spawn(
    call: CallKey,
    bind: IpAddr,
    port: u16,
    params: MediaParams,
    prompts: Arc<PromptSet>,
    events: mpsc::UnboundedSender<Event>,
) -> std::io::Result<MediaHandle> {
    let std_socket = StdUdpSocket::bind(SocketAddr::new(bind, port))?;
    std_socket.set_nonblocking(true)?;
    let socket = UdpSocket::from_std(std_socket)?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(call, socket, params, prompts, events, rx));
    Ok(MediaHandle { commands: tx })
}

async fn run(
    call: CallKey,
    socket: UdpSocket,
    params: MediaParams,
    prompts: Arc<PromptSet>,
    events: mpsc::UnboundedSender<Event>,
    mut commands: mpsc::UnboundedReceiver<MediaCommand>,
) {
    let mut session = MediaSession::new(std::time::Instant::now(), prompts, params);
    let mut send_buf = [0u8; 512];
    let mut recv_buf = [0u8; 2048];
    let sleep = sleep_until(TokioInstant::now());
    tokio::pin!(sleep);
    loop {
        let now = std::time::Instant::now();
        while let Some(t) = session.poll_transmit(now, &mut send_buf) {
            // A full socket buffer drops the frame, as the network would.
            let _ = socket.try_send_to(&send_buf[..t.len], t.destination);
        }
        session.handle_timeout(now);
        while let Some(event) = session.poll_event() {
            if events.send(Event::Media { call, event }).is_err() {
                return;
            }
        }
        sleep
            .as_mut()
            .reset(TokioInstant::from_std(session.poll_timeout()));
        tokio::select! {
            command = commands.recv() => match command {
                Some(MediaCommand::Play(p)) => session.play(p),
                Some(MediaCommand::Update { remote, sending }) => session.update_remote(remote, sending),
                None => return,
            },
            received = socket.recv_from(&mut recv_buf) => {
                if let Ok((n, from)) = received {
                    session.handle_rtp(std::time::Instant::now(), from, &recv_buf[..n]);
                }
            }
            _ = &mut sleep => {}
        }
    }
}

//! SIP over UDP: one datagram is one message.

use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::debug;

use crate::engine::{Peer, Transport};

use super::Event;

/// Receives datagrams into a buffer one byte larger than
/// `max_message_size`, so that a datagram the kernel had to cut (it does
/// so silently) still arrives larger than the limit and the engine answers
/// it 513 or drops it, rather than parsing a truncated message.
pub async fn receive_loop(
    socket: Arc<UdpSocket>,
    events: mpsc::UnboundedSender<Event>,
    max_message_size: usize,
) {
    let mut buf = vec![0u8; max_message_size.saturating_add(1).min(65_536)];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, addr)) => {
                if n > max_message_size {
                    debug!(%addr, bytes = n, "datagram over max_message_size");
                }
                let peer = Peer {
                    transport: Transport::Udp,
                    addr,
                    conn: 0,
                };
                let data = buf[..n].to_vec();
                if events.send(Event::Sip { peer, data }).is_err() {
                    return;
                }
            }
            // ICMP port-unreachable from a vanished peer shows up here.
            Err(_) => continue,
        }
    }
}

//! SIP over TCP: messages framed by Content-Length (RFC 3261 18.3), one
//! reader and one writer task per connection, within `[sip.limits]`:
//!
//! - a message over `max_message_size` (its head alone, or as declared by
//!   its Content-Length) is handed to the engine head only, so that it is
//!   answered 513 or 413, and the connection is closed once that is sent;
//! - a connection with no message in progress is closed after
//!   `tcp_idle_timeout`; a message must arrive whole within
//!   `tcp_message_timeout` of its first byte, so a sender trickling bytes
//!   (slow loris) holds a connection no longer than that;
//! - connections beyond `max_tcp_connections`, or beyond
//!   `max_tcp_connections_per_ip` from one address, are closed on accept.
//!
//! Connections the engine opens itself ([`connect`], to a trunk with
//! `transport = "tcp"` or `"tls"`) are read and limited the same way once
//! connected; they are not counted against the accept limits (one per
//! trunk).
//!
//! SIP over TLS (RFC 3261 26.2, docs/tls.md) is this same framing inside
//! a TLS connection: an accept loop given a [`TlsAcceptor`] counts the
//! connection in its limits at once, gives the handshake
//! `tcp_message_timeout` to finish, and hands what arrives to the engine
//! as [`Transport::Tls`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout_at, Instant};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::config::SipLimits;
use crate::engine::{Peer, Transport};
use crate::sip::message::find_head_end;

use super::tls::TrunkTls;
use super::Event;

/// How long a closing connection waits for the answer to what it received
/// last (a 413 or 513, or the reply to a request sent before the peer
/// closed its side) before it is shut.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How long an outgoing connection may take to be accepted.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    pub max_message_size: usize,
    pub idle_timeout: Duration,
    pub message_timeout: Duration,
    pub max_connections: usize,
    pub max_per_ip: usize,
}

impl From<&SipLimits> for TcpLimits {
    fn from(l: &SipLimits) -> Self {
        TcpLimits {
            max_message_size: l.max_message_size,
            idle_timeout: l.tcp_idle_timeout,
            message_timeout: l.tcp_message_timeout,
            max_connections: l.max_tcp_connections,
            max_per_ip: l.max_tcp_connections_per_ip,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole message of this many bytes is at the front of the buffer.
    Message(usize),
    NeedMore,
    /// Over the size limit: the first this-many bytes (the head, or as
    /// much as the limit and one byte) go to the engine to be answered,
    /// then the connection closes.
    TooLarge(usize),
    /// The stream cannot be framed (bad or missing Content-Length).
    Invalid(&'static str),
}

/// Finds the first complete message in `buf`, after skipping keep-alive
/// CRLFs (RFC 5626) at its front (their count is returned first).
pub fn frame(buf: &[u8], max_message_size: usize) -> (usize, Frame) {
    let skip = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    let data = &buf[skip..];
    let over = max_message_size.saturating_add(1);
    let Some(head_end) = find_head_end(data) else {
        if data.len() > max_message_size {
            return (skip, Frame::TooLarge(over));
        }
        return (skip, Frame::NeedMore);
    };
    let body_start = head_end + 4;
    if body_start > max_message_size {
        return (skip, Frame::TooLarge(over));
    }
    let head = String::from_utf8_lossy(&data[..head_end]);
    let mut length = None;
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
                match value.trim().parse::<usize>() {
                    Ok(n) if length.is_none_or(|l| l == n) => length = Some(n),
                    _ => return (skip, Frame::Invalid("bad Content-Length")),
                }
            }
        }
    }
    // Content-Length is mandatory on stream transports.
    let Some(length) = length else {
        return (skip, Frame::Invalid("no Content-Length on TCP"));
    };
    // The declared body would take the message past the limit: the engine
    // answers the head 413 (Content-Length says why).
    if body_start.saturating_add(length) > max_message_size {
        return (skip, Frame::TooLarge(body_start));
    }
    let total = body_start + length;
    if data.len() < total {
        (skip, Frame::NeedMore)
    } else {
        (skip, Frame::Message(total))
    }
}

/// Open connections, in total and by source address.
#[derive(Default)]
struct Open {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// Holds a connection's place in [`Open`] until dropped.
struct Slot {
    open: Arc<Mutex<Open>>,
    ip: IpAddr,
}

impl Slot {
    fn take(open: &Arc<Mutex<Open>>, ip: IpAddr, limits: &TcpLimits) -> Option<Slot> {
        let mut o = open.lock().ok()?;
        let from_ip = o.by_ip.get(&ip).copied().unwrap_or(0);
        if o.total >= limits.max_connections || from_ip >= limits.max_per_ip {
            return None;
        }
        o.total += 1;
        *o.by_ip.entry(ip).or_insert(0) += 1;
        Some(Slot {
            open: open.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut o) = self.open.lock() {
            o.total = o.total.saturating_sub(1);
            if let Some(n) = o.by_ip.get_mut(&self.ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    o.by_ip.remove(&self.ip);
                }
            }
        }
    }
}

/// Accepts SIP connections: plain TCP, or TLS with `tls`.
pub async fn accept_loop(
    listener: TcpListener,
    events: mpsc::UnboundedSender<Event>,
    mut next_conn: u64,
    limits: TcpLimits,
    tls: Option<TlsAcceptor>,
) {
    let open = Arc::new(Mutex::new(Open::default()));
    let kind = if tls.is_some() { "TLS" } else { "TCP" };
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, say: wait instead of spinning.
                debug!(error = %e, "SIP {kind} accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = Slot::take(&open, addr.ip(), &limits) else {
            // Dropping the stream closes it.
            debug!(%addr, "{kind} connection refused: connection limit reached");
            continue;
        };
        if events.is_closed() {
            return;
        }
        next_conn += 1;
        let conn = next_conn;
        let events = events.clone();
        match &tls {
            None => {
                let _ = stream.set_nodelay(true);
                let (reader, writer) = stream.into_split();
                tokio::spawn(opened(
                    reader,
                    writer,
                    peer(Transport::Tcp, addr, conn),
                    events,
                    limits,
                    slot,
                ));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    // A handshake is a message: it has tcp_message_timeout.
                    let deadline = Instant::now() + limits.message_timeout;
                    match timeout_at(deadline, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let (reader, writer) = tokio::io::split(tls);
                            let peer = peer(Transport::Tls, addr, conn);
                            opened(reader, writer, peer, events, limits, slot).await;
                        }
                        Ok(Err(e)) => debug!(%addr, error = %e, "SIP TLS handshake failed"),
                        Err(_) => {
                            debug!(%addr, "SIP TLS handshake not done within tcp_message_timeout")
                        }
                    }
                });
            }
        }
    }
}

fn peer(transport: Transport, addr: SocketAddr, conn: u64) -> Peer {
    Peer {
        transport,
        addr,
        conn,
    }
}

/// An accepted connection, ready: the engine hears of it, then of what
/// it carries.
async fn opened<R, W>(
    reader: R,
    writer: W,
    peer: Peer,
    events: mpsc::UnboundedSender<Event>,
    limits: TcpLimits,
    slot: Slot,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (writer_tx, writer_rx) = mpsc::unbounded_channel();
    let opened = Event::TcpOpened {
        conn: peer.conn,
        writer: writer_tx,
    };
    if events.send(opened).is_err() {
        return;
    }
    connection(reader, writer, peer, events, writer_rx, limits, Some(slot)).await;
}

/// Connects from `local_ip` to `addr` (a trunk), over TLS with `tls`,
/// and runs the connection like an accepted one: what the engine queued
/// on `writer_rx` meanwhile goes out first, and what arrives is handed to
/// the engine as from `conn`. A connection that cannot be made (refused,
/// or the trunk's certificate not trusted) ends as a closed one (its
/// messages are lost, as on a broken connection; their transactions time
/// out in the engine).
pub async fn connect(
    local_ip: IpAddr,
    addr: SocketAddr,
    conn: u64,
    events: mpsc::UnboundedSender<Event>,
    writer_rx: mpsc::UnboundedReceiver<Vec<u8>>,
    limits: TcpLimits,
    tls: Option<TrunkTls>,
) {
    let attempt = async {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // From the SIP address where it makes sense, so that a trunk that
        // admits by source address sees the one it knows.
        if local_ip.is_ipv4() == addr.is_ipv4() && !local_ip.is_unspecified() {
            socket.bind(SocketAddr::new(local_ip, 0))?;
        }
        socket.connect(addr).await
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            let Some(tls) = tls else {
                info!(%addr, "TCP connection to a trunk opened");
                let (reader, writer) = stream.into_split();
                let peer = peer(Transport::Tcp, addr, conn);
                connection(reader, writer, peer, events, writer_rx, limits, None).await;
                return;
            };
            let shake = tls.connector.connect(tls.server_name.clone(), stream);
            match tokio::time::timeout(CONNECT_TIMEOUT, shake).await {
                Ok(Ok(stream)) => {
                    info!(%addr, server_name = ?tls.server_name, "TLS connection to a trunk opened");
                    let (reader, writer) = tokio::io::split(stream);
                    let peer = peer(Transport::Tls, addr, conn);
                    connection(reader, writer, peer, events, writer_rx, limits, None).await;
                }
                Ok(Err(e)) => {
                    warn!(%addr, server_name = ?tls.server_name, error = %e,
                        "TLS handshake with the trunk failed");
                    let _ = events.send(Event::TcpClosed { conn });
                }
                Err(_) => {
                    warn!(%addr, "TLS handshake with the trunk not done within 5 s");
                    let _ = events.send(Event::TcpClosed { conn });
                }
            }
        }
        Ok(Err(e)) => {
            warn!(%addr, error = %e, "cannot connect to the trunk over TCP");
            let _ = events.send(Event::TcpClosed { conn });
        }
        Err(_) => {
            warn!(%addr, "TCP connection to the trunk not accepted within 5 s");
            let _ = events.send(Event::TcpClosed { conn });
        }
    }
}

/// Why the reader stopped.
enum End {
    /// Close now.
    Abort,
    /// Let the engine's answer to what was last received go out first.
    AfterReply,
}

/// Runs one connection (TCP, or TLS after its handshake) from its two
/// halves until it ends.
async fn connection<R, W>(
    mut reader: R,
    mut writer: W,
    peer: Peer,
    events: mpsc::UnboundedSender<Event>,
    mut writer_rx: mpsc::UnboundedReceiver<Vec<u8>>,
    limits: TcpLimits,
    _slot: Option<Slot>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let conn = peer.conn;
    let (closing_tx, mut closing_rx) = oneshot::channel::<()>();
    let write_task = tokio::spawn(async move {
        loop {
            tokio::select! {
                data = writer_rx.recv() => match data {
                    Some(data) => {
                        if writer.write_all(&data).await.is_err() {
                            return;
                        }
                    }
                    None => break,
                },
                _ = &mut closing_rx => {
                    let deadline = Instant::now() + CLOSE_GRACE;
                    while let Ok(Some(data)) = timeout_at(deadline, writer_rx.recv()).await {
                        if writer.write_all(&data).await.is_err() {
                            return;
                        }
                    }
                    break;
                }
            }
        }
        let _ = writer.shutdown().await;
    });
    let end = read_messages(&mut reader, peer, &events, &limits).await;
    match end {
        End::AfterReply => {
            let _ = closing_tx.send(());
            let _ = write_task.await;
        }
        End::Abort => write_task.abort(),
    }
    let _ = events.send(Event::TcpClosed { conn });
}

/// Reads and frames messages until the connection ends or breaks a limit.
async fn read_messages<R: AsyncRead + Unpin>(
    reader: &mut R,
    peer: Peer,
    events: &mpsc::UnboundedSender<Event>,
    limits: &TcpLimits,
) -> End {
    let addr = peer.addr;
    let mut buf = BytesMut::with_capacity(4096);
    // When the first byte of the message in progress arrived.
    let mut started: Option<Instant> = None;
    loop {
        let deadline = match started {
            Some(at) => at + limits.message_timeout,
            None => Instant::now() + limits.idle_timeout,
        };
        match timeout_at(deadline, reader.read_buf(&mut buf)).await {
            Err(_) => {
                let why = if started.is_some() {
                    "message not complete within tcp_message_timeout"
                } else {
                    "idle for tcp_idle_timeout"
                };
                debug!(%addr, why, transport = peer.transport.name(), "closing connection");
                return End::Abort;
            }
            Ok(Ok(0)) => return End::AfterReply,
            Ok(Err(_)) => return End::Abort,
            Ok(Ok(_)) => {}
        }
        loop {
            let (skip, f) = frame(&buf, limits.max_message_size);
            buf.advance(skip);
            match f {
                Frame::Message(n) => {
                    let data = buf.split_to(n).to_vec();
                    started = None;
                    if events.send(Event::Sip { peer, data }).is_err() {
                        return End::Abort;
                    }
                }
                Frame::NeedMore => break,
                Frame::TooLarge(n) => {
                    debug!(%addr, "message over max_message_size; answering and closing");
                    let data = buf[..n.min(buf.len())].to_vec();
                    let _ = events.send(Event::Sip { peer, data });
                    return End::AfterReply;
                }
                Frame::Invalid(why) => {
                    debug!(%addr, why, transport = peer.transport.name(), "closing connection");
                    return End::Abort;
                }
            }
        }
        if buf.is_empty() {
            started = None;
        } else if started.is_none() {
            started = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 65_535;

    #[test]
    fn frames_by_content_length_and_skips_keepalives() {
        let msg = b"OPTIONS sip:a SIP/2.0\r\nl: 5\r\n\r\nhello";
        let mut buf = b"\r\n\r\n".to_vec();
        buf.extend_from_slice(msg);
        buf.extend_from_slice(b"INVITE sip:b SIP/2.0\r\nContent-Length: 10\r\n\r\nabc");
        let (skip, f) = frame(&buf, MAX);
        assert_eq!(skip, 4);
        assert_eq!(f, Frame::Message(msg.len()));
        let rest = &buf[skip + msg.len()..];
        assert_eq!(frame(rest, MAX), (0, Frame::NeedMore));
    }

    #[test]
    fn refuses_unframeable_streams() {
        assert_eq!(
            frame(b"BYE sip:a SIP/2.0\r\n\r\n", MAX).1,
            Frame::Invalid("no Content-Length on TCP")
        );
        assert_eq!(
            frame(b"BYE sip:a SIP/2.0\r\nContent-Length: x\r\n\r\n", MAX).1,
            Frame::Invalid("bad Content-Length")
        );
        // Two different lengths: nobody can tell where the next message is.
        assert_eq!(
            frame(b"BYE sip:a SIP/2.0\r\nl: 1\r\nl: 2\r\n\r\nab", MAX).1,
            Frame::Invalid("bad Content-Length")
        );
    }

    #[test]
    fn too_large_hands_over_what_can_be_answered() {
        // A 40-byte head declaring 99999999 bytes: the head goes over.
        let head = b"BYE sip:a SIP/2.0\r\nContent-Length: 99999999\r\n\r\n";
        assert_eq!(frame(head, MAX).1, Frame::TooLarge(head.len()));
        // A head that never ends within the limit: the limit and one byte.
        assert_eq!(frame(&vec![b'a'; 2000], 1024).1, Frame::TooLarge(1025));
        // Exactly at the limit is fine: 1024-byte message, 1024 limit.
        let mut m = b"BYE sip:a SIP/2.0\r\nl: 0\r\nX: ".to_vec();
        m.resize(1020, b'x');
        m.extend_from_slice(b"\r\n\r\n");
        assert_eq!(m.len(), 1024);
        assert_eq!(frame(&m, 1024).1, Frame::Message(1024));
    }

    #[test]
    fn connection_slots_are_limited_and_given_back() {
        let limits = TcpLimits {
            max_message_size: MAX,
            idle_timeout: Duration::from_secs(1),
            message_timeout: Duration::from_secs(1),
            max_connections: 3,
            max_per_ip: 2,
        };
        let open = Arc::new(Mutex::new(Open::default()));
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let c: IpAddr = "10.0.0.3".parse().expect("ip");
        let a1 = Slot::take(&open, a, &limits).expect("1st from a");
        let _a2 = Slot::take(&open, a, &limits).expect("2nd from a");
        assert!(Slot::take(&open, a, &limits).is_none(), "3rd from a");
        let _b1 = Slot::take(&open, b, &limits).expect("1st from b");
        assert!(Slot::take(&open, c, &limits).is_none(), "4th in all");
        drop(a1);
        assert!(Slot::take(&open, c, &limits).is_some(), "a slot freed");
    }
}

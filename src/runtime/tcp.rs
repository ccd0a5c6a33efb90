//! SIP over TCP: messages framed by Content-Length (RFC 3261 18.3), one
//! reader and one writer task per connection.

use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::debug;

use crate::engine::{Peer, Transport};
use crate::sip::message::find_head_end;

use super::Event;

/// Refuse header sections and bodies beyond these sizes (and close).
pub const MAX_HEAD: usize = 16 * 1024;
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole message of this many bytes is at the front of the buffer.
    Message(usize),
    NeedMore,
    /// The stream cannot be framed (oversized or bad Content-Length).
    Invalid(&'static str),
}

/// Finds the first complete message in `buf`, after skipping keep-alive
/// CRLFs (RFC 5626) at its front (their count is returned first).
pub fn frame(buf: &[u8]) -> (usize, Frame) {
    let skip = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    let data = &buf[skip..];
    let Some(head_end) = find_head_end(data) else {
        if data.len() > MAX_HEAD {
            return (skip, Frame::Invalid("header section too large"));
        }
        return (skip, Frame::NeedMore);
    };
    if head_end > MAX_HEAD {
        return (skip, Frame::Invalid("header section too large"));
    }
    let head = String::from_utf8_lossy(&data[..head_end]);
    let mut length = None;
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
                match value.trim().parse::<usize>() {
                    Ok(n) => length = Some(n),
                    Err(_) => return (skip, Frame::Invalid("bad Content-Length")),
                }
            }
        }
    }
    // Content-Length is mandatory on stream transports.
    let Some(length) = length else {
        return (skip, Frame::Invalid("no Content-Length on TCP"));
    };
    if length > MAX_BODY {
        return (skip, Frame::Invalid("body too large"));
    }
    let total = head_end + 4 + length;
    if data.len() < total {
        (skip, Frame::NeedMore)
    } else {
        (skip, Frame::Message(total))
    }
}

pub async fn accept_loop(
    listener: TcpListener,
    events: mpsc::UnboundedSender<Event>,
    mut next_conn: u64,
) {
    loop {
        let Ok((stream, addr)) = listener.accept().await else {
            continue;
        };
        next_conn += 1;
        let conn = next_conn;
        let (writer_tx, writer_rx) = mpsc::unbounded_channel();
        if events
            .send(Event::TcpOpened {
                conn,
                writer: writer_tx,
            })
            .is_err()
        {
            return;
        }
        tokio::spawn(connection(stream, addr, conn, events.clone(), writer_rx));
    }
}

async fn connection(
    stream: TcpStream,
    addr: SocketAddr,
    conn: u64,
    events: mpsc::UnboundedSender<Event>,
    mut writer_rx: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let write_task = tokio::spawn(async move {
        while let Some(data) = writer_rx.recv().await {
            if writer.write_all(&data).await.is_err() {
                break;
            }
        }
    });
    let peer = Peer {
        transport: Transport::Tcp,
        addr,
        conn,
    };
    let mut buf = BytesMut::with_capacity(4096);
    'read: loop {
        match reader.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        loop {
            let (skip, f) = frame(&buf);
            buf.advance(skip);
            match f {
                Frame::Message(n) => {
                    let data = buf.split_to(n).to_vec();
                    if events.send(Event::Sip { peer, data }).is_err() {
                        break 'read;
                    }
                }
                Frame::NeedMore => break,
                Frame::Invalid(why) => {
                    debug!(%addr, why, "closing TCP connection");
                    break 'read;
                }
            }
        }
    }
    let _ = events.send(Event::TcpClosed { conn });
    write_task.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_by_content_length_and_skips_keepalives() {
        let msg = b"OPTIONS sip:a SIP/2.0\r\nl: 5\r\n\r\nhello";
        let mut buf = b"\r\n\r\n".to_vec();
        buf.extend_from_slice(msg);
        buf.extend_from_slice(b"INVITE sip:b SIP/2.0\r\nContent-Length: 10\r\n\r\nabc");
        let (skip, f) = frame(&buf);
        assert_eq!(skip, 4);
        assert_eq!(f, Frame::Message(msg.len()));
        let rest = &buf[skip + msg.len()..];
        assert_eq!(frame(rest), (0, Frame::NeedMore));
    }

    #[test]
    fn refuses_unframeable_streams() {
        assert_eq!(
            frame(b"BYE sip:a SIP/2.0\r\n\r\n").1,
            Frame::Invalid("no Content-Length on TCP")
        );
        assert_eq!(
            frame(b"BYE sip:a SIP/2.0\r\nContent-Length: x\r\n\r\n").1,
            Frame::Invalid("bad Content-Length")
        );
        assert_eq!(
            frame(b"BYE sip:a SIP/2.0\r\nContent-Length: 99999999\r\n\r\n").1,
            Frame::Invalid("body too large")
        );
        assert_eq!(
            frame(&vec![b'a'; MAX_HEAD + 10]).1,
            Frame::Invalid("header section too large")
        );
    }
}

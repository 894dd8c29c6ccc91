//! `GetHDSnapshot2` replies sent while they are read.
//!
//! A second of 1024 channels is a 123 MB message. Encoded the usual way, the daemon would read
//! all of it, then copy it into the encoder's buffer, then start sending; the client waits for
//! the sum. Protobuf lengths only need the sizes, which are known once the span and the rows
//! are fixed, so this route writes the message's framing first and then the amplifier rows in
//! blocks of [`ROWS_PER_BLOCK`], each read from the primary cache while the previous block is
//! on the wire, each sent from its own pooled buffer without a copy. The bytes on the wire
//! are an ordinary `HDSnapshot2` message (fields may come in any order in protobuf; the
//! amplifier matrix comes last), so any gRPC client decodes it as usual.
//!
//! If the cache overwrites part of the span before its rows are read (a range at the very
//! oldest edge of a full cache), the reply ends with an error status instead of the rest of
//! the message.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use ephysd_pipeline::{BufferPool, Matrix};
use ephysd_proto::allego::pcache1_server::Pcache1Server;
use ephysd_proto::allego::{HdSnapshotRequest2, RadixMatrixBytes, SensorPortSpec, SignalGroup, Signals2, TimeRange};
use http_body::Frame;
use http_body_util::BodyExt;
use prost::encoding::{encode_varint, encoded_len_varint};
use prost::Message;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::{Code, Status};

use super::channels::LIVE_SIGNALS;
use super::service::PcacheService;
use super::signals::{plan, PlannedRead};
use crate::engine::Engine;

/// Amplifier rows read and sent at a time: 128 channels are four adjacent cache lines of each
/// frame, which the memory system fetches together, where one line per frame (32 rows) left
/// the read waiting on memory: reading a second of 1024 channels 32 rows at a time took 51 ms,
/// 128 at a time 35 ms, all at once 28 ms (`cargo bench -p ephysd-pipeline --bench
/// snapshot`). At 30 kHz a block of one second is 15 MB, and the first is on the wire after
/// about 4 ms.
pub const ROWS_PER_BLOCK: usize = 128;

/// Blocks read ahead of the one being sent.
const BLOCKS_AHEAD: usize = 2;

/// The largest request accepted (a `GetHDSnapshot2` request is a few kilobytes).
const MAX_REQUEST_BYTES: usize = 4 << 20;

const PATH: &str = "/allego.Pcache1/GetHDSnapshot2";

/// The Pcache1 service with `GetHDSnapshot2` sent as it is read; every other method is the
/// generated service's.
#[derive(Clone)]
pub struct PcacheRoutes {
    generated: Pcache1Server<PcacheService>,
    engine: Arc<Engine>,
}

impl PcacheRoutes {
    pub fn new(engine: Arc<Engine>) -> Self {
        PcacheRoutes { generated: Pcache1Server::new(PcacheService), engine }
    }
}

impl NamedService for PcacheRoutes {
    const NAME: &'static str = <Pcache1Server<PcacheService> as NamedService>::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, Infallible>> + Send>>;

impl tower::Service<http::Request<Body>> for PcacheRoutes {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        tower::Service::<http::Request<Body>>::poll_ready(&mut self.generated, cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() != PATH {
            return Box::pin(self.generated.call(request));
        }
        let engine = Arc::clone(&self.engine);
        Box::pin(async move {
            Ok(match answer(&engine, request).await {
                Ok(response) => response,
                Err(status) => status.into_http(),
            })
        })
    }
}

/// Decodes the request, plans the read, and starts the reply.
async fn answer(engine: &Arc<Engine>, request: http::Request<Body>) -> Result<http::Response<Body>, Status> {
    let message = read_request(request.into_body()).await?;
    let planned = plan(engine, &message).await?;
    let (prefix, rows) = framing(&planned);
    let (tx, rx) = tokio::sync::mpsc::channel(BLOCKS_AHEAD);
    tokio::task::spawn_blocking(move || send_rows(planned, tx));
    let body = StreamedReply { prefix: Some(prefix), blocks: rx, rows_left: rows, done: false };
    Ok(http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .body(Body::new(body))
        .expect("static response parts are valid"))
}

/// The one gRPC message of a unary request, decoded.
async fn read_request(body: Body) -> Result<HdSnapshotRequest2, Status> {
    // Read no more than a request can hold, so a client cannot make the daemon buffer an
    // endless body.
    let bytes = http_body_util::Limited::new(body, 5 + MAX_REQUEST_BYTES)
        .collect()
        .await
        .map_err(|e| Status::invalid_argument(format!("request body: {e} (allowed up to {MAX_REQUEST_BYTES} bytes)")))?
        .to_bytes();
    if bytes.len() < 5 {
        return Err(Status::invalid_argument("the request is not a gRPC message (shorter than its 5-byte header)"));
    }
    if bytes[0] != 0 {
        return Err(Status::unimplemented("compressed requests are not supported; send GetHDSnapshot2 uncompressed"));
    }
    let len = u32::from_be_bytes(bytes[1..5].try_into().expect("four bytes")) as usize;
    if len > MAX_REQUEST_BYTES || bytes.len() != 5 + len {
        return Err(Status::invalid_argument(format!(
            "the request's length prefix says {len} bytes but {} follow (allowed up to {MAX_REQUEST_BYTES})",
            bytes.len() - 5
        )));
    }
    HdSnapshotRequest2::decode(&bytes[5..]).map_err(|e| Status::invalid_argument(format!("HDSnapshotRequest2: {e}")))
}

/// The gRPC header and every byte of the message before the amplifier samples, and how many
/// amplifier rows follow.
fn framing(planned: &PlannedRead) -> (Bytes, usize) {
    let read = &planned.read;
    let span = read.span;
    let rate = read.sample_rate_hz;
    let wall: chrono::DateTime<chrono::Utc> = read.wall_time.into();
    let board = |m: &Matrix| RadixMatrixBytes {
        shape: vec![m.rows as i32, m.frames as i32],
        data: Bytes::copy_from_slice(&m.bytes),
    };
    // Everything but the amplifier matrix, encoded by prost.
    let head = Signals2 {
        s_g: SignalGroup { sensor_port_spec: SensorPortSpec::default(), ..Default::default() },
        t_r: TimeRange {
            time_range_sec: vec![span.start as f64 / rate, span.end as f64 / rate],
            timestamp: vec![span.start as i64, span.end as i64],
            fs: rate,
            wall_time_start: Some(wall.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
            wall_time: None,
        },
        amp: None,
        ain: Some(board(&read.board.analog_in)),
        din: Some(board(&read.board.digital_in)),
        dout: Some(board(&read.board.digital_out)),
    }
    .encode_to_vec();
    let rows = planned.amplifier.len();
    let frames = span.len() as usize;
    (message_prefix(&head, [rows, frames]), rows)
}

/// Protobuf field keys: (field number << 3) | wire type 2 (length-delimited) or 0 (varint).
const HD_SNAPSHOT2_DSOURCE_ID: u64 = 1 << 3 | 2;
const HD_SNAPSHOT2_SIGS: u64 = 2 << 3 | 2;
const SIGNALS2_AMP: u64 = 3 << 3 | 2;
const MATRIX_DATA: u64 = 1 << 3 | 2;
const MATRIX_SHAPE: u64 = 2 << 3;

/// The gRPC frame header and the `HDSnapshot2` bytes up to the amplifier samples, for a
/// `Signals2` whose other fields encode to `head` and an amplifier matrix of `shape`
/// (`[rows, frames]`, `rows * frames * 4` bytes of samples to follow).
fn message_prefix(head: &[u8], shape: [usize; 2]) -> Bytes {
    let data_len = (shape[0] * shape[1] * 4) as u64;
    let mut matrix_head = BytesMut::new();
    for dim in shape {
        encode_varint(MATRIX_SHAPE, &mut matrix_head);
        encode_varint(dim as u64, &mut matrix_head);
    }
    encode_varint(MATRIX_DATA, &mut matrix_head);
    encode_varint(data_len, &mut matrix_head);
    let matrix_len = matrix_head.len() as u64 + data_len;
    let amp_field_len = (encoded_len_varint(SIGNALS2_AMP) + encoded_len_varint(matrix_len)) as u64 + matrix_len;
    let signals_len = head.len() as u64 + amp_field_len;
    let source_len = (encoded_len_varint(HD_SNAPSHOT2_DSOURCE_ID)
        + encoded_len_varint(LIVE_SIGNALS.len() as u64)
        + LIVE_SIGNALS.len()) as u64;
    let message_len =
        source_len + (encoded_len_varint(HD_SNAPSHOT2_SIGS) + encoded_len_varint(signals_len)) as u64 + signals_len;

    let mut out = BytesMut::with_capacity(64 + head.len() + matrix_head.len());
    out.put_u8(0); // not compressed
    out.put_u32(u32::try_from(message_len).expect("replies are limited to 1 GiB"));
    encode_varint(HD_SNAPSHOT2_DSOURCE_ID, &mut out);
    encode_varint(LIVE_SIGNALS.len() as u64, &mut out);
    out.put_slice(LIVE_SIGNALS.as_bytes());
    encode_varint(HD_SNAPSHOT2_SIGS, &mut out);
    encode_varint(signals_len, &mut out);
    out.put_slice(head);
    encode_varint(SIGNALS2_AMP, &mut out);
    encode_varint(matrix_len, &mut out);
    out.put_slice(&matrix_head);
    out.freeze()
}

/// Reads the amplifier rows block by block and hands each to the reply; stops at the first
/// failure (sent as the reply's status) or when the client has gone.
fn send_rows(planned: PlannedRead, tx: tokio::sync::mpsc::Sender<Result<Bytes, Status>>) {
    let PlannedRead { read, amplifier } = planned;
    for block in amplifier.chunks(ROWS_PER_BLOCK) {
        let next = read.amplifier_rows(block).map(|m| loaned(m, &read.pool)).map_err(|e| super::errors::status_of(&e));
        let failed = next.is_err();
        if tx.blocking_send(next).is_err() || failed {
            return;
        }
    }
}

/// A block's bytes, on loan from the pool until sent.
fn loaned(m: Matrix, pool: &Arc<BufferPool>) -> Bytes {
    Bytes::from_owner(Loaned { buf: m.bytes, pool: Arc::clone(pool) })
}

/// A reply buffer on loan from the pool: back to the pool once sent.
struct Loaned {
    buf: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for Loaned {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Loaned {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}

/// The reply's body: the framing, the blocks as they are read, then the status.
struct StreamedReply {
    prefix: Option<Bytes>,
    blocks: tokio::sync::mpsc::Receiver<Result<Bytes, Status>>,
    /// Rows still to come (0: the message is complete).
    rows_left: usize,
    done: bool,
}

impl http_body::Body for StreamedReply {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        if self.done {
            return Poll::Ready(None);
        }
        if self.rows_left == 0 {
            self.done = true;
            return Poll::Ready(Some(Ok(Frame::trailers(status_trailers(&Status::new(Code::Ok, ""))))));
        }
        match self.blocks.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(block))) => {
                self.rows_left = self.rows_left.saturating_sub(ROWS_PER_BLOCK);
                Poll::Ready(Some(Ok(Frame::data(block))))
            }
            Poll::Ready(Some(Err(status))) => {
                self.done = true;
                Poll::Ready(Some(Ok(Frame::trailers(status_trailers(&status)))))
            }
            Poll::Ready(None) => {
                self.done = true;
                let status = Status::internal("the signal read stopped before the reply was complete");
                Poll::Ready(Some(Ok(Frame::trailers(status_trailers(&status)))))
            }
        }
    }
}

fn status_trailers(status: &Status) -> http::HeaderMap {
    let mut trailers = http::HeaderMap::new();
    if status.add_header(&mut trailers).is_err() {
        trailers.insert("grpc-status", http::HeaderValue::from(Code::Internal as i32));
    }
    trailers
}

#[cfg(test)]
mod tests {
    use super::*;
    use ephysd_proto::allego::HdSnapshot2;

    /// The framing followed by the samples decodes, with prost, to the message built whole.
    #[test]
    fn the_streamed_framing_and_samples_decode_as_the_whole_message() {
        for (rows, frames) in [(3usize, 5usize), (0, 7), (40, 1000), (1, 0)] {
            let samples: Vec<u8> = (0..rows * frames * 4).map(|i| (i * 7 % 251) as u8).collect();
            let head_message = Signals2 {
                t_r: TimeRange {
                    time_range_sec: vec![1.0, 2.0],
                    timestamp: vec![10, 20],
                    fs: 10.0,
                    ..Default::default()
                },
                ain: Some(RadixMatrixBytes { shape: vec![1, 2], data: Bytes::from_static(&[1, 2, 3, 4, 5, 6, 7, 8]) }),
                ..Default::default()
            };
            let mut wire = message_prefix(&head_message.encode_to_vec(), [rows, frames]).to_vec();
            wire.extend_from_slice(&samples);
            assert_eq!(wire[0], 0);
            let len = u32::from_be_bytes(wire[1..5].try_into().unwrap()) as usize;
            assert_eq!(len, wire.len() - 5, "the length prefix counts every byte that follows");
            let decoded = HdSnapshot2::decode(&wire[5..]).unwrap();
            let expected = HdSnapshot2 {
                dsource_id: Some(LIVE_SIGNALS.into()),
                sigs: Signals2 {
                    amp: Some(RadixMatrixBytes { shape: vec![rows as i32, frames as i32], data: samples.into() }),
                    ..head_message
                },
            };
            assert_eq!(decoded, expected, "{rows} x {frames}");
        }
    }
}

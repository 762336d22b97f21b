//! Teltonika Codec 8 and Codec 8 Extended over TCP (FMB/FMC/FMM trackers).
//!
//! The session opens with the IMEI (`u16` length + ASCII digits); we answer `0x01` (accepted)
//! or `0x00` (refused). Then AVL data packets: 4 zero bytes, `u32` data length, the data
//! (codec id, record count, records, record count again) and a `u32` whose low half is the
//! CRC-16/IBM of the data. We answer each packet with the `u32` number of records taken; a
//! packet refused for its checksum is answered 0, so the tracker sends it again.
//!
//! Why not the nom-teltonika crate: it decodes the same records, but its errors are nom's
//! generic `ErrorKind` with no reason or byte offset for our rejection log and metrics, it
//! cannot tell "need more bytes" from "broken" on a TCP stream without its own tokio wrapper
//! (which owns the socket and its buffering, where we need our bounded buffer and
//! back-pressure), and it pulls in nom for ~200 lines of big-endian reads. The framing here
//! is explicit: the length header bounds every packet before it is parsed, so a broken packet
//! is skipped whole and the connection's next packet still counts.
//! Pure: no I/O, never panics on any bytes (fuzzed by `fuzz/fuzz_targets/teltonika.rs`).

use chrono::{DateTime, Utc};

use super::fix::{Fix, RejectReason, Rejection, crc16_arc};
use crate::domain::Position;

pub const IMEI_ACCEPTED: [u8; 1] = [0x01];
pub const IMEI_REFUSED: [u8; 1] = [0x00];
/// Teltonika's own limit is 1,280 bytes of data for FMB devices; we allow more (FMC/FMM
/// extended IO) but bound it.
pub const MAX_DATA_LEN: usize = 64 * 1024;
/// IO element id of the ignition (digital input "Ignition").
const IO_IGNITION: u16 = 239;

const CODEC_8: u8 = 0x08;
const CODEC_8E: u8 = 0x8E;

/// Outcome of looking at the head of a receive buffer.
#[derive(Debug, PartialEq)]
pub enum Framed<T> {
    /// Not enough bytes yet: read more.
    Incomplete,
    /// `consumed` bytes make one unit; `value` is what they decode to.
    Unit { consumed: usize, value: T },
}

/// The IMEI handshake: `Ok(Incomplete)` until the length's bytes are there.
pub fn imei(buf: &[u8]) -> Result<Framed<String>, Rejection> {
    let Some(len_bytes) = buf.get(..2) else {
        return Ok(Framed::Incomplete);
    };
    let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
    if !(1..=20).contains(&len) {
        return Err(Rejection::new(
            RejectReason::Malformed,
            format!("IMEI length {len} at offset 0 (expected 15)"),
        ));
    }
    let Some(digits) = buf.get(2..2 + len) else {
        return Ok(Framed::Incomplete);
    };
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(Rejection::new(
            RejectReason::Malformed,
            "IMEI is not ASCII digits",
        ));
    }
    Ok(Framed::Unit {
        consumed: 2 + len,
        value: String::from_utf8_lossy(digits).into_owned(),
    })
}

/// An AVL data packet's records; `count` is the count the packet declares.
#[derive(Debug, PartialEq)]
pub struct AvlPacket {
    pub codec: u8,
    pub records: Vec<Result<Fix, Rejection>>,
}

/// Frames and decodes one AVL packet at the head of `buf`. A framing error (non-zero
/// preamble, absurd length) is `Err(_, None)`: the stream cannot be resynchronised. A broken
/// packet whose length was sound is `Err(_, Some(consumed))`: skip it and go on.
pub fn packet(buf: &[u8]) -> Result<Framed<AvlPacket>, (Rejection, Option<usize>)> {
    let Some(head) = buf.get(..8) else {
        return Ok(Framed::Incomplete);
    };
    if head[..4] != [0, 0, 0, 0] {
        return Err((
            Rejection::new(
                RejectReason::Malformed,
                "preamble at offset 0 is not 4 zero bytes",
            ),
            None,
        ));
    }
    let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if !(3..=MAX_DATA_LEN).contains(&len) {
        return Err((
            Rejection::new(
                if len > MAX_DATA_LEN {
                    RejectReason::TooLong
                } else {
                    RejectReason::Malformed
                },
                format!("data length {len} at offset 4 (allowed 3..={MAX_DATA_LEN})"),
            ),
            None,
        ));
    }
    let total = 8 + len + 4;
    let Some(whole) = buf.get(..total) else {
        return Ok(Framed::Incomplete);
    };
    let data = &whole[8..8 + len];
    let crc_field = &whole[8 + len..];
    let sent = u32::from_be_bytes([crc_field[0], crc_field[1], crc_field[2], crc_field[3]]);
    let computed = u32::from(crc16_arc(data));
    if sent != computed {
        return Err((
            Rejection::new(
                RejectReason::Checksum,
                format!("CRC {sent:08X} sent, {computed:08X} computed"),
            ),
            Some(total),
        ));
    }
    decode_data(data)
        .map(|value| Framed::Unit {
            consumed: total,
            value,
        })
        .map_err(|r| (r, Some(total)))
}

/// Big-endian reader over the data field that reports offsets from the packet start.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Rejection> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.data.len());
        match end {
            Some(end) => {
                let s = &self.data[self.at..end];
                self.at = end;
                Ok(s)
            }
            None => Err(Rejection::new(
                RejectReason::Malformed,
                format!(
                    "record runs past the data end at offset {} (+{n})",
                    self.at + 8
                ),
            )),
        }
    }
    fn u8(&mut self) -> Result<u8, Rejection> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, Rejection> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, Rejection> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, Rejection> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    /// A count or id: one byte in Codec 8, two in Codec 8E.
    fn n(&mut self, extended: bool) -> Result<u16, Rejection> {
        if extended {
            self.u16()
        } else {
            self.u8().map(u16::from)
        }
    }
}

fn decode_data(data: &[u8]) -> Result<AvlPacket, Rejection> {
    let mut r = Reader { data, at: 0 };
    let codec = r.u8()?;
    let extended = match codec {
        CODEC_8 => false,
        CODEC_8E => true,
        other => {
            return Err(Rejection::new(
                RejectReason::Unsupported,
                format!("codec 0x{other:02X} at offset 8 (we take 0x08 and 0x8E)"),
            ));
        }
    };
    let count = r.u8()?;
    let mut records = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        records.push(record(&mut r, extended));
        // A record that ran out of bytes leaves the reader misaligned: the rest is unusable.
        if records.last().is_some_and(Result::is_err) {
            return Err(Rejection::new(
                RejectReason::Malformed,
                records
                    .pop()
                    .and_then(Result::err)
                    .map_or_else(String::new, |e| e.detail),
            ));
        }
    }
    let count_again = r.u8()?;
    if count_again != count || r.at != data.len() {
        return Err(Rejection::new(
            RejectReason::Malformed,
            format!(
                "record counts {count} and {count_again} differ or {} bytes trail",
                data.len() - r.at.min(data.len())
            ),
        ));
    }
    // A record with a bad position is refused alone, the packet's others stand.
    let records = records
        .into_iter()
        .map(|rec| rec.and_then(|rec| rec))
        .collect();
    Ok(AvlPacket { codec, records })
}

type Decoded = Result<Fix, Rejection>;

/// One AVL record. The outer `Result` is a framing problem; the inner one a bad value.
fn record(r: &mut Reader<'_>, extended: bool) -> Result<Decoded, Rejection> {
    let ms = r.u64()?;
    let _priority = r.u8()?;
    let lon = r.u32()? as i32;
    let lat = r.u32()? as i32;
    let altitude = r.u16()? as i16;
    let angle = r.u16()?;
    let satellites = r.u8()?;
    let speed = r.u16()?;
    let _event_io = r.n(extended)?;
    let _total_io = r.n(extended)?;
    let mut ignition = None;
    for width in [1usize, 2, 4, 8] {
        let n = r.n(extended)?;
        for _ in 0..n {
            let id = r.n(extended)?;
            let value = r.take(width)?;
            if id == IO_IGNITION {
                ignition = Some(value.iter().any(|b| *b != 0));
            }
        }
    }
    if extended {
        let n = r.u16()?;
        for _ in 0..n {
            let _id = r.u16()?;
            let len = r.u16()?;
            r.take(usize::from(len))?;
        }
    }
    let Some(at) = i64::try_from(ms)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
    else {
        return Ok(Err(Rejection::new(
            RejectReason::BadTime,
            format!("timestamp {ms} ms"),
        )));
    };
    let position = Position::new(f64::from(lat) / 1e7, f64::from(lon) / 1e7);
    if !position.is_valid() {
        return Ok(Err(Rejection::new(
            RejectReason::BadPosition,
            format!("lat {lat} lon {lon} (1e-7 degrees)"),
        )));
    }
    Ok(Ok(Fix {
        at,
        position,
        speed_kmh: Some(f64::from(speed)),
        course_deg: Some(f64::from(angle % 360)),
        altitude_m: Some(f64::from(altitude)),
        satellites: Some(satellites),
        hdop: None,
        accuracy_m: None,
        ignition,
        black_box: false,
    }))
}

/// The answer to a packet: the number of records taken, big-endian.
pub fn ack(records: u32) -> [u8; 4] {
    records.to_be_bytes()
}

/// Simulator and test helper: one Codec 8 packet of the given fixes (ignition as IO 239).
pub fn encode_codec8(fixes: &[Fix]) -> Vec<u8> {
    let mut data = vec![CODEC_8, fixes.len() as u8];
    for f in fixes {
        data.extend_from_slice(&(f.at.timestamp_millis() as u64).to_be_bytes());
        data.push(0);
        data.extend_from_slice(&((f.position.lon * 1e7).round() as i32).to_be_bytes());
        data.extend_from_slice(&((f.position.lat * 1e7).round() as i32).to_be_bytes());
        data.extend_from_slice(&(f.altitude_m.unwrap_or(0.0) as i16).to_be_bytes());
        data.extend_from_slice(&(f.course_deg.unwrap_or(0.0) as u16).to_be_bytes());
        data.push(f.satellites.unwrap_or(0));
        data.extend_from_slice(&(f.speed_kmh.unwrap_or(0.0).round() as u16).to_be_bytes());
        match f.ignition {
            Some(on) => data.extend_from_slice(&[239, 1, 1, 239, u8::from(on), 0, 0, 0]),
            None => data.extend_from_slice(&[0, 0, 0, 0, 0, 0]),
        }
    }
    data.push(fixes.len() as u8);
    let mut out = vec![0, 0, 0, 0];
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(&data);
    out.extend_from_slice(&u32::from(crc16_arc(&data)).to_be_bytes());
    out
}

/// Simulator and test helper: the IMEI greeting.
pub fn encode_imei(imei: &str) -> Vec<u8> {
    let mut out = (imei.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(imei.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("valid"))
            .collect()
    }

    /// Teltonika's documented examples ("Codec 8" and "Codec 8 Extended" wiki pages).
    const CODEC8_EXAMPLE: &str = "000000000000003608010000016B40D8EA30010000000000000000000000000000000105021503010101425E0F01F10000601A014E0000000000000000010000C7CF";
    const CODEC8E_EXAMPLE: &str = "000000000000004A8E010000016B412CEE000100000000000000000000000000000000010005000100010100010011001D00010010015E2C880002000B000000003544C87A000E000000001DD7E06A00000100002994";

    #[test]
    fn the_documented_imei_greeting_decodes() {
        let buf = hex("000F333536333037303432343431303133");
        assert_eq!(
            imei(&buf),
            Ok(Framed::Unit {
                consumed: 17,
                value: "356307042441013".into()
            })
        );
        assert_eq!(imei(&buf[..5]), Ok(Framed::Incomplete));
    }

    #[test]
    fn the_documented_codec8_packet_decodes_with_its_crc() {
        let buf = hex(CODEC8_EXAMPLE);
        let Ok(Framed::Unit { consumed, value }) = packet(&buf) else {
            panic!("{:?}", packet(&buf));
        };
        assert_eq!(consumed, buf.len());
        assert_eq!(value.codec, 8);
        assert_eq!(value.records.len(), 1);
        let fix = value.records[0].as_ref().expect("valid");
        assert_eq!(fix.at.timestamp_millis(), 0x0000_016B_40D8_EA30);
        // Its IO elements are 0x15, 0x01, 0x42, 0xF1, 0x4E: no ignition (0xEF).
        assert_eq!(fix.ignition, None);
        assert_eq!(fix.satellites, Some(0));
    }

    #[test]
    fn the_documented_codec8_extended_packet_decodes() {
        let buf = hex(CODEC8E_EXAMPLE);
        let Ok(Framed::Unit { consumed, value }) = packet(&buf) else {
            panic!("{:?}", packet(&buf));
        };
        assert_eq!(consumed, buf.len());
        assert_eq!(value.codec, 0x8E);
        assert_eq!(value.records.len(), 1);
        assert_eq!(
            value.records[0]
                .as_ref()
                .expect("valid")
                .at
                .timestamp_millis(),
            0x0000_016B_412C_EE00
        );
    }

    #[test]
    fn a_bad_crc_is_skipped_whole_and_a_split_packet_waits_for_more() {
        let mut buf = hex(CODEC8_EXAMPLE);
        let n = buf.len();
        assert_eq!(packet(&buf[..n - 1]), Ok(Framed::Incomplete));
        buf[20] ^= 0x40;
        let Err((rejection, Some(skip))) = packet(&buf) else {
            panic!()
        };
        assert_eq!(rejection.reason, RejectReason::Checksum);
        assert_eq!(skip, n);
        let mut bad = vec![1, 0, 0, 0];
        bad.extend_from_slice(&buf[4..]);
        assert!(matches!(packet(&bad), Err((_, None))));
    }

    #[test]
    fn what_we_encode_we_decode() {
        let fix = Fix {
            at: DateTime::from_timestamp_millis(1_760_000_000_000).expect("valid"),
            position: Position::new(51.128, 71.43),
            speed_kmh: Some(31.0),
            course_deg: Some(270.0),
            altitude_m: Some(350.0),
            satellites: Some(9),
            hdop: None,
            accuracy_m: None,
            ignition: Some(false),
            black_box: false,
        };
        let buf = encode_codec8(&[fix.clone(), fix.clone()]);
        let Ok(Framed::Unit { value, .. }) = packet(&buf) else {
            panic!()
        };
        assert_eq!(value.records.len(), 2);
        let got = value.records[1].as_ref().expect("valid");
        assert!((got.position.lat - fix.position.lat).abs() < 1e-6);
        assert_eq!(got.ignition, Some(false));
    }

    #[test]
    fn every_prefix_and_every_single_byte_change_of_the_examples_returns() {
        for example in [CODEC8_EXAMPLE, CODEC8E_EXAMPLE] {
            let buf = hex(example);
            for cut in 0..buf.len() {
                packet(&buf[..cut]).ok();
            }
            for i in 8..buf.len() - 4 {
                let mut b = buf.clone();
                b[i] = b[i].wrapping_add(0x5A);
                // Fix the CRC so the decoder itself sees the change.
                let len = b.len();
                let crc = u32::from(crc16_arc(&b[8..len - 4])).to_be_bytes();
                b[len - 4..].copy_from_slice(&crc);
                packet(&b).ok();
            }
        }
    }
}

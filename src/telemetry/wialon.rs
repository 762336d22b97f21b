//! Wialon IPS 2.0 (Gurtam's text protocol over TCP): one packet per line, `#TYPE#body\r\n`.
//!
//! Login `#L#2.0;imei;password;crc`, short data `#SD#` (10 fields), extended data `#D#`
//! (16 fields), black box `#B#msg|msg|…|crc` (each message short or extended, without its own
//! checksum), ping `#P#`. The checksum is CRC-16/ARC over the body from after `#TYPE#` up to and
//! including its last separator, written in hexadecimal. Every refusal maps to the protocol's
//! own answer code (`answer`), so the tracker knows what we did with its packet.
//! Pure: no I/O, never panics on any bytes (fuzzed by `fuzz/fuzz_targets/wialon.rs`).

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use super::fix::{Fix, RejectReason, Rejection, crc16_arc};
use crate::domain::Position;

/// What a line was (also when it was refused: the answer depends on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Login,
    Short,
    Data,
    BlackBox,
    Ping,
    /// Not a packet type we know (or not a packet at all).
    Other,
}

/// A decoded line.
#[derive(Clone, Debug, PartialEq)]
pub enum Packet {
    Login {
        imei: String,
        /// `None` when the tracker sent `NA`.
        password: Option<String>,
    },
    Short(Fix),
    Data(Fix),
    /// Each stored message on its own: one bad message does not refuse the others.
    BlackBox(Vec<Result<Fix, Rejection>>),
    Ping,
}

/// Why a message's fields were refused, in the protocol's terms (they pick the answer code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Structure,
    Time,
    Coordinates,
    Motion,
    SatsHdop,
    InputsOutputs,
    Adc,
    Params,
    Checksum,
}

/// A refused line: its kind, the protocol fault and our reason/detail for logs and metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct WialonError {
    pub kind: Kind,
    pub fault: Fault,
    pub rejection: Rejection,
}

impl WialonError {
    fn new(kind: Kind, fault: Fault, detail: impl Into<String>) -> Self {
        let reason = match fault {
            Fault::Structure | Fault::InputsOutputs | Fault::Adc | Fault::Params => {
                RejectReason::Malformed
            }
            Fault::Time => RejectReason::BadTime,
            Fault::Coordinates => RejectReason::BadPosition,
            Fault::Motion | Fault::SatsHdop => RejectReason::BadMotion,
            Fault::Checksum => RejectReason::Checksum,
        };
        Self {
            kind,
            fault,
            rejection: Rejection::new(reason, detail),
        }
    }
}

/// Login answers (`#AL#…`).
pub const LOGIN_OK: &str = "#AL#1\r\n";
pub const LOGIN_REFUSED: &str = "#AL#0\r\n";
pub const LOGIN_WRONG_PASSWORD: &str = "#AL#01\r\n";
pub const LOGIN_BAD_CHECKSUM: &str = "#AL#10\r\n";
pub const PING_ANSWER: &str = "#AP#\r\n";

/// The answer to a refused line, by the 2.0 specification's code tables.
pub fn error_answer(error: &WialonError) -> String {
    match error.kind {
        Kind::Login => match error.fault {
            Fault::Checksum => LOGIN_BAD_CHECKSUM.to_owned(),
            _ => LOGIN_REFUSED.to_owned(),
        },
        Kind::Short => format!("#ASD#{}\r\n", short_code(error.fault)),
        Kind::Data => format!("#AD#{}\r\n", data_code(error.fault)),
        Kind::BlackBox => "#AB#0\r\n".to_owned(),
        // A malformed ping or an unknown type: answered as a broken extended packet, the
        // generic "incorrect packet structure".
        Kind::Ping | Kind::Other => "#AD#-1\r\n".to_owned(),
    }
}

/// The answer to an accepted data line (`n` = messages taken, for the black box).
pub fn ok_answer(kind: Kind, n: usize) -> String {
    match kind {
        Kind::Short => "#ASD#1\r\n".to_owned(),
        Kind::BlackBox => format!("#AB#{n}\r\n"),
        Kind::Ping => PING_ANSWER.to_owned(),
        Kind::Login => LOGIN_OK.to_owned(),
        Kind::Data | Kind::Other => "#AD#1\r\n".to_owned(),
    }
}

const fn short_code(fault: Fault) -> &'static str {
    match fault {
        Fault::Structure | Fault::InputsOutputs | Fault::Adc | Fault::Params => "-1",
        Fault::Time => "0",
        Fault::Coordinates => "10",
        Fault::Motion => "11",
        Fault::SatsHdop => "12",
        Fault::Checksum => "13",
    }
}

const fn data_code(fault: Fault) -> &'static str {
    match fault {
        Fault::Structure => "-1",
        Fault::Time => "0",
        Fault::Coordinates => "10",
        Fault::Motion => "11",
        Fault::SatsHdop => "12",
        Fault::InputsOutputs => "13",
        Fault::Adc => "14",
        Fault::Params => "15",
        Fault::Checksum => "16",
    }
}

/// Splits `body;crc` and checks the checksum (over `body;` including the last `;`/`|`).
fn checked(kind: Kind, body: &str, sep: char) -> Result<&str, WialonError> {
    let Some(cut) = body.rfind(sep) else {
        return Err(WialonError::new(
            kind,
            Fault::Structure,
            "no checksum field",
        ));
    };
    let (covered, crc_text) = body.split_at(cut + 1);
    let sent = u16::from_str_radix(
        crc_text.trim_start_matches("0x").trim_start_matches("0X"),
        16,
    )
    .map_err(|_| {
        WialonError::new(
            kind,
            Fault::Checksum,
            format!("checksum `{crc_text}` is not hexadecimal"),
        )
    })?;
    let computed = crc16_arc(covered.as_bytes());
    if sent != computed {
        return Err(WialonError::new(
            kind,
            Fault::Checksum,
            format!("checksum {sent:04X} sent, {computed:04X} computed"),
        ));
    }
    Ok(&covered[..cut])
}

/// Decodes one line (without its `\r\n`).
pub fn parse(line: &[u8]) -> Result<Packet, WialonError> {
    let text = std::str::from_utf8(line)
        .map_err(|e| {
            WialonError::new(
                Kind::Other,
                Fault::Structure,
                format!("not text at byte {}", e.valid_up_to()),
            )
        })?
        .trim_end_matches(['\r', '\n']);
    let Some(rest) = text.strip_prefix('#') else {
        return Err(WialonError::new(
            Kind::Other,
            Fault::Structure,
            "does not start with `#`",
        ));
    };
    let Some((kind_text, body)) = rest.split_once('#') else {
        return Err(WialonError::new(
            Kind::Other,
            Fault::Structure,
            "no `#TYPE#` header",
        ));
    };
    match kind_text {
        "L" => login(body),
        "SD" => {
            let fields = checked(Kind::Short, body, ';')?;
            message(Kind::Short, fields, false).map(Packet::Short)
        }
        "D" => {
            let fields = checked(Kind::Data, body, ';')?;
            message(Kind::Data, fields, false).map(Packet::Data)
        }
        "B" => {
            let messages = checked(Kind::BlackBox, body, '|')?;
            let fixes = messages
                .split('|')
                .map(|m| {
                    let kind = if m.split(';').count() == SHORT_FIELDS {
                        Kind::Short
                    } else {
                        Kind::Data
                    };
                    message(kind, m, true).map_err(|e| e.rejection)
                })
                .collect();
            Ok(Packet::BlackBox(fixes))
        }
        "P" if body.is_empty() => Ok(Packet::Ping),
        "P" => Err(WialonError::new(
            Kind::Ping,
            Fault::Structure,
            "ping with a body",
        )),
        other => Err(WialonError::new(
            Kind::Other,
            Fault::Structure,
            format!("packet type `{}` is not supported", truncate(other)),
        )),
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(16) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn login(body: &str) -> Result<Packet, WialonError> {
    let fields = checked(Kind::Login, body, ';')?;
    let parts: Vec<&str> = fields.split(';').collect();
    let [version, imei, password] = parts.as_slice() else {
        return Err(WialonError::new(
            Kind::Login,
            Fault::Structure,
            format!(
                "login has {} fields, 2.0 has 3 before the checksum",
                parts.len()
            ),
        ));
    };
    if *version != "2.0" {
        return Err(WialonError::new(
            Kind::Login,
            Fault::Structure,
            format!("protocol version `{}` (only 2.0)", truncate(version)),
        ));
    }
    if imei.is_empty() || imei.len() > 32 || !imei.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(WialonError::new(
            Kind::Login,
            Fault::Structure,
            "device id must be 1-32 printable characters",
        ));
    }
    Ok(Packet::Login {
        imei: (*imei).to_owned(),
        password: (*password != "NA").then(|| (*password).to_owned()),
    })
}

const SHORT_FIELDS: usize = 10;
const DATA_FIELDS: usize = 16;

fn na(s: &str) -> bool {
    s == "NA" || s.is_empty()
}

fn number(
    kind: Kind,
    s: &str,
    field: &str,
    fault: Fault,
    range: std::ops::RangeInclusive<f64>,
) -> Result<Option<f64>, WialonError> {
    if na(s) {
        return Ok(None);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && range.contains(&v) => Ok(Some(v)),
        _ => Err(WialonError::new(
            kind,
            fault,
            format!("{field} `{}` is not a number in range", truncate(s)),
        )),
    }
}

fn timestamp(kind: Kind, date: &str, time: &str) -> Result<DateTime<Utc>, WialonError> {
    let bad = || {
        WialonError::new(
            kind,
            Fault::Time,
            format!("date/time `{};{}`", truncate(date), truncate(time)),
        )
    };
    if date.len() != 6 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let (whole, frac) = time.split_once('.').unwrap_or((time, ""));
    if whole.len() != 6 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 3 {
        return Err(bad());
    }
    let d = NaiveDate::parse_from_str(date, "%d%m%y").map_err(|_| bad())?;
    let t = NaiveTime::parse_from_str(whole, "%H%M%S").map_err(|_| bad())?;
    let ms: u32 = if frac.is_empty() {
        0
    } else {
        frac.parse::<u32>().map_err(|_| bad())? * 10u32.pow(3 - frac.len() as u32)
    };
    let at = d.and_time(t).and_utc() + chrono::Duration::milliseconds(i64::from(ms));
    Ok(at)
}

/// `DDMM.MMMM` / `DDDMM.MMMM` with its hemisphere letter → degrees.
fn coordinate(
    kind: Kind,
    value: &str,
    hemi: &str,
    max_deg: f64,
    positive: &str,
    negative: &str,
) -> Result<f64, WialonError> {
    let bad = || {
        WialonError::new(
            kind,
            Fault::Coordinates,
            format!("coordinate `{};{}`", truncate(value), truncate(hemi)),
        )
    };
    if na(value) || !value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    let v: f64 = value.parse().map_err(|_| bad())?;
    let degrees = (v / 100.0).floor();
    let minutes = v - degrees * 100.0;
    if minutes.is_nan() || minutes >= 60.0 || degrees > max_deg {
        return Err(bad());
    }
    let abs = degrees + minutes / 60.0;
    if abs > max_deg {
        return Err(bad());
    }
    if hemi == positive {
        Ok(abs)
    } else if hemi == negative {
        Ok(-abs)
    } else {
        Err(bad())
    }
}

fn message(kind: Kind, fields_text: &str, black_box: bool) -> Result<Fix, WialonError> {
    let f: Vec<&str> = fields_text.split(';').collect();
    let expected = if kind == Kind::Short {
        SHORT_FIELDS
    } else {
        DATA_FIELDS
    };
    if f.len() != expected {
        return Err(WialonError::new(
            kind,
            Fault::Structure,
            format!("{} fields, expected {expected}", f.len()),
        ));
    }
    let at = timestamp(kind, f[0], f[1])?;
    let lat = coordinate(kind, f[2], f[3], 90.0, "N", "S")?;
    let lon = coordinate(kind, f[4], f[5], 180.0, "E", "W")?;
    let speed_kmh = number(kind, f[6], "speed", Fault::Motion, 0.0..=2000.0)?;
    let course_deg = number(kind, f[7], "course", Fault::Motion, 0.0..=360.0)?;
    let altitude_m = number(kind, f[8], "altitude", Fault::Motion, -1000.0..=20_000.0)?;
    let satellites =
        number(kind, f[9], "satellites", Fault::SatsHdop, 0.0..=255.0)?.map(|s| s as u8);
    let mut fix = Fix {
        at,
        position: Position::new(lat, lon),
        speed_kmh,
        course_deg,
        altitude_m,
        satellites,
        hdop: None,
        accuracy_m: None,
        ignition: None,
        black_box,
    };
    if kind == Kind::Data {
        fix.hdop = number(kind, f[10], "hdop", Fault::SatsHdop, 0.0..=100.0)?;
        for (i, name) in [(11, "inputs"), (12, "outputs")] {
            if !na(f[i]) && f[i].parse::<u32>().is_err() {
                return Err(WialonError::new(
                    kind,
                    Fault::InputsOutputs,
                    format!("{name} `{}` is not an integer", truncate(f[i])),
                ));
            }
        }
        if !na(f[13]) {
            for adc in f[13].split(',') {
                if adc.parse::<f64>().map_or(true, |v| !v.is_finite()) {
                    return Err(WialonError::new(
                        kind,
                        Fault::Adc,
                        format!("ADC value `{}` is not a number", truncate(adc)),
                    ));
                }
            }
        }
        if !na(f[15]) {
            fix.ignition = params(kind, f[15])?;
        }
    }
    Ok(fix)
}

/// `name:type:value,…` (1 integer, 2 double, 3 text); returns the ignition param when present.
fn params(kind: Kind, text: &str) -> Result<Option<bool>, WialonError> {
    let mut ignition = None;
    for param in text.split(',') {
        let mut it = param.splitn(3, ':');
        let (Some(name), Some(ty), Some(value)) = (it.next(), it.next(), it.next()) else {
            return Err(WialonError::new(
                kind,
                Fault::Params,
                format!("parameter `{}` is not name:type:value", truncate(param)),
            ));
        };
        let ok = match ty {
            "1" => value.parse::<i64>().is_ok(),
            "2" => value.parse::<f64>().is_ok_and(f64::is_finite),
            "3" => true,
            _ => false,
        };
        if name.is_empty() || !ok {
            return Err(WialonError::new(
                kind,
                Fault::Params,
                format!("parameter `{}` has a bad type or value", truncate(param)),
            ));
        }
        if ty == "1" && matches!(name, "ign" | "ignition") {
            ignition = Some(value != "0");
        }
    }
    Ok(ignition)
}

/// Test and simulator helper: appends the checksum and `\r\n` to `#TYPE#body` (the body ending
/// with its last separator).
pub fn with_checksum(header_and_body: &str) -> String {
    let body_start = header_and_body
        .match_indices('#')
        .nth(1)
        .map_or(0, |(i, _)| i + 1);
    let crc = crc16_arc(&header_and_body.as_bytes()[body_start..]);
    format!("{header_and_body}{crc:04X}\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> Result<Packet, WialonError> {
        parse(s.as_bytes())
    }

    #[test]
    fn published_login_packets_carry_the_checksums_we_compute() {
        // Login lines as real trackers and public client libraries send them.
        for (text, imei) in [
            ("#L#2.0;355217044956192;NA;E335", "355217044956192"),
            ("#L#2.0;860000000000000;NA;46D4", "860000000000000"),
            ("#L#2.0;12345;NA;5FEC", "12345"),
        ] {
            match line(text) {
                Ok(Packet::Login {
                    imei: got,
                    password,
                }) => {
                    assert_eq!(got, imei);
                    assert_eq!(password, None);
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_published_extended_packet_with_params_decodes() {
        let text = "#D#010125;112233;5128.199596;N;00000.122544;E;0;0;0;0;0;0;NA;;NA;\
                    example1:1:0,example2:2:0.12,example3:1:123;72D3";
        let Ok(Packet::Data(fix)) = line(text) else {
            panic!("{:?}", line(text));
        };
        assert_eq!(fix.at.to_rfc3339(), "2025-01-01T11:22:33+00:00");
        assert!((fix.position.lat - (51.0 + 28.199596 / 60.0)).abs() < 1e-9);
        assert!((fix.position.lon - 0.122544 / 60.0).abs() < 1e-9);
    }

    #[test]
    fn a_changed_byte_is_refused_with_the_checksum_answer_of_its_packet_type() {
        let e = line("#L#2.0;355217044956193;NA;E335").expect_err("refused");
        assert_eq!(error_answer(&e), LOGIN_BAD_CHECKSUM);
        let sd = with_checksum("#SD#010125;112233;5128.1995;N;07126.0000;E;10;90;300;7;");
        let broken = sd.replace("10;90", "11;90");
        let e = line(broken.trim_end()).expect_err("refused");
        assert_eq!(error_answer(&e), "#ASD#13\r\n");
        let d = with_checksum(
            "#D#010125;112233;5128.1995;N;07126.0000;E;10;90;300;7;1.1;0;0;;NA;ign:1:1;",
        );
        let e = line(&d.replace("ign:1:1", "ign:1:0")).expect_err("refused");
        assert_eq!(error_answer(&e), "#AD#16\r\n");
    }

    #[test]
    fn each_field_fault_gets_the_specifications_answer_code() {
        let cases = [
            (
                "#SD#320125;112233;5128.1995;N;07126.0000;E;10;90;300;7;",
                "#ASD#0\r\n",
            ),
            (
                "#SD#010125;112233;5168.1995;N;07126.0000;E;10;90;300;7;",
                "#ASD#10\r\n",
            ),
            (
                "#SD#010125;112233;5128.1995;N;07126.0000;E;abc;90;300;7;",
                "#ASD#11\r\n",
            ),
            (
                "#SD#010125;112233;5128.1995;N;07126.0000;E;10;90;300;x;",
                "#ASD#12\r\n",
            ),
            (
                "#SD#010125;112233;5128.1995;N;07126.0000;E;10;90;",
                "#ASD#-1\r\n",
            ),
            (
                "#D#010125;112233;5128.1995;N;07126.0000;E;1;1;1;1;1;x;0;;NA;;",
                "#AD#13\r\n",
            ),
            (
                "#D#010125;112233;5128.1995;N;07126.0000;E;1;1;1;1;1;0;0;a,b;NA;;",
                "#AD#14\r\n",
            ),
            (
                "#D#010125;112233;5128.1995;N;07126.0000;E;1;1;1;1;1;0;0;;NA;p:9:1;",
                "#AD#15\r\n",
            ),
        ];
        for (text, answer) in cases {
            let e = line(with_checksum(text).trim_end()).expect_err("refused");
            assert_eq!(error_answer(&e), answer, "{text}: {e:?}");
        }
    }

    #[test]
    fn a_black_box_keeps_its_good_messages_when_one_is_bad() {
        let text = with_checksum(
            "#B#010125;112233;5128.1995;N;07126.0000;E;10;90;300;7|\
             010125;112243;5128.1995;N;07126.0000;E;10;90;300;7;1.0;0;0;;NA;ign:1:1|\
             990125;112253;5128.1995;N;07126.0000;E;10;90;300;7|",
        );
        let Ok(Packet::BlackBox(fixes)) = line(&text) else {
            panic!("{:?}", line(&text));
        };
        assert_eq!(fixes.len(), 3);
        assert!(fixes[0].as_ref().is_ok_and(|f| f.black_box));
        assert_eq!(fixes[1].as_ref().map(|f| f.ignition), Ok(Some(true)));
        assert_eq!(
            fixes[2].as_ref().map_err(|r| r.reason),
            Err(RejectReason::BadTime)
        );
    }

    #[test]
    fn ping_and_south_west_coordinates_decode() {
        assert_eq!(line("#P#"), Ok(Packet::Ping));
        let text = with_checksum("#SD#010125;000000;3346.0000;S;05823.0000;W;0;0;0;5;");
        let Ok(Packet::Short(fix)) = line(&text) else {
            panic!()
        };
        assert!(fix.position.lat < -33.7 && fix.position.lon < -58.3);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let samples: [&[u8]; 8] = [
            b"",
            b"#",
            b"##",
            b"#L#",
            b"#SD#;;;;;;;;;;",
            b"#B#|||",
            b"\xff\xfe#D#",
            b"#D#1;2;3",
        ];
        for s in samples {
            parse(s).ok();
        }
        let text = with_checksum("#SD#010125;112233;5128.1995;N;07126.0000;E;10;90;300;7;");
        for cut in 0..text.len() {
            parse(&text.as_bytes()[..cut]).ok();
        }
    }
}

//! Open311 GeoReport v2 (<https://wiki.open311.org/GeoReport_v2/>) over the registry.
//!
//! Routes (under `/open311/v2`), each with a `.json` or `.xml` suffix:
//! `GET services`, `GET services/{code}`, `GET requests`, `POST requests`
//! (`application/x-www-form-urlencoded`), `GET requests/{id}`, `GET tokens/{token}`.
//! `service_request_id` is the registration number (`109-2026-000123`); `token` is returned by
//! POST as well and stays resolvable. Errors use the spec's format:
//! `[{"code": 400, "description": "…"}]` / `<errors><error><code>…`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use chrono::{DateTime, NaiveDate, Utc};
use rand::Rng;
use serde_json::{Value, json};

use super::registry_api::RegistryApiState;
use crate::auth::{Identity, Role, Scope};
use crate::config::CategoryConfig;
use crate::domain::{Category, EvidenceRef, Observation, Position, Source, Status};
use crate::registry::{AppealFilter, AppealView};

/// Requests returned by `GET requests` at most (the spec's suggested default cap).
pub const MAX_REQUESTS: i64 = 1000;
/// Distinct `service_request_id`s in one `GET requests` (duplicates are dropped first).
pub const MAX_REQUEST_IDS: usize = 50;
/// Distinct `service_code`s in one `GET requests`.
pub const MAX_SERVICE_CODES: usize = 50;
/// Evidence entries of an appeal searched for its `media_url`.
const MEDIA_SEARCH_ENTRIES: i64 = 20;
/// Largest `POST requests` body.
pub const POST_BODY_LIMIT: usize = 64 * 1024;
/// Parameters in one `POST requests` at most.
const MAX_POST_PARAMS: usize = 64;
/// Default `GET requests` window when no dates are given (the spec's 90 days).
pub const DEFAULT_WINDOW_DAYS: i64 = 90;
/// The free-text attribute every service accepts.
const LANDMARK_ATTRIBUTE: &str = "landmark";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Json,
    Xml,
}

/// An Open311 error: HTTP status + description, rendered in the request's format.
#[derive(Debug)]
pub struct Open311Error {
    status: StatusCode,
    description: String,
    format: Format,
}

impl Open311Error {
    fn new(format: Format, status: StatusCode, description: impl Into<String>) -> Self {
        Self {
            status,
            description: description.into(),
            format,
        }
    }
}

impl IntoResponse for Open311Error {
    fn into_response(self) -> Response {
        let code = self.status.as_u16();
        let body = match self.format {
            Format::Json => json!([{ "code": code, "description": self.description }]).to_string(),
            Format::Xml => format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<errors><error><code>{code}</code><description>{}</description></error></errors>",
                escape(&self.description)
            ),
        };
        respond(self.status, self.format, body)
    }
}

/// An error for `path` in the GeoReport format, XML when the path asks for it (used by the
/// edge for unknown paths, bad targets and limits).
pub(super) fn error_response(path: &str, status: StatusCode, description: String) -> Response {
    let format = if path.ends_with(".xml") {
        Format::Xml
    } else {
        Format::Json
    };
    Open311Error::new(format, status, description).into_response()
}

fn respond(status: StatusCode, format: Format, body: String) -> Response {
    let content_type = match format {
        Format::Json => "application/json; charset=utf-8",
        Format::Xml => "text/xml; charset=utf-8",
    };
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Split `name.json` → (`name`, format); unknown suffix → a JSON error.
fn split_format(file: &str) -> Result<(&str, Format), Open311Error> {
    let (stem, ext) = file.rsplit_once('.').ok_or_else(|| {
        Open311Error::new(
            Format::Json,
            StatusCode::BAD_REQUEST,
            format!("`{file}` needs a format suffix: .json or .xml"),
        )
    })?;
    match ext {
        "json" => Ok((stem, Format::Json)),
        "xml" => Ok((stem, Format::Xml)),
        other => Err(Open311Error::new(
            Format::Json,
            StatusCode::BAD_REQUEST,
            format!("format `{other}` is not supported: use .json or .xml"),
        )),
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {}
            c => out.push(c),
        }
    }
    out
}

fn xml_value(out: &mut String, key: &str, v: &Value) {
    match v {
        Value::Null => out.push_str(&format!("<{key}/>")),
        Value::Array(list) => {
            out.push_str(&format!("<{key}>"));
            let child = key.strip_suffix('s').unwrap_or(key);
            for entry in list {
                xml_value(out, child, entry);
            }
            out.push_str(&format!("</{key}>"));
        }
        Value::Object(map) => {
            out.push_str(&format!("<{key}>"));
            for (k, v) in map {
                xml_value(out, k, v);
            }
            out.push_str(&format!("</{key}>"));
        }
        Value::String(s) => out.push_str(&format!("<{key}>{}</{key}>", escape(s))),
        other => out.push_str(&format!("<{key}>{other}</{key}>")),
    }
}

const XML_HEADER: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";

/// Render a JSON array of objects as `<root><item>…</item>…</root>`; nested arrays become
/// repeated child elements named by the singular (`attributes` → `attribute`).
fn to_xml(root: &str, item: &str, items: &[Value]) -> String {
    let mut out = String::from(XML_HEADER);
    out.push_str(&format!("<{root}>"));
    for entry in items {
        xml_value(&mut out, item, entry);
    }
    out.push_str(&format!("</{root}>"));
    out
}

fn render(
    format: Format,
    status: StatusCode,
    root: &str,
    item: &str,
    items: Vec<Value>,
) -> Response {
    let body = match format {
        Format::Json => Value::Array(items).to_string(),
        Format::Xml => to_xml(root, item, &items),
    };
    respond(status, format, body)
}

fn params(raw: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

fn check_jurisdiction(
    state: &RegistryApiState,
    p: &HashMap<String, String>,
    format: Format,
) -> Result<(), Open311Error> {
    match (&state.open311.jurisdiction_id, p.get("jurisdiction_id")) {
        (Some(ours), Some(theirs)) if !theirs.is_empty() && ours != theirs => {
            Err(Open311Error::new(
                format,
                StatusCode::NOT_FOUND,
                format!("jurisdiction_id `{theirs}` is not served here (this is `{ours}`)"),
            ))
        }
        _ => Ok(()),
    }
}

/// What every GET starts with: the resource name and format of `{name}.{json|xml}`,
/// the query parameters, and the jurisdiction check.
fn get_preamble<'f>(
    state: &RegistryApiState,
    file: &'f str,
    query: Option<&str>,
) -> Result<(&'f str, Format, HashMap<String, String>), Open311Error> {
    let (name, format) = split_format(file)?;
    let p = params(query.unwrap_or("").as_bytes());
    check_jurisdiction(state, &p, format)?;
    Ok((name, format, p))
}

fn service_json(c: &CategoryConfig) -> Value {
    let stages: Vec<String> = c
        .stages
        .iter()
        .map(|s| format!("{} within {} min", s.name, s.within.as_secs() / 60))
        .collect();
    json!({
        "service_code": c.code.as_str(),
        "service_name": c.name,
        "description": format!("{} (deadlines: {})", c.name, stages.join(", ")),
        "metadata": true,
        "type": "realtime",
        "keywords": c.code.as_str().replace('_', ","),
        "group": c.group.clone().unwrap_or_default(),
    })
}

async fn get_collection(
    State(state): State<RegistryApiState>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let (stem, format, p) = match get_preamble(&state, &file, query.as_deref()) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    match stem {
        "services" => {
            let items = state
                .intake
                .config()
                .categories
                .iter()
                .filter(|c| c.public)
                .map(service_json)
                .collect();
            render(format, StatusCode::OK, "services", "service", items)
        }
        "requests" => get_requests(&state, &p, format).await,
        other => Open311Error::new(
            format,
            StatusCode::NOT_FOUND,
            format!("no resource `{other}`"),
        )
        .into_response(),
    }
}

async fn get_service_definition(
    State(state): State<RegistryApiState>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let (code, format, _) = match get_preamble(&state, &file, query.as_deref()) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let Some(c) = state.intake.config().category(code).filter(|c| c.public) else {
        return Open311Error::new(
            format,
            StatusCode::NOT_FOUND,
            format!("service_code `{code}` is not a known service"),
        )
        .into_response();
    };
    let definition = json!({
        "service_code": c.code.as_str(),
        "attributes": [{
            "variable": true,
            "code": LANDMARK_ATTRIBUTE,
            "datatype": "string",
            "required": false,
            "datatype_description": "Free text",
            "order": 1,
            "description": "Nearby landmark, entrance or house number that helps the crew find the place",
            "values": [],
        }],
    });
    match format {
        Format::Json => respond(StatusCode::OK, format, definition.to_string()),
        Format::Xml => {
            let mut body = String::from(XML_HEADER);
            xml_value(&mut body, "service_definition", &definition);
            respond(StatusCode::OK, format, body)
        }
    }
}

fn request_json(state: &RegistryApiState, a: &AppealView, media_url: Option<String>) -> Value {
    let closed = matches!(a.status, Status::Closed | Status::Rejected);
    let service_name = state
        .intake
        .config()
        .category(&a.category)
        .map(|c| c.name.clone())
        .unwrap_or_else(|| a.category.clone());
    let notice = a
        .final_deadline()
        .map(|d| format!("{} by {}", d.stage, d.due_at.format("%Y-%m-%dT%H:%M:%SZ")));
    json!({
        "service_request_id": a.number,
        "status": if closed { "closed" } else { "open" },
        "status_notes": a.status.as_str(),
        "service_name": service_name,
        "service_code": a.category,
        "description": a.description,
        "agency_responsible": a.body_name.clone().or_else(|| a.body_id.clone()),
        "service_notice": notice,
        "requested_datetime": iso(a.registered_at),
        "updated_datetime": iso(a.updated_at),
        "expected_datetime": a.final_deadline().map(|d| iso(d.due_at)),
        "address": a.address,
        "address_id": Value::Null,
        "zipcode": Value::Null,
        "lat": a.position.lat,
        "long": a.position.lon,
        "media_url": media_url,
    })
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn media_url(state: &RegistryApiState, number: &str) -> Option<String> {
    // The first image among the first entries: bounded whatever the number of joined reports.
    let evidence = state
        .registry
        .evidence_page(number, Some(MEDIA_SEARCH_ENTRIES), 0)
        .await
        .ok()?;
    evidence.iter().find_map(|e| {
        e.items.as_array()?.iter().find_map(|i| {
            (i.get("kind")?.as_str()? == "image")
                .then(|| i.get("uri")?.as_str().map(str::to_owned))?
        })
    })
}

/// A W3C datetime (<https://www.w3.org/TR/NOTE-datetime>) as GeoReport v2 clients send it:
/// `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or a date with `Thh:mm`, `Thh:mm:ss` or `Thh:mm:ss.s` and
/// a zone (`Z` or `±hh:mm`). Dates without a time are midnight UTC.
fn w3c_datetime(v: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(v) {
        return Some(d.with_timezone(&Utc));
    }
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    match v.len() {
        4 => return midnight(NaiveDate::parse_from_str(&format!("{v}-01-01"), "%Y-%m-%d").ok()?),
        7 => return midnight(NaiveDate::parse_from_str(&format!("{v}-01"), "%Y-%m-%d").ok()?),
        10 => return midnight(NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()?),
        _ => {}
    }
    // `YYYY-MM-DDThh:mm` + zone: add the seconds RFC 3339 requires.
    let (date_time, zone) = v.split_at_checked(16)?;
    if date_time
        .as_bytes()
        .get(10)
        .is_some_and(|b| *b == b'T' || *b == b't')
    {
        let with_seconds = format!("{date_time}:00{zone}");
        return DateTime::parse_from_rfc3339(&with_seconds)
            .ok()
            .map(|d| d.with_timezone(&Utc));
    }
    None
}

fn parse_date(format: Format, key: &str, v: &str) -> Result<DateTime<Utc>, Open311Error> {
    let bad = |message: String| Open311Error::new(format, StatusCode::BAD_REQUEST, message);
    let shown: String = v.chars().take(64).collect();
    let at = w3c_datetime(v).ok_or_else(|| {
        bad(format!(
            "{key} `{shown}` is not a W3C datetime such as 2026-03-02T10:00:00Z or 2026-03-02T10:00+05:00"
        ))
    })?;
    super::input::query_date(key, at).map_err(|e| bad(e.to_string()))?;
    Ok(at)
}

async fn get_requests(
    state: &RegistryApiState,
    p: &HashMap<String, String>,
    format: Format,
) -> Response {
    let bad = |d: String| Open311Error::new(format, StatusCode::BAD_REQUEST, d).into_response();
    if let Some(ids) = p.get("service_request_id") {
        let mut wanted: Vec<&str> = Vec::new();
        for id in ids.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if !wanted.contains(&id) {
                wanted.push(id);
            }
            if wanted.len() > MAX_REQUEST_IDS {
                return bad(format!(
                    "service_request_id lists more than {MAX_REQUEST_IDS} distinct ids"
                ));
            }
        }
        let mut items = Vec::new();
        for id in wanted {
            match state.registry.appeal(id).await {
                Ok(Some(a)) => {
                    let media = media_url(state, &a.number).await;
                    items.push(request_json(state, &a, media));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "open311 request lookup failed");
                    return Open311Error::new(
                        format,
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the registry is unavailable",
                    )
                    .into_response();
                }
            }
        }
        return render(format, StatusCode::OK, "service_requests", "request", items);
    }
    let mut filter = AppealFilter {
        limit: Some(MAX_REQUESTS),
        ..Default::default()
    };
    if let Some(codes) = p.get("service_code") {
        for code in codes.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            if !filter.categories.iter().any(|c| c == code) {
                filter.categories.push(code.to_owned());
            }
        }
        if filter.categories.len() > MAX_SERVICE_CODES {
            return bad(format!(
                "service_code lists more than {MAX_SERVICE_CODES} distinct codes"
            ));
        }
        if filter.categories.is_empty() {
            return bad("service_code is empty".into());
        }
    }
    let start = match p
        .get("start_date")
        .map(|v| parse_date(format, "start_date", v))
        .transpose()
    {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let end = match p
        .get("end_date")
        .map(|v| parse_date(format, "end_date", v))
        .transpose()
    {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let now = state.registry.now();
    let end_or_now = end.unwrap_or_else(|| {
        now.checked_add_signed(chrono::Duration::seconds(1))
            .unwrap_or(now)
    });
    filter.registered_to = Some(end_or_now);
    filter.registered_from = Some(start.unwrap_or_else(|| {
        end_or_now
            .checked_sub_signed(chrono::Duration::days(DEFAULT_WINDOW_DAYS))
            .unwrap_or(end_or_now)
    }));
    let (mut open, mut closed) = (false, false);
    if let Some(list) = p.get("status") {
        for status in list.split(',').map(str::trim) {
            match status {
                "open" => open = true,
                "closed" => closed = true,
                other => {
                    let shown: String = other.chars().take(64).collect();
                    return bad(format!("status `{shown}` must be `open` or `closed`"));
                }
            }
        }
    }
    // Both (or neither) mean every request.
    filter.open_only = open && !closed;
    filter.closed_only = closed && !open;
    let appeals = match state.registry.search(&filter).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "open311 search failed");
            return Open311Error::new(
                format,
                StatusCode::SERVICE_UNAVAILABLE,
                "the registry is unavailable",
            )
            .into_response();
        }
    };
    let config = state.intake.config();
    let items = appeals
        .iter()
        .filter(|a| config.category(&a.category).is_none_or(|c| c.public))
        .map(|a| request_json(state, a, None))
        .collect();
    render(format, StatusCode::OK, "service_requests", "request", items)
}

async fn get_request(
    State(state): State<RegistryApiState>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let (id, format, _) = match get_preamble(&state, &file, query.as_deref()) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    match state.registry.appeal(id).await {
        Ok(Some(a)) => {
            let media = media_url(&state, &a.number).await;
            render(
                format,
                StatusCode::OK,
                "service_requests",
                "request",
                vec![request_json(&state, &a, media)],
            )
        }
        Ok(None) => Open311Error::new(
            format,
            StatusCode::NOT_FOUND,
            format!("service_request_id `{id}` not found"),
        )
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "open311 request lookup failed");
            Open311Error::new(
                format,
                StatusCode::SERVICE_UNAVAILABLE,
                "the registry is unavailable",
            )
            .into_response()
        }
    }
}

async fn get_token(State(state): State<RegistryApiState>, Path(file): Path<String>) -> Response {
    let (token, format) = match split_format(&file) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    match state
        .registry
        .number_for_source_ref(&token_ref(token))
        .await
    {
        Ok(Some(number)) => render(
            format,
            StatusCode::OK,
            "service_requests",
            "request",
            vec![json!({ "service_request_id": number, "token": token })],
        ),
        Ok(None) => Open311Error::new(
            format,
            StatusCode::NOT_FOUND,
            format!("token `{token}` not found"),
        )
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "open311 token lookup failed");
            Open311Error::new(
                format,
                StatusCode::SERVICE_UNAVAILABLE,
                "the registry is unavailable",
            )
            .into_response()
        }
    }
}

fn token_ref(token: &str) -> String {
    format!("open311:{token}")
}

/// A POST body through the same checks as `POST requests` (fuzzing): every parameter
/// bounded, every value also parsed as a W3C datetime. Whether all parameters passed.
pub(super) fn check_form_body(body: &[u8]) -> bool {
    let p = params(body);
    for value in p.values() {
        let _date = w3c_datetime(value);
    }
    check_post_params(&p).is_ok()
}

/// Every POST parameter within its bound and free of NUL (PostgreSQL refuses NUL in text).
fn check_post_params(p: &HashMap<String, String>) -> Result<(), super::input::InputError> {
    use super::input::{self, InputError, MAX_ADDRESS, MAX_DESCRIPTION, MAX_ID, MAX_NAME, MAX_URL};
    if p.len() > MAX_POST_PARAMS {
        return Err(InputError::Invalid {
            field: "request".into(),
            message: format!("has {} parameters; at most {MAX_POST_PARAMS}", p.len()),
        });
    }
    for (name, value) in p {
        let shown: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
        input::text("parameter name", name, MAX_ID)?;
        let max = match name.as_str() {
            "description" => MAX_DESCRIPTION,
            "address_string" => MAX_ADDRESS,
            "media_url" => MAX_URL,
            "first_name" | "last_name" | "email" | "phone" | "account_id" | "device_id" => MAX_NAME,
            n if n.starts_with("attribute[") => MAX_ADDRESS,
            _ => MAX_ID,
        };
        input::text(&shown, value, max)?;
    }
    Ok(())
}

/// Turn POST parameters into an observation, or the spec error explaining what is wrong.
fn citizen_observation(
    state: &RegistryApiState,
    p: &HashMap<String, String>,
    format: Format,
    token: &str,
    now: DateTime<Utc>,
    actor: String,
) -> Result<Observation, Open311Error> {
    let bad = |d: String| Open311Error::new(format, StatusCode::BAD_REQUEST, d);
    check_jurisdiction(state, p, format)?;
    check_post_params(p).map_err(|e| bad(e.to_string()))?;
    let code = p
        .get("service_code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| bad("service_code is required".into()))?;
    if state
        .intake
        .config()
        .category(code)
        .is_none_or(|c| !c.public)
    {
        return Err(Open311Error::new(
            format,
            StatusCode::NOT_FOUND,
            format!(
                "service_code `{code}` is not a known service; see services.{}",
                match format {
                    Format::Json => "json",
                    Format::Xml => "xml",
                }
            ),
        ));
    }
    let category = Category::new(code).map_err(|e| bad(e.to_string()))?;
    let coord = |key: &str| -> Result<Option<f64>, Open311Error> {
        p.get(key)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.trim()
                    .parse::<f64>()
                    .map_err(|_| bad(format!("{key} `{v}` is not a number")))
            })
            .transpose()
    };
    let position = match (coord("lat")?, coord("long")?) {
        (Some(lat), Some(lon)) => {
            let pos = Position::new(lat, lon);
            if !pos.is_valid() {
                return Err(bad(format!(
                    "lat/long {lat},{lon} is not a valid WGS84 position"
                )));
            }
            pos
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(bad("lat and long must be given together".into()));
        }
        (None, None) if p.contains_key("address_string") || p.contains_key("address_id") => {
            return Err(bad(
                "a location is required as lat and long: this jurisdiction does not geocode address_string or address_id".into(),
            ));
        }
        (None, None) => return Err(bad("a location is required: lat and long".into())),
    };
    if state.intake.city().district_at(position).is_none() {
        return Err(bad(format!(
            "lat/long {},{} is outside the city",
            position.lat, position.lon
        )));
    }
    let contact = ["email", "phone", "account_id", "device_id"]
        .iter()
        .find_map(|k| p.get(*k).filter(|v| !v.is_empty()))
        .map_or_else(|| "anonymous".to_owned(), Clone::clone);
    let mut description = p.get("description").cloned().filter(|d| !d.is_empty());
    if let Some(d) = &description
        && d.chars().count() > 4000
    {
        return Err(bad(format!(
            "description is {} characters; at most 4000",
            d.chars().count()
        )));
    }
    let attributes: serde_json::Map<String, Value> = p
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("attribute[")?.strip_suffix(']')?;
            Some((name.to_owned(), Value::String(v.clone())))
        })
        .collect();
    if let Some(landmark) = attributes.get(LANDMARK_ATTRIBUTE).and_then(Value::as_str) {
        description = Some(match description {
            Some(d) => format!("{d} (landmark: {landmark})"),
            None => format!("landmark: {landmark}"),
        });
    }
    let mut evidence = vec![EvidenceRef {
        kind: "citizen_report".into(),
        uri: None,
        data: Some(json!({
            "first_name": p.get("first_name"),
            "last_name": p.get("last_name"),
            "contact": contact,
            "attributes": attributes,
        })),
    }];
    if let Some(url) = p.get("media_url").filter(|u| !u.is_empty()) {
        super::input::media_url("media_url", url).map_err(|e| bad(e.to_string()))?;
        evidence.push(EvidenceRef {
            kind: "image".into(),
            uri: Some(url.clone()),
            data: None,
        });
    }
    Ok(Observation {
        category,
        source: Source::Citizen,
        source_ref: token_ref(token),
        position,
        uncertainty_m: None,
        address: p.get("address_string").cloned().filter(|a| !a.is_empty()),
        description,
        actor,
        observed_at: now,
        evidence,
    })
}

/// Who files this request: a key with `open311:write` (in `api_key`, as GeoReport v2 clients
/// send it, or `Authorization: Bearer`), or a signed-in inspector or supervisor. The actor is
/// that identity; the citizen's contact details stay in the evidence, never in the actor.
async fn submitter(
    state: &RegistryApiState,
    identity: Option<Identity>,
    p: &HashMap<String, String>,
    format: Format,
) -> Result<String, Open311Error> {
    let forbidden = |d: &str| Open311Error::new(format, StatusCode::FORBIDDEN, d);
    let allowed = |id: &Identity| {
        id.has_scope(Scope::Open311Write)
            || id.has_role(Role::Inspector)
            || id.has_role(Role::Supervisor)
    };
    if let Some(identity) = identity {
        return if allowed(&identity) {
            Ok(identity.actor())
        } else {
            Err(forbidden("this key or role may not post requests"))
        };
    }
    let Some(key) = p.get("api_key").filter(|k| !k.is_empty()) else {
        return Err(forbidden("api_key is required to post a request"));
    };
    if state.open311.api_keys.contains(key) {
        return Ok("key:site-toml".to_owned());
    }
    match state.auth.key(key).await {
        Ok(Some(identity)) if allowed(&identity) => Ok(identity.actor()),
        Ok(Some(_)) => Err(forbidden("this api_key may not post requests")),
        Ok(None) => Err(forbidden("api_key is not valid")),
        Err(error) => {
            tracing::error!(%error, "api_key lookup failed");
            Err(Open311Error::new(
                format,
                StatusCode::SERVICE_UNAVAILABLE,
                "the registry is unavailable",
            ))
        }
    }
}

async fn post_request(
    State(state): State<RegistryApiState>,
    identity: Option<Extension<Identity>>,
    Path(file): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (stem, format) = match split_format(&file) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            return Open311Error::new(format, rejection.status(), rejection.body_text())
                .into_response();
        }
    };
    if stem != "requests" {
        return Open311Error::new(
            format,
            StatusCode::NOT_FOUND,
            format!("cannot POST to `{stem}`"),
        )
        .into_response();
    }
    let p = params(&body);
    let token = format!("{:032x}", rand::rng().random::<u128>());
    let actor = match submitter(&state, identity.map(|Extension(i)| i), &p, format).await {
        Ok(actor) => actor,
        Err(e) => return e.into_response(),
    };
    let obs = match citizen_observation(&state, &p, format, &token, state.registry.now(), actor) {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let plan = match state.intake.plan(&obs) {
        Ok(plan) => plan,
        Err(e) => {
            return Open311Error::new(format, StatusCode::BAD_REQUEST, e.to_string())
                .into_response();
        }
    };
    let submission = match state.registry.submit(&obs, &plan).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "open311 request could not be registered");
            return Open311Error::new(
                format,
                StatusCode::SERVICE_UNAVAILABLE,
                "the registry is unavailable",
            )
            .into_response();
        }
    };
    let notice = match (&plan.routing.body_name, submission.outcome) {
        (_, crate::registry::SubmitOutcome::Joined) => {
            "this problem was already reported; your report was added to the existing request"
                .to_owned()
        }
        (Some(body), _) => format!("registered; responsible: {body}"),
        (None, _) => "registered; an inspector will route it".to_owned(),
    };
    render(
        format,
        StatusCode::CREATED,
        "service_requests",
        "request",
        vec![json!({
            "service_request_id": submission.number,
            "token": token,
            "service_notice": notice,
            "account_id": Value::Null,
        })],
    )
}

/// The Open311 routes under `/open311/v2`.
pub(super) fn router(state: RegistryApiState) -> Router {
    let collection = get(get_collection)
        .post(post_request)
        .layer(DefaultBodyLimit::max(POST_BODY_LIMIT));
    Router::new()
        .route("/open311/v2/{file}", collection)
        .route("/open311/v2/services/{file}", get(get_service_definition))
        .route("/open311/v2/requests/{file}", get(get_request))
        .route("/open311/v2/tokens/{file}", get(get_token))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_markup_and_drops_control_characters() {
        let items = vec![json!({ "description": "pipe <burst> & \"flooding\" 'yard'\u{1}" })];
        let xml = to_xml("service_requests", "request", &items);
        assert!(
            xml.ends_with("<service_requests><request><description>pipe &lt;burst&gt; &amp; &quot;flooding&quot; &apos;yard&apos;</description></request></service_requests>"),
            "{xml}"
        );
    }

    #[test]
    fn w3c_datetimes_are_accepted_with_or_without_seconds_and_as_bare_dates() {
        let at = |v: &str| w3c_datetime(v).map(|d| d.to_rfc3339());
        assert_eq!(
            at("2026-03-02T10:00:00Z").as_deref(),
            Some("2026-03-02T10:00:00+00:00")
        );
        assert_eq!(
            at("2026-03-02T10:00Z").as_deref(),
            Some("2026-03-02T10:00:00+00:00")
        );
        assert_eq!(
            at("2026-03-02T15:00+05:00").as_deref(),
            Some("2026-03-02T10:00:00+00:00")
        );
        assert_eq!(
            at("2026-03-02T10:00:00.5Z").as_deref(),
            Some("2026-03-02T10:00:00.500+00:00")
        );
        assert_eq!(
            at("2026-03-02").as_deref(),
            Some("2026-03-02T00:00:00+00:00")
        );
        assert_eq!(at("2026-03").as_deref(), Some("2026-03-01T00:00:00+00:00"));
        assert_eq!(at("2026").as_deref(), Some("2026-01-01T00:00:00+00:00"));
        for bad in [
            "2026-03-02T10Z",
            "2026-13-01",
            "2026-03-02T10:00",
            "yesterday",
            "",
            "2026-03-02T1:00Z",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_format_suffix_decides_json_or_xml_and_anything_else_is_an_error() {
        assert_eq!(
            split_format("requests.json")
                .map(|(s, f)| (s.to_owned(), f))
                .ok(),
            Some(("requests".into(), Format::Json))
        );
        assert_eq!(
            split_format("109-2026-000001.xml")
                .map(|(s, f)| (s.to_owned(), f))
                .ok(),
            Some(("109-2026-000001".into(), Format::Xml))
        );
        assert!(split_format("requests").is_err());
        assert!(split_format("requests.csv").is_err());
    }
}

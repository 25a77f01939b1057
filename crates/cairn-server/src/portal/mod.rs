//! The restore portal: its pages (one HTML page, one JavaScript module and one style sheet,
//! embedded in the binary: no CDN, nothing fetched at run time) and the safe preview of an
//! item (`cairn_app::preview`).
//!
//! The pages are a front end of the API, nothing more: they call the same `/api/v1` routes
//! with the same roles, under a strict Content Security Policy (no inline script or style),
//! and set every piece of data as text. A message's HTML is shown only as the preview made
//! it, sanitised, inside an `<iframe sandbox>` that may not run scripts. Attachments and
//! files leave only as downloads (`Content-Disposition: attachment`, `nosniff`), except
//! the few types a browser shows without running anything of theirs (text, raster images,
//! PDF), which may be asked for inline in a sandbox.
//!
//! Authorisation is the API's one middleware: these routes are in its table
//! (`route_action`): the pages need no token, a preview is reading content.

use crate::State;
use crate::api::{ApiError, ErrorBody, ErrorDetail};
use crate::auth::Caller;
use axum::Json;
use axum::extract::{Path, Query, State as Axum};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cairn_app::preview::{self, Located, Preview};
use serde::Deserialize;
use std::sync::Arc;

type Shared = Arc<State>;

const INDEX: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// The policy the pages are written for: no inline script or style, nothing from elsewhere.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

/// Downloads of item content: never rendered as a page of this origin.
const DOWNLOAD_CSP: &str = "sandbox; default-src 'none'; img-src 'self' data:";

/// A PDF shown inline: browsers refuse their viewer in a sandbox; it still loads nothing.
const PDF_CSP: &str = "default-src 'none'; img-src 'self' data:";

/// The portal's routes: pages and assets (no token), the preview (reading content).
pub fn routes() -> axum::Router<Shared> {
    axum::Router::new()
        .route("/", get(index))
        .route("/assets/{*path}", get(asset))
        .route("/api/v1/preview", get(show))
        .route("/api/v1/preview/attachment", get(attachment))
        .route("/api/v1/preview/file", get(file))
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX)
}

async fn asset(Path(path): Path<String>) -> Response {
    match path.as_str() {
        "app.js" => page("text/javascript; charset=utf-8", APP_JS),
        "app.css" => page("text/css; charset=utf-8", APP_CSS),
        _ => not_found(format!("no asset {path}")),
    }
}

fn not_found(message: String) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(ErrorBody {
            error: ErrorDetail {
                code: "not-found".into(),
                message,
                hint: Some(
                    "GET /api/v1/ls?target=RESOURCE@POINT lists the items of a restore point"
                        .into(),
                ),
            },
        }),
    )
        .into_response()
}

fn error(status: StatusCode, code: &str, message: String, hint: &str) -> Response {
    (
        status,
        Json(ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message,
                hint: Some(hint.into()),
            },
        }),
    )
        .into_response()
}

/// An item of a restore point.
#[derive(Deserialize)]
pub struct ItemQuery {
    /// `RESOURCE[@POINT]`.
    pub target: String,
    /// An item's path, as `ls` lists it.
    pub path: String,
    pub tenant: Option<String>,
    /// An attachment's position (`/api/v1/preview/attachment`).
    pub index: Option<usize>,
    /// Files: shown by the browser when it is text, a raster image or a PDF.
    #[serde(default)]
    pub inline: bool,
}

/// Finds the item for `caller`: a resource it may not see answers as one that does not
/// exist, as everywhere in the API.
async fn locate(state: &Shared, caller: &Caller, q: &ItemQuery) -> Result<Located, Response> {
    let tenant = match (&caller.tenant, &q.tenant) {
        (None, a) => a.clone(),
        (Some(t), None) => Some(t.clone()),
        (Some(t), Some(a)) if t == a => Some(a.clone()),
        (Some(_), Some(a)) => {
            return Err(error(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("the token is limited to another tenant than {a}"),
                "leave tenant out: the token's own is used",
            ));
        }
    };
    let ws = state.ws.clone();
    let (target, path) = (q.target.clone(), q.path.clone());
    let found = tokio::task::spawn_blocking(move || {
        preview::locate(&ws, tenant.as_deref(), &target, &path)
    })
    .await
    .map_err(|e| ApiError::from(anyhow::anyhow!("a task failed: {e}")).into_response())?;
    let missing = || not_found(format!("{} holds no item {}", q.target, q.path));
    match found {
        Ok(Some(at))
            if caller.sees_resource(&at.selected.resource.tenant, &at.selected.resource.name) =>
        {
            Ok(at)
        }
        Ok(_) => Err(missing()),
        Err(e) => {
            let r = ApiError::from(e).into_response();
            // A resource the caller may not see is not told apart from one that is unknown.
            if caller.resource.is_some() && r.status() == StatusCode::NOT_FOUND {
                return Err(missing());
            }
            Err(r)
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| ApiError::from(e).into_response()),
        Err(e) => Err(ApiError::from(anyhow::anyhow!("a task failed: {e}")).into_response()),
    }
}

/// `GET /api/v1/preview?target=RESOURCE@POINT&path=…`: the item's headers, sanitised HTML,
/// text, attachments, card or content type.
async fn show(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Query(q): Query<ItemQuery>,
) -> Result<Json<Preview>, Response> {
    let at = locate(&state, &caller, &q).await?;
    let ws = state.ws.clone();
    Ok(Json(blocking(move || preview::preview(&ws, &at)).await?))
}

/// `GET /api/v1/preview/attachment?target&path&index`: an attachment's bytes, as a
/// download.
async fn attachment(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Query(q): Query<ItemQuery>,
) -> Result<Response, Response> {
    let Some(index) = q.index else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "which attachment: index is missing".into(),
            "GET /api/v1/preview lists a message's attachments with their index",
        ));
    };
    let at = locate(&state, &caller, &q).await?;
    let ws = state.ws.clone();
    match blocking(move || preview::attachment(&ws, &at, index)).await? {
        Some(d) => Ok(download(d, false)),
        None => Err(not_found(format!("{} has no attachment {index}", q.path))),
    }
}

/// `GET /api/v1/preview/file?target&path[&inline=true]`: an item's content (a file as it
/// was, a message's MIME, an event's JSON), as a download; with `inline`, shown by the
/// browser when it is a type that runs nothing (text, raster image, PDF).
async fn file(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Query(q): Query<ItemQuery>,
) -> Result<Response, Response> {
    let at = locate(&state, &caller, &q).await?;
    let ws = state.ws.clone();
    let d = blocking(move || preview::content(&ws, &at)).await?;
    Ok(download(d, q.inline))
}

/// Bytes of an item as a response: a download unless `inline` (a previewable type).
fn download(d: preview::Download, inline: bool) -> Response {
    let inline = inline && preview::previewable(&d.content_type);
    let csp = if inline && d.content_type == "application/pdf" {
        PDF_CSP
    } else {
        DOWNLOAD_CSP
    };
    let content_type = if inline {
        d.content_type.as_str()
    } else {
        "application/octet-stream"
    };
    let disposition = format!(
        "{}; filename=\"{}\"; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        ascii_name(&d.name),
        percent(&d.name)
    );
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_str(content_type)
                    .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(csp),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        d.bytes,
    )
        .into_response()
}

/// A file name for the plain `filename=` parameter: ASCII letters, digits and a few
/// harmless marks; the real name is in `filename*`.
fn ascii_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " -_.()[]+,@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.trim_matches(['_', ' ', '.']).is_empty() {
        "download".into()
    } else {
        s
    }
}

/// RFC 5987 percent-encoding of a UTF-8 name.
fn percent(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_cannot_break_the_header() {
        let n = "a\"b\r\n;c/../é.pdf";
        assert_eq!(ascii_name(n), "a_b___c_..__.pdf");
        assert_eq!(ascii_name("<img src=x>"), "_img src_x_");
        assert_eq!(ascii_name("../"), "download");
        assert_eq!(percent("é a"), "%C3%A9%20a");
        let r = download(
            preview::Download {
                name: n.into(),
                content_type: "text/html".into(),
                bytes: b"<script>".to_vec(),
            },
            true,
        );
        let h = r.headers();
        assert_eq!(
            h[header::CONTENT_TYPE],
            "application/octet-stream",
            "never HTML"
        );
        assert!(
            h[header::CONTENT_DISPOSITION]
                .to_str()
                .unwrap()
                .starts_with("attachment;")
        );
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }

    #[test]
    fn pages_have_no_inline_script_or_style() {
        let lower = INDEX.to_ascii_lowercase();
        assert!(!lower.contains("<script>") && !lower.contains("style="));
        assert!(!lower.contains("<style"));
        // No event handler attribute (` onclick=`).
        for (i, _) in lower.match_indices(" on") {
            let rest = &lower[i + 3..];
            let word: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
            assert!(!rest[word.len()..].starts_with('='), "handler at {i}");
        }
        assert!(!APP_JS.contains("innerHTML") && !APP_JS.contains("outerHTML"));
        assert!(!APP_JS.contains("insertAdjacentHTML") && !APP_JS.contains("eval("));
    }
}

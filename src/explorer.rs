//! The GraphiQL explorer, served fully offline.
//!
//! tally is often run behind firewalls, so the explorer page must not load anything from
//! another origin: no CDN, no web fonts, no source maps. The GraphiQL 3.9.0 UMD bundle (with
//! its fonts inlined as `data:` URIs), React 18.3.1 and ReactDOM 18.3.1 are vendored under
//! `assets/explorer/vendor/` (with their licenses, see `assets/explorer/vendor/README.md`) and
//! embedded into the binary here. The page also carries a `Content-Security-Policy` that only
//! allows same-origin scripts, styles, images and `fetch`es, so a stray external URL in the
//! bundle would fail harmlessly instead of leaking a request.
//!
//! Routes (see [`router`]):
//!
//! - `GET /`: the explorer page (`text/html; charset=utf-8`, `Cache-Control: no-cache`).
//! - `GET /explorer/{file}`: the embedded assets, with their content type and
//!   `Cache-Control: public, max-age=86400`; any other file name is a 404.
//!
//! The page loads its assets with URLs relative to itself (`explorer/…`) and sends GraphQL
//! requests to `graphql` relative to itself, i.e. `POST /graphql` on the same origin (or
//! `<prefix>/graphql` when a reverse proxy mounts tally under a prefix).

use axum::{
    Router,
    body::Bytes,
    extract::Path,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

/// The explorer page's `Content-Security-Policy` header: the policy of its `<meta>` tag
/// (same-origin scripts, styles, fonts, images and `fetch`es; inline styles and `data:`
/// fonts and images, which GraphiQL's bundle uses), plus what only a header can say: no
/// framing by another site.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; \
     connect-src 'self'; base-uri 'self'; form-action 'none'; frame-ancestors 'self'";

/// The query shown in the editor on a first visit (GraphiQL then remembers the user's own).
pub const DEFAULT_QUERY: &str = "{\n  __schema {\n    queryType {\n      name\n    }\n  }\n}\n";

/// The page template; [`DEFAULT_QUERY_MARKER`] is replaced by [`index_html`].
const INDEX_TEMPLATE: &str = include_str!("../assets/explorer/index.html");

/// The placeholder in `index.html` that is replaced by the default query as a JSON string.
const DEFAULT_QUERY_MARKER: &str = "/*DEFAULT_QUERY*/";

/// `Cache-Control` of the embedded assets.
const ASSET_CACHE_CONTROL: &str = "public, max-age=86400";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// One embedded file served under `/explorer/{name}`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

/// Everything served under `/explorer/`: the scripts and stylesheet the page loads, plus the
/// license texts (so that the binary carries them, and users can read them).
const ASSETS: &[Asset] = &[
    Asset {
        name: "tally-explorer.js",
        content_type: JS,
        bytes: include_bytes!("../assets/explorer/tally-explorer.js"),
    },
    Asset {
        name: "graphiql.min.js",
        content_type: JS,
        bytes: include_bytes!("../assets/explorer/vendor/graphiql.min.js"),
    },
    Asset {
        name: "graphiql.min.css",
        content_type: CSS,
        bytes: include_bytes!("../assets/explorer/vendor/graphiql.min.css"),
    },
    Asset {
        name: "react.production.min.js",
        content_type: JS,
        bytes: include_bytes!("../assets/explorer/vendor/react.production.min.js"),
    },
    Asset {
        name: "react-dom.production.min.js",
        content_type: JS,
        bytes: include_bytes!("../assets/explorer/vendor/react-dom.production.min.js"),
    },
    Asset {
        name: "graphiql.LICENSE",
        content_type: TEXT,
        bytes: include_bytes!("../assets/explorer/vendor/graphiql.LICENSE"),
    },
    Asset {
        name: "graphiql.THIRD-PARTY-LICENSES.txt",
        content_type: TEXT,
        bytes: include_bytes!("../assets/explorer/vendor/graphiql.THIRD-PARTY-LICENSES.txt"),
    },
    Asset {
        name: "react.LICENSE",
        content_type: TEXT,
        bytes: include_bytes!("../assets/explorer/vendor/react.LICENSE"),
    },
    Asset {
        name: "react-dom.LICENSE",
        content_type: TEXT,
        bytes: include_bytes!("../assets/explorer/vendor/react-dom.LICENSE"),
    },
];

/// The explorer routes (`GET /` and `GET /explorer/{file}`), with [`DEFAULT_QUERY`] as the
/// editor's initial query. Merge it into the application router, e.g.
/// `app.merge(explorer::router())`.
pub fn router() -> Router {
    router_with_default_query(DEFAULT_QUERY)
}

/// Like [`router`], with another initial query in the editor (e.g. one built from the loaded
/// models). The page is rendered once, here.
pub fn router_with_default_query(default_query: &str) -> Router {
    let html = Bytes::from(index_html(default_query));
    Router::new()
        .route(
            "/",
            get(move || {
                let html = html.clone();
                async move {
                    (
                        [
                            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                            (header::CACHE_CONTROL, "no-cache"),
                            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
                        ],
                        html,
                    )
                }
            }),
        )
        .route("/explorer/{file}", get(asset))
}

/// The explorer page with `default_query` as the editor's initial query.
///
/// The query is embedded as a JSON string inside a `<script type="application/json">` element;
/// `<`, `>` and `&` are written as `\u003c`/`\u003e`/`\u0026` so that no query text can close
/// the element.
pub fn index_html(default_query: &str) -> String {
    INDEX_TEMPLATE.replacen(DEFAULT_QUERY_MARKER, &json_string(default_query), 1)
}

/// Serves one embedded asset, or 404.
async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, ASSET_CACHE_CONTROL),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            a.bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `s` as a JSON string literal that is also safe inside an HTML `<script>` element.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::{body::Body, http::Request};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get_path(app: Router, path: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let res = app
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, headers, body)
    }

    #[test]
    fn template_has_exactly_one_marker() {
        assert_eq!(INDEX_TEMPLATE.matches(DEFAULT_QUERY_MARKER).count(), 1);
    }

    #[tokio::test]
    async fn serves_index_with_default_query() {
        let (status, headers, body) = get_path(router(), "/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        let html = String::from_utf8(body).unwrap();
        assert!(html.contains("<title>tally explorer</title>"));
        assert!(!html.contains(DEFAULT_QUERY_MARKER));
        assert!(html.contains(
            r#">"{\n  __schema {\n    queryType {\n      name\n    }\n  }\n}\n"</script>"#
        ));
    }

    #[test]
    fn default_query_cannot_break_out_of_the_script_element() {
        let html = index_html("{ a } </script><script>alert(1)</script> \"q\" \\ \u{1}");
        assert!(!html.contains("</script><script>alert"));
        assert!(html.contains(r#""{ a } \u003c/script\u003e\u003cscript\u003ealert(1)\u003c/script\u003e \"q\" \\ \u0001""#));
    }

    #[tokio::test]
    async fn serves_every_asset_with_type_and_cache_control() {
        for a in ASSETS {
            let (status, headers, body) =
                get_path(router(), &format!("/explorer/{}", a.name)).await;
            assert_eq!(status, StatusCode::OK, "{}", a.name);
            assert_eq!(headers[header::CONTENT_TYPE], a.content_type, "{}", a.name);
            assert_eq!(
                headers[header::CACHE_CONTROL],
                ASSET_CACHE_CONTROL,
                "{}",
                a.name
            );
            assert_eq!(body, a.bytes, "{}", a.name);
        }
    }

    #[tokio::test]
    async fn unknown_assets_are_404() {
        for path in [
            "/explorer/nope.js",
            "/explorer/graphiql.min.js.map",
            "/explorer/..%2Fmain.rs",
        ] {
            let (status, _, _) = get_path(router(), path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        }
    }

    #[test]
    fn page_references_only_embedded_assets_and_no_source_maps() {
        for src in INDEX_TEMPLATE.split("\"explorer/").skip(1) {
            let name = src.split('"').next().unwrap();
            assert!(
                ASSETS.iter().any(|a| a.name == name),
                "{name} is not embedded"
            );
        }
        for a in ASSETS {
            let text = String::from_utf8_lossy(a.bytes);
            assert!(!text.contains("sourceMappingURL"), "{}", a.name);
        }
    }
}

//! The dashboard, served fully offline at `/dashboard`.
//!
//! A page for the people the numbers are for: the SaaS lifecycle (stage tiles, cohort
//! conversion, churn trend, the journey and transitions Sankeys with a drill-down to users),
//! the gym conversions, and an explorer of every model's metrics — each as of any instant.
//! It is built only on the public GraphQL API: the page sends `POST graphql` (relative to
//! itself) and draws what comes back, so anything it shows any client can ask for.
//!
//! Like the explorer (`src/explorer.rs`), nothing is loaded from another origin: the page, its
//! script and stylesheet, and Apache ECharts 5.6.0 (vendored under `assets/dashboard/vendor/`
//! with its licence and notice, see the README there) are embedded into the binary here, and
//! the page is sent with a `Content-Security-Policy` that allows only same-origin scripts,
//! styles, images and `fetch`es.
//!
//! Routes (see [`router`]):
//!
//! - `GET /dashboard`: the page (`text/html; charset=utf-8`, `Cache-Control: no-cache`).
//!   Its state (page, model, metrics, dimensions, filters, asOf, …) lives in the query
//!   string, so a link reproduces the view.
//! - `GET /dashboard/`: a redirect to `/dashboard` (the page's relative URLs assume it).
//! - `GET /dashboard/{file}`: the embedded assets, with their content type and
//!   `Cache-Control: public, max-age=86400`; any other file name is a 404.

use axum::{
    Router,
    extract::Path,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

/// The page.
const INDEX_HTML: &str = include_str!("../assets/dashboard/index.html");

/// The policy the page is sent with: same origin only (inline styles are allowed because the
/// chart library positions its tooltips with `style` attributes).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; \
     base-uri 'self'; form-action 'none'; frame-ancestors 'self'";

/// `Cache-Control` of the embedded assets.
const ASSET_CACHE_CONTROL: &str = "public, max-age=86400";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// One embedded file served under `/dashboard/{name}`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

/// Everything served under `/dashboard/`: the page's script and stylesheet, the chart library
/// and its licence texts (so that the binary carries them, and users can read them).
const ASSETS: &[Asset] = &[
    Asset {
        name: "dashboard.js",
        content_type: JS,
        bytes: include_bytes!("../assets/dashboard/dashboard.js"),
    },
    Asset {
        name: "dashboard.css",
        content_type: CSS,
        bytes: include_bytes!("../assets/dashboard/dashboard.css"),
    },
    Asset {
        name: "echarts.min.js",
        content_type: JS,
        bytes: include_bytes!("../assets/dashboard/vendor/echarts.min.js"),
    },
    Asset {
        name: "echarts.LICENSE",
        content_type: TEXT,
        bytes: include_bytes!("../assets/dashboard/vendor/echarts.LICENSE"),
    },
    Asset {
        name: "echarts.NOTICE",
        content_type: TEXT,
        bytes: include_bytes!("../assets/dashboard/vendor/echarts.NOTICE"),
    },
    Asset {
        name: "echarts.LICENSE-d3",
        content_type: TEXT,
        bytes: include_bytes!("../assets/dashboard/vendor/echarts.LICENSE-d3"),
    },
];

/// The dashboard routes (`GET /dashboard`, `GET /dashboard/` and `GET /dashboard/{file}`).
/// Merge it into the application router, e.g. `app.merge(dashboard::router())`.
pub fn router() -> Router {
    Router::new()
        .route("/dashboard", get(page))
        .route("/dashboard/", get(slash))
        .route("/dashboard/{file}", get(asset))
}

/// The page, with its security headers.
async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        ],
        INDEX_HTML,
    )
        .into_response()
}

/// `/dashboard/` → `/dashboard` (relative, so it holds behind a reverse proxy's prefix).
async fn slash() -> Response {
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, "../dashboard")],
    )
        .into_response()
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::{body::Body, http::Request};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get_path(path: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let res = router()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, headers, body)
    }

    #[tokio::test]
    async fn serves_the_page_with_its_policy() {
        let (status, headers, body) = get_path("/dashboard").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
        let html = String::from_utf8(body).unwrap();
        assert!(html.contains("<title>tally dashboard</title>"));
    }

    #[tokio::test]
    async fn the_trailing_slash_redirects_to_the_page() {
        let (status, headers, _) = get_path("/dashboard/").await;
        assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
        assert_eq!(headers[header::LOCATION], "../dashboard");
    }

    #[tokio::test]
    async fn serves_every_asset_with_type_and_cache_control() {
        for a in ASSETS {
            let (status, headers, body) = get_path(&format!("/dashboard/{}", a.name)).await;
            assert_eq!(status, StatusCode::OK, "{}", a.name);
            assert_eq!(headers[header::CONTENT_TYPE], a.content_type, "{}", a.name);
            assert_eq!(headers[header::CACHE_CONTROL], ASSET_CACHE_CONTROL);
            assert_eq!(body, a.bytes, "{}", a.name);
        }
        for path in ["/dashboard/nope.js", "/dashboard/..%2Fmain.rs"] {
            assert_eq!(get_path(path).await.0, StatusCode::NOT_FOUND, "{path}");
        }
    }

    #[test]
    fn page_references_only_embedded_assets_and_no_other_origin() {
        let mut referenced = 0;
        for src in INDEX_HTML.split("\"dashboard/").skip(1) {
            let name = src.split('"').next().unwrap();
            assert!(
                ASSETS.iter().any(|a| a.name == name),
                "{name} is not embedded"
            );
            referenced += 1;
        }
        assert!(
            referenced >= 3,
            "the page loads its script, styles and charts"
        );
        let own = [INDEX_HTML.as_bytes(), ASSETS[0].bytes, ASSETS[1].bytes];
        for text in own.iter().map(|b| String::from_utf8_lossy(b)) {
            for external in ["http://", "https://", "//cdn", "url(http"] {
                assert!(!text.contains(external), "{external} in the dashboard");
            }
        }
        for a in ASSETS {
            let text = String::from_utf8_lossy(a.bytes);
            assert!(!text.contains("sourceMappingURL"), "{}", a.name);
        }
    }
}

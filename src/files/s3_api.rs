//! The few S3 calls object_store does not offer, made as signed REST
//! requests with object_store's own signer and HTTP client: listing keys
//! as raw strings (object_store refuses a whole listing page over one
//! name it cannot parse), listing open multipart uploads and aborting one.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use object_store::ClientConfigKey;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, AwsAuthorizer};
use object_store::client::{HttpClient, HttpConnector, HttpRequest, HttpRequestBody};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::Deserialize;

/// What S3 leaves unencoded in a URI (RFC 3986 unreserved characters).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One object as S3 listed it, with its key exactly as stored.
#[derive(Debug, Clone)]
pub(crate) struct RawObject {
    pub key: String,
    pub size: u64,
    pub modified: Option<DateTime<Utc>>,
    pub e_tag: Option<String>,
}

/// A multipart upload started and neither completed nor aborted.
#[derive(Debug, Clone)]
pub(crate) struct OpenUpload {
    pub key: String,
    pub upload_id: String,
}

pub(crate) struct S3Api {
    client: HttpClient,
    credentials: object_store::aws::AwsCredentialProvider,
    /// `http(s)://host[:port]/bucket` or the virtual-hosted form; no trailing `/`.
    bucket_url: String,
    region: String,
    sign: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListBucketResult {
    #[serde(default)]
    contents: Vec<Contents>,
    #[serde(default)]
    is_truncated: bool,
    next_continuation_token: Option<String>,
    encoding_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Contents {
    key: String,
    size: u64,
    last_modified: Option<String>,
    e_tag: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListMultipartUploadsResult {
    #[serde(default, rename = "Upload")]
    uploads: Vec<Upload>,
    #[serde(default)]
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
    encoding_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Upload {
    key: String,
    upload_id: String,
}

fn encode(text: &str) -> String {
    utf8_percent_encode(text, UNRESERVED).to_string()
}

/// A key as listed: URL-decoded when the server says it encoded keys.
fn listed_key(key: &str, encoding: Option<&str>) -> String {
    match encoding {
        Some(encoding) if encoding.eq_ignore_ascii_case("url") => {
            percent_decode_str(key).decode_utf8_lossy().into_owned()
        }
        _ => key.to_string(),
    }
}

impl S3Api {
    /// Reads the endpoint, region and addressing style from `builder` (the
    /// one `store` was built from) so requests go where object_store's go.
    pub(crate) fn new(
        builder: &AmazonS3Builder,
        store: &AmazonS3,
        bucket: &str,
        options: object_store::ClientOptions,
    ) -> Result<Self, String> {
        let value = |key| builder.get_config_value(&key);
        let region = value(AmazonS3ConfigKey::Region).unwrap_or_else(|| "us-east-1".into());
        let virtual_hosted =
            value(AmazonS3ConfigKey::VirtualHostedStyleRequest).is_some_and(|v| v == "true");
        let bucket_url = match (value(AmazonS3ConfigKey::Endpoint), virtual_hosted) {
            (Some(endpoint), true) => endpoint.trim_end_matches('/').to_string(),
            (Some(endpoint), false) => format!("{}/{bucket}", endpoint.trim_end_matches('/')),
            (None, true) => format!("https://{bucket}.s3.{region}.amazonaws.com"),
            (None, false) => format!("https://s3.{region}.amazonaws.com/{bucket}"),
        };
        let sign = value(AmazonS3ConfigKey::SkipSignature).is_none_or(|v| v != "true");
        let allow_http = value(AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp))
            .is_some_and(|v| v == "true");
        let client = object_store::client::ReqwestConnector::default()
            .connect(&options.with_allow_http(allow_http))
            .map_err(|error| error.to_string())?;
        Ok(Self {
            client,
            credentials: Arc::clone(store.credentials()),
            bucket_url,
            region,
            sign,
        })
    }

    /// Sends a signed request with an empty body; returns the response body.
    async fn send(&self, method: http::Method, url: &str) -> Result<String, String> {
        let mut request = HttpRequest::new(HttpRequestBody::empty());
        *request.method_mut() = method.clone();
        *request.uri_mut() = url
            .parse::<http::Uri>()
            .map_err(|error| format!("{method} {url}: {error}"))?;
        if self.sign {
            let credential = self
                .credentials
                .get_credential()
                .await
                .map_err(|error| error.to_string())?;
            AwsAuthorizer::new(&credential, "s3", &self.region).authorize(&mut request, None);
        }
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|error| format!("{method}: {error}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .bytes()
            .await
            .map_err(|error| format!("{method}: {error}"))?;
        let body = String::from_utf8_lossy(&body).into_owned();
        if !status.is_success() {
            // Just the error code: the rest of the body can be long.
            let code = body
                .split_once("<Code>")
                .and_then(|(_, rest)| rest.split_once("</Code>"))
                .map_or("", |(code, _)| code);
            return Err(format!("{method} answered {status} {code}"));
        }
        Ok(body)
    }

    /// Every object under `prefix`, keys exactly as stored (no parsing).
    pub(crate) async fn list_objects(&self, prefix: &str) -> Result<Vec<RawObject>, String> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!(
                "{}?list-type=2&encoding-type=url&prefix={}",
                self.bucket_url,
                encode(prefix)
            );
            if let Some(token) = &token {
                url.push_str(&format!("&continuation-token={}", encode(token)));
            }
            let body = self.send(http::Method::GET, &url).await?;
            let page: ListBucketResult = quick_xml::de::from_str(&body)
                .map_err(|error| format!("unreadable object listing: {error}"))?;
            let encoding = page.encoding_type.as_deref();
            objects.extend(page.contents.into_iter().map(|object| {
                RawObject {
                    key: listed_key(&object.key, encoding),
                    size: object.size,
                    modified: object
                        .last_modified
                        .and_then(|text| DateTime::parse_from_rfc3339(&text).ok())
                        .map(|time| time.with_timezone(&Utc)),
                    e_tag: object.e_tag.map(|tag| tag.trim_matches('"').to_string()),
                }
            }));
            match (page.is_truncated, page.next_continuation_token) {
                (true, Some(next)) => token = Some(next),
                _ => return Ok(objects),
            }
        }
    }

    /// Multipart uploads open under `prefix`.
    pub(crate) async fn open_uploads(&self, prefix: &str) -> Result<Vec<OpenUpload>, String> {
        let mut uploads = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut url = format!(
                "{}?uploads&encoding-type=url&prefix={}",
                self.bucket_url,
                encode(prefix)
            );
            if let Some((key, upload_id)) = &markers {
                url.push_str(&format!(
                    "&key-marker={}&upload-id-marker={}",
                    encode(key),
                    encode(upload_id)
                ));
            }
            let body = self.send(http::Method::GET, &url).await?;
            let page: ListMultipartUploadsResult = quick_xml::de::from_str(&body)
                .map_err(|error| format!("unreadable upload listing: {error}"))?;
            let encoding = page.encoding_type.as_deref();
            uploads.extend(page.uploads.into_iter().map(|upload| OpenUpload {
                key: listed_key(&upload.key, encoding),
                upload_id: upload.upload_id,
            }));
            match (
                page.is_truncated,
                page.next_key_marker,
                page.next_upload_id_marker,
            ) {
                (true, Some(key), Some(upload_id)) => {
                    let next = Some((key, upload_id));
                    if next == markers {
                        return Ok(uploads);
                    }
                    markers = next;
                }
                _ => return Ok(uploads),
            }
        }
    }

    /// Aborts one upload; the server then drops its parts.
    pub(crate) async fn abort_upload(&self, upload: &OpenUpload) -> Result<(), String> {
        let path: Vec<String> = upload.key.split('/').map(encode).collect();
        let url = format!(
            "{}/{}?uploadId={}",
            self.bucket_url,
            path.join("/"),
            encode(&upload.upload_id)
        );
        self.send(http::Method::DELETE, &url).await.map(|_| ())
    }
}

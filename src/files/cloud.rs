//! Opening Google Cloud Storage (`gs://`) and Azure Blob (`az://`) stores
//! from a task's `sync_config` options, on top of what the environment
//! says (object_store's `GOOGLE_*` and `AZURE_*` variables).
//!
//! Secrets (`access_key`, `sas_token`, a service account's key) go to the
//! builders only: no message here shows them, and object_store's own
//! builder errors name the problem without the value.

use std::sync::Arc;

use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::GoogleCloudStorageBuilder;

use super::object::ObjectStoreBackend;
use super::store::{StoreError, client_options, identity_of, retry_config};
use crate::config::StoreOptions;

/// Azurite's well-known development account and key (published in
/// Azure's documentation; they open nothing but a local emulator).
const EMULATOR_ACCOUNT: &str = "devstoreaccount1";
const EMULATOR_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// Where Azurite's blob service listens unless told otherwise.
const EMULATOR_ENDPOINT: &str = "http://127.0.0.1:10000";

/// A `gs://bucket` store. `endpoint` points at a GCS-compatible server;
/// object_store takes that only from a service account's key, so it is
/// written into the key (a server without a service account gets one that
/// sends no credentials, as emulators expect).
pub(crate) fn open_gcs(
    bucket: &str,
    options: &StoreOptions,
    base_dir: &std::path::Path,
) -> Result<ObjectStoreBackend, StoreError> {
    let name = format!("gs://{bucket}");
    let mut builder = GoogleCloudStorageBuilder::from_env()
        .with_bucket_name(bucket)
        .with_retry(retry_config())
        .with_client_options(client_options());
    let service_account = options
        .service_account_path
        .as_deref()
        .map(|path| crate::config::resolve_relative(base_dir, path));
    match (&options.endpoint, &service_account) {
        (None, Some(path)) => {
            builder = builder.with_service_account_path(path.to_string_lossy());
        }
        (Some(endpoint), path) => {
            let allow_http = options
                .allow_http
                .unwrap_or(endpoint.starts_with("http://"));
            builder = builder.with_client_options(client_options().with_allow_http(allow_http));
            let key = service_account_for_endpoint(endpoint, path.as_deref())
                .map_err(|problem| StoreError::permanent(format!("{name}: {problem}")))?;
            builder = builder.with_service_account_key(key);
        }
        (None, None) => {}
    }
    let store = builder.build().map_err(|error| {
        StoreError::permanent(format!("{name}: {}", first_line(&error.to_string())))
    })?;
    Ok(ObjectStoreBackend {
        store: Arc::new(store),
        identity: identity_of(&["gs", bucket, options.endpoint.as_deref().unwrap_or("")]),
        name,
        s3: None,
    })
}

/// A service account key (JSON) whose `gcs_base_url` is `endpoint`: the
/// file at `path` with that field set, or one without credentials.
fn service_account_for_endpoint(
    endpoint: &str,
    path: Option<&std::path::Path>,
) -> Result<String, String> {
    let endpoint = endpoint.trim_end_matches('/');
    let mut key = match path {
        None => serde_json::json!({
            "client_email": "",
            "private_key": "",
            "private_key_id": "",
            "disable_oauth": true,
        }),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|error| {
                format!(
                    "cannot read service_account_path {}: {error}",
                    path.display()
                )
            })?;
            // The parse error is not shown: it could quote the key.
            serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .filter(serde_json::Value::is_object)
                .ok_or_else(|| {
                    format!(
                        "service_account_path {} is not a JSON service account key; download one from the Google Cloud console",
                        path.display()
                    )
                })?
        }
    };
    key["gcs_base_url"] = serde_json::Value::from(endpoint);
    Ok(key.to_string())
}

/// An `az://container` store: the account and its key or SAS token, an
/// account URL (`endpoint`), or the Azurite emulator (`use_emulator`).
pub(crate) fn open_azure(
    container: &str,
    options: &StoreOptions,
) -> Result<ObjectStoreBackend, StoreError> {
    let name = format!("az://{container}");
    let mut builder = MicrosoftAzureBuilder::from_env()
        .with_container_name(container)
        .with_retry(retry_config())
        .with_client_options(client_options());
    if let Some(account) = &options.account_name {
        builder = builder.with_account(account);
    }
    if let Some(key) = &options.access_key {
        builder = builder.with_access_key(key.expose());
    }
    if let Some(token) = &options.sas_token {
        builder = builder.with_config(AzureConfigKey::SasKey, token.expose());
    }
    let emulator = options.use_emulator.unwrap_or(false);
    let endpoint = if emulator {
        // The emulator serves accounts by path (`/devstoreaccount1/…`);
        // object_store's own emulator mode reads its address from the
        // environment only, so the account URL is given whole instead.
        let account = options.account_name.as_deref().unwrap_or(EMULATOR_ACCOUNT);
        builder = builder.with_account(account);
        if options.access_key.is_none() && options.sas_token.is_none() {
            builder = builder.with_access_key(EMULATOR_KEY);
        }
        let base = options.endpoint.as_deref().unwrap_or(EMULATOR_ENDPOINT);
        Some(format!("{}/{account}", base.trim_end_matches('/')))
    } else {
        options.endpoint.clone()
    };
    if let Some(endpoint) = &endpoint {
        let allow_http = options
            .allow_http
            .unwrap_or(endpoint.starts_with("http://"));
        builder = builder
            .with_endpoint(endpoint.clone())
            .with_allow_http(allow_http);
    }
    let store = builder.build().map_err(|error| {
        let hint = if options.account_name.is_none() && !emulator {
            "; set account_name (and access_key or sas_token) in sync_config, or use_emulator = true for Azurite"
        } else {
            ""
        };
        StoreError::permanent(format!(
            "{name}: {}{hint}",
            first_line(&error.to_string())
        ))
    })?;
    Ok(ObjectStoreBackend {
        store: Arc::new(store),
        identity: identity_of(&[
            "az",
            container,
            options.account_name.as_deref().unwrap_or(""),
            endpoint.as_deref().unwrap_or(""),
        ]),
        name,
        s3: None,
    })
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_without_a_service_account_sends_no_credentials() {
        let key = service_account_for_endpoint("http://127.0.0.1:4443/", None).unwrap();
        let key: serde_json::Value = serde_json::from_str(&key).unwrap();
        assert_eq!(key["gcs_base_url"], "http://127.0.0.1:4443");
        assert_eq!(key["disable_oauth"], true);
    }

    #[test]
    fn an_endpoint_keeps_the_service_account_s_own_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("account.json");
        std::fs::write(
            &path,
            r#"{"client_email":"a@b","private_key":"KEY","private_key_id":"1"}"#,
        )
        .unwrap();
        let key = service_account_for_endpoint("http://gcs.internal", Some(&path)).unwrap();
        let key: serde_json::Value = serde_json::from_str(&key).unwrap();
        assert_eq!(key["gcs_base_url"], "http://gcs.internal");
        assert_eq!(key["private_key"], "KEY");
        assert!(key.get("disable_oauth").is_none());
    }

    #[test]
    fn a_service_account_that_is_not_json_is_named_without_its_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("account.json");
        std::fs::write(&path, "-----BEGIN PRIVATE KEY----- secret-bytes").unwrap();
        let problem = service_account_for_endpoint("http://x", Some(&path)).unwrap_err();
        assert!(
            problem.contains("not a JSON service account key"),
            "{problem}"
        );
        assert!(!problem.contains("secret-bytes"), "{problem}");
    }
}

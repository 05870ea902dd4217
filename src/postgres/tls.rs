//! TLS for PostgreSQL connections, as libpq reads `sslmode` and
//! `sslrootcert` from the URL.

use std::sync::Arc;

use super::PgError;

/// TLS as libpq does it: `sslmode=prefer` (the default) and `require`
/// encrypt without checking the certificate; `verify-ca` and `verify-full`
/// check it against the system's roots and `sslrootcert` when given.
pub(crate) fn tls_connector(verify: Option<&TlsVerify>) -> tokio_postgres_rustls::MakeRustlsConnect {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions();
    let config = match (builder, verify) {
        (Ok(builder), Some(verify)) => builder
            .with_root_certificates(verify.roots.clone())
            .with_no_client_auth(),
        (Ok(builder), None) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth(),
        (Err(_), _) => rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    };
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

/// Certificate checking for `verify-ca` / `verify-full`.
#[derive(Clone)]
pub(crate) struct TlsVerify {
    roots: rustls::RootCertStore,
}

/// Takes `sslmode=verify-*` and `sslrootcert` out of a URL (the driver
/// knows neither) and returns how to check certificates.
pub(crate) fn split_tls_options(url: &str) -> Result<(String, Option<TlsVerify>), PgError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None));
    };
    let mut kept = Vec::new();
    let mut verify = false;
    let mut root_file = None;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("sslmode", "verify-ca" | "verify-full")) => {
                verify = true;
                kept.push("sslmode=require".to_string());
            }
            Some(("sslrootcert", path)) => root_file = Some(path.to_string()),
            _ => kept.push(pair.to_string()),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    if !verify {
        return Ok((url, None));
    }
    let roots = crate::tls::roots(root_file.as_deref().map(std::path::Path::new))
        .map_err(|error| PgError::Setup(format!("sslrootcert {error}")))?;
    Ok((url, Some(TlsVerify { roots })))
}

/// libpq's `sslmode=require`: the connection is encrypted and signatures
/// are checked, but the certificate's issuer and name are not.
#[derive(Debug)]
pub(crate) struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &rustls_pki_types::CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &rustls_pki_types::CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

//! Certificate roots for the TLS clients (PostgreSQL, FTPS): the system's
//! roots plus, when the operator names one, a PEM file of their own.

use std::path::Path;
use std::sync::Arc;

/// The system's roots, and every certificate in `extra_pem`.
pub(crate) fn roots(extra_pem: Option<&Path>) -> Result<rustls::RootCertStore, String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(certificate);
    }
    if let Some(path) = extra_pem {
        let shown = path.display();
        let pem = std::fs::read(path).map_err(|error| format!("{shown}: {error}"))?;
        let mut found = 0;
        for certificate in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            let certificate = certificate.map_err(|error| format!("{shown}: {error}"))?;
            roots
                .add(certificate)
                .map_err(|error| format!("{shown}: {error}"))?;
            found += 1;
        }
        if found == 0 {
            return Err(format!("{shown}: no PEM certificate in it"));
        }
    }
    Ok(roots)
}

/// A client configuration that checks the server's certificate against
/// `roots` (and its name).
pub(crate) fn verifying_client(
    roots: rustls::RootCertStore,
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

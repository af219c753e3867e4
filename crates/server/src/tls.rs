//! TLS for HTTPS/WSS and TURN over TLS: a certificate from PEM files, or one made at start.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsSource;

/// Server configurations sharing one certificate.
#[derive(Debug, Clone)]
pub struct Tls {
    /// For HTTPS: offers HTTP/1.1 by ALPN (WebSockets upgrade over it).
    pub http: Arc<ServerConfig>,
    /// For TURN over TLS: no ALPN.
    pub turn: Arc<ServerConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path} holds no certificate")]
    NoCertificate { path: String },
    #[error("cannot make a self-signed certificate: {0}")]
    SelfSigned(String),
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(String),
}

impl Tls {
    /// Loads or makes the certificate. A self-signed one names `localhost`, the loopback
    /// addresses and every address and host in `names`.
    pub fn load(source: &TlsSource, ips: &[IpAddr], hosts: &[String]) -> Result<Tls, TlsError> {
        let (certs, key) = match source {
            TlsSource::Files { cert, key } => (read_certs(cert)?, read_key(key)?),
            TlsSource::SelfSigned => self_signed(ips, hosts)?,
        };
        let http = config(certs.clone(), key.clone_key(), vec![b"http/1.1".to_vec()])?;
        let turn = config(certs, key, Vec::new())?;
        Ok(Tls { http, turn })
    }
}

fn config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    alpn: Vec<Vec<u8>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = alpn;
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_err = |e: &dyn std::fmt::Display| TlsError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| read_err(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_err(&e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.display().to_string(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

type CertAndKey = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn self_signed(ips: &[IpAddr], hosts: &[String]) -> Result<CertAndKey, TlsError> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    names.extend(ips.iter().map(|ip| ip.to_string()));
    names.extend(hosts.iter().cloned());
    names.sort();
    names.dedup();
    let err = |e: rcgen::Error| TlsError::SelfSigned(e.to_string());
    let mut params = rcgen::CertificateParams::new(names).map_err(err)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "free4chat (self-signed)");
    let signing_key = rcgen::KeyPair::generate().map_err(err)?;
    let cert = params.self_signed(&signing_key).map_err(err)?;
    let key = PrivateKeyDer::try_from(signing_key.serialize_der())
        .map_err(|e| TlsError::SelfSigned(e.to_string()))?;
    Ok((vec![cert.der().clone()], key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_is_made_and_pem_files_are_read_back() {
        let dir = std::env::temp_dir().join(format!("f4c-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["chat.example".into()]).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        let files = TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        };
        let tls = Tls::load(&files, &[], &[]).unwrap();
        assert_eq!(tls.http.alpn_protocols, [b"http/1.1".to_vec()]);
        assert!(tls.turn.alpn_protocols.is_empty());
        assert!(Tls::load(&TlsSource::SelfSigned, &["192.0.2.1".parse().unwrap()], &[]).is_ok());
        // A key file given as the certificate, a missing file: clear errors, no panic.
        let swapped = TlsSource::Files {
            cert: key.clone(),
            key: cert.clone(),
        };
        assert!(matches!(
            Tls::load(&swapped, &[], &[]),
            Err(TlsError::NoCertificate { .. } | TlsError::Read { .. })
        ));
        let missing = TlsSource::Files {
            cert: dir.join("nope.pem"),
            key,
        };
        let err = Tls::load(&missing, &[], &[]).unwrap_err().to_string();
        assert!(err.contains("nope.pem"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Certificate credentials: the private key and certificate an app registration trusts, and
//! the signed client assertion (JWT) that proves possession of the key.

use crate::error::GraphError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::{Digest, Sha256};

pub struct Certificate {
    key: EncodingKey,
    /// base64url SHA-256 of the certificate's DER (`x5t#S256`).
    x5t_s256: String,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("x5t#S256", &self.x5t_s256)
            .finish_non_exhaustive()
    }
}

fn config(msg: impl Into<String>) -> GraphError {
    GraphError::Config(msg.into())
}

impl Certificate {
    /// From PEM text holding the certificate and its (unencrypted) RSA private key.
    pub fn from_pem(text: &str) -> Result<Self, GraphError> {
        let blocks =
            pem::parse_many(text).map_err(|_| config("the certificate file is not valid PEM"))?;
        let cert = blocks
            .iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or_else(|| config("the PEM file has no CERTIFICATE block"))?;
        let key_block = blocks
            .iter()
            .find(|b| b.tag() == "PRIVATE KEY" || b.tag() == "RSA PRIVATE KEY")
            .ok_or_else(|| {
                config("the PEM file has no unencrypted PRIVATE KEY block (hint: put the certificate and its key in one file)")
            })?;
        let key = EncodingKey::from_rsa_pem(pem::encode(key_block).as_bytes())
            .map_err(|_| config("the private key is not an RSA key in PKCS#1 or PKCS#8 form"))?;
        Ok(Self {
            key,
            x5t_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(cert.contents())),
        })
    }

    /// From a PKCS#12 (.pfx/.p12) file protected by `password`.
    pub fn from_pfx(data: &[u8], password: &str) -> Result<Self, GraphError> {
        let store = p12_keystore::KeyStore::from_pkcs12(
            data,
            password,
            p12_keystore::Pkcs12ImportPolicy::Strict,
        )
        .map_err(|e| {
            config(format!(
                "the PFX file could not be opened ({e}); hint: check the password"
            ))
        })?;
        let (_, chain) = store
            .private_key_chain()
            .ok_or_else(|| config("the PFX file holds no private key with its certificate"))?;
        let cert = chain
            .certs()
            .first()
            .ok_or_else(|| config("the PFX file holds a key without a certificate"))?;
        let key_pem = pem::encode(&pem::Pem::new("PRIVATE KEY", chain.key().as_der().to_vec()));
        let key = EncodingKey::from_rsa_pem(key_pem.as_bytes())
            .map_err(|_| config("the PFX private key is not an RSA key"))?;
        Ok(Self {
            key,
            x5t_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(cert.as_der())),
        })
    }

    /// From a file: PKCS#12 when it ends in .pfx/.p12, PEM otherwise.
    pub fn from_file(path: &std::path::Path, password: Option<&str>) -> Result<Self, GraphError> {
        let data = std::fs::read(path)
            .map_err(|e| config(format!("reading certificate {}: {e}", path.display())))?;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if ext == "pfx" || ext == "p12" {
            Self::from_pfx(&data, password.unwrap_or(""))
        } else {
            let text = String::from_utf8(data).map_err(|_| {
                config(format!(
                    "{} is neither PEM text nor a .pfx/.p12 file",
                    path.display()
                ))
            })?;
            Self::from_pem(&text)
        }
    }

    pub fn thumbprint_sha256(&self) -> &str {
        &self.x5t_s256
    }

    /// A client assertion for `client_id`, addressed to `token_url`, valid ten minutes.
    pub fn assertion(
        &self,
        client_id: &str,
        token_url: &str,
        now: i64,
    ) -> Result<String, GraphError> {
        let mut header = Header::new(Algorithm::PS256);
        header.typ = Some("JWT".into());
        header.x5t_s256 = Some(self.x5t_s256.clone());
        let claims = serde_json::json!({
            "aud": token_url,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid_like(),
            "nbf": now - 5,
            "iat": now,
            "exp": now + 600,
        });
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| config(format!("signing the client assertion failed: {e}")))
    }
}

fn uuid_like() -> String {
    let a: u128 = rand::random();
    let h = format!("{a:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

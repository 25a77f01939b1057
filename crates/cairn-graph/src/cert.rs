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

//! The simulator's side of the Microsoft identity platform's client-credentials flow.
//!
//! Cairn signs in to Graph as an application: it proves who it is with a client secret or, as
//! production tenants should, with a JWT *client assertion* signed by the private key of a
//! certificate registered on the app, and gets back a short-lived bearer token. The simulator
//! checks assertions as strictly as Entra does, so that a mistake in `cairn-graph`'s signing
//! (wrong thumbprint header, wrong audience, reused `jti`, clock arithmetic) fails in our tests
//! rather than against a customer's tenant. It hands out access tokens shaped like Entra's so
//! that clients keep treating them as opaque `eyJ…` strings that expire.
//!
//! Entra signs access tokens with RS256 and keys it publishes; the simulator signs them with
//! HS256 and a key of its own. Only Graph itself validates them, so only their shape matters.
//! Time is always passed in (`now_unix`), never read from the clock, so tests control it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::der::asn1::UintRef;
use x509_cert::der::oid::db::rfc5912::RSA_ENCRYPTION;
use x509_cert::der::{Decode, Reader, SliceReader};

/// The audience (`aud`) of access tokens for Microsoft Graph.
pub const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";

/// The application permissions (`roles`) of the default app registration: what a backup and
/// restore tool needs across mail, calendars, contacts, OneDrive and SharePoint, and beyond
/// that every permission `permissions::RULES` asks for, so that the default app may do
/// everything the simulator serves (`Sites.FullControl.All` also lets it grant
/// `Sites.Selected` apps access to sites). Other apps have what `SimConfig::apps` gives them.
pub const GRANTED_ROLES: &[&str] = &[
    "User.Read.All",
    "Group.Read.All",
    "Mail.ReadWrite",
    "Calendars.ReadWrite",
    "Contacts.ReadWrite",
    "Files.ReadWrite.All",
    "Sites.ReadWrite.All",
    "MailboxSettings.ReadWrite",
    "Tasks.ReadWrite.All",
    "User.ReadWrite.All",
    "Group.ReadWrite.All",
    "Sites.FullControl.All",
    "MailboxFolder.Read.All",
    "MailboxItem.Read.All",
    "MailboxItem.ImportExport.All",
    "MailboxItem.ReadWrite.All",
    "MailboxFolder.ReadWrite.All",
    "Team.ReadBasic.All",
    "TeamMember.Read.All",
    "Channel.ReadBasic.All",
    "ChannelMember.Read.All",
    "TeamsTab.Read.All",
    "ChannelMessage.Read.All",
    "Chat.Read.All",
    "Channel.Create",
    "Teamwork.Migrate.All",
];

/// Base64url (no padding) SHA-1 thumbprint of a DER certificate: the `x5t` header of an RS256
/// client assertion.
pub fn thumbprint_sha1(cert_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha1::digest(cert_der))
}

/// Base64url (no padding) SHA-256 thumbprint of a DER certificate: the `x5t#S256` header of a
/// PS256 client assertion.
pub fn thumbprint_sha256(cert_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(cert_der))
}

// ---------------------------------------------------------------------------------------------
// Access tokens

/// Issues and validates the simulator's access tokens for Graph.
///
/// The signing key never leaves this type: its `Debug` output shows only the lifetime.
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    lifetime: Duration,
}

/// What a valid access token says about its bearer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenClaims {
    /// The tenant the token was issued in (`tid`).
    pub tenant_id: String,
    /// The application it was issued to (`appid`).
    pub client_id: String,
    /// When it expires, in Unix seconds (`exp`).
    pub exp: i64,
    /// The application permissions the app was granted when the token was issued (`roles`).
    pub roles: Vec<String>,
}

/// Why an access token was refused. Graph answers all of these with 401
/// `InvalidAuthenticationToken`; the client should get a new token and retry once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, or not one with the claims this simulator issues.
    #[error("JWT is not well formed.")]
    Malformed,
    /// Not signed with this simulator's key and algorithm (tampered, or from another issuer).
    #[error("Access token validation failure: the signature is invalid.")]
    BadSignature,
    /// `exp` is at or before the current time.
    #[error("Lifetime validation failed, the token is expired.")]
    Expired,
    /// `nbf` is after the current time.
    #[error("Lifetime validation failed, the token is not yet valid.")]
    NotYetValid,
}

/// The claims of an access token, named as Entra names them (v1.0 app-only tokens).
#[derive(Serialize, Deserialize)]
struct AccessClaims {
    aud: String,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    appid: String,
    idtyp: String,
    /// Entra leaves the claim out of a token of an app that was granted nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    roles: Vec<String>,
    sub: String,
    tid: String,
    uti: String,
    ver: String,
    /// Delegated tokens only: the scopes the user consented to, space separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scp: Option<String>,
    /// Delegated tokens only: the user's object id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    oid: Option<String>,
}

impl TokenIssuer {
    /// An issuer signing with `key` (HS256) whose tokens are valid for `lifetime`.
    pub fn new(key: [u8; 32], lifetime: Duration) -> Self {
        Self {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            lifetime,
        }
    }

    /// How long issued tokens are valid: the token endpoint's `expires_in`.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// A new access token for `client_id` in `tenant_id` carrying the application permissions
    /// `roles`, valid from `now_unix` for the issuer's lifetime. Every token carries a fresh
    /// random `uti`, so no two are equal.
    pub fn issue(
        &self,
        tenant_id: &str,
        client_id: &str,
        roles: &[String],
        now_unix: i64,
    ) -> String {
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX);
        let uti: [u8; 16] = rand::rng().random();
        let claims = AccessClaims {
            aud: GRAPH_AUDIENCE.to_owned(),
            iss: format!("https://sts.windows.net/{tenant_id}/"),
            iat: now_unix,
            nbf: now_unix,
            exp: now_unix.saturating_add(lifetime),
            appid: client_id.to_owned(),
            idtyp: "app".to_owned(),
            roles: roles.to_vec(),
            sub: client_id.to_owned(),
            tid: tenant_id.to_owned(),
            uti: URL_SAFE_NO_PAD.encode(uti),
            ver: "1.0".to_owned(),
            scp: None,
            oid: None,
        };
        self.sign(&claims)
    }

    /// A new delegated access token: `client_id` acting for the user `oid` with the scopes
    /// `scp` (space separated), from a sign-in (authorization code). It carries no `roles`, so
    /// Graph grants it none of the app's application permissions.
    pub fn issue_delegated(
        &self,
        tenant_id: &str,
        client_id: &str,
        oid: &str,
        scp: &str,
        now_unix: i64,
    ) -> String {
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX);
        let uti: [u8; 16] = rand::rng().random();
        let claims = AccessClaims {
            aud: GRAPH_AUDIENCE.to_owned(),
            iss: format!("https://sts.windows.net/{tenant_id}/"),
            iat: now_unix,
            nbf: now_unix,
            exp: now_unix.saturating_add(lifetime),
            appid: client_id.to_owned(),
            idtyp: "user".to_owned(),
            roles: Vec::new(),
            sub: oid.to_owned(),
            tid: tenant_id.to_owned(),
            uti: URL_SAFE_NO_PAD.encode(uti),
            ver: "1.0".to_owned(),
            scp: Some(scp.to_owned()),
            oid: Some(oid.to_owned()),
        };
        self.sign(&claims)
    }

    fn sign(&self, claims: &AccessClaims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of plain claims with an in-memory key cannot fail")
    }

    /// Checks the signature, then `nbf <= now_unix < exp` (no leeway), and returns who the
    /// token was issued to.
    pub fn validate(&self, token: &str, now_unix: i64) -> Result<TokenClaims, TokenError> {
        let data = jsonwebtoken::decode::<AccessClaims>(
            token,
            &self.decoding,
            &signature_only(Algorithm::HS256),
        )
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => TokenError::BadSignature,
            _ => TokenError::Malformed,
        })?;
        let claims = data.claims;
        if now_unix < claims.nbf {
            return Err(TokenError::NotYetValid);
        }
        if now_unix >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(TokenClaims {
            tenant_id: claims.tid,
            client_id: claims.appid,
            exp: claims.exp,
            roles: claims.roles,
        })
    }
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("key", &"<redacted>")
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// Validation that only checks the signature and algorithm: jsonwebtoken's own time checks
/// read the system clock, so times are checked by the callers against the `now` they are given.
fn signature_only(alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    validation.required_spec_claims.clear();
    validation
}

// ---------------------------------------------------------------------------------------------
// Client assertions

/// Verifies the certificate-signed client assertions of one application, as Entra's token
/// endpoint does, and remembers their `jti`s to refuse replays.
///
/// Accepted: `alg` RS256 with an `x5t` header (SHA-1 thumbprint) or PS256 with `x5t#S256`
/// (SHA-256 thumbprint) naming a registered certificate; `aud` one of the configured token
/// endpoint URLs (with or without a trailing slash); `iss` and `sub` equal to the client id;
/// a `jti` not seen before; `nbf <= now < exp`.
pub struct AssertionVerifier {
    client_id: String,
    /// Accepted audiences, without trailing slashes.
    audiences: Vec<String>,
    certs: Vec<RegisteredCert>,
    /// `jti` → `exp` of every accepted assertion that has not expired yet.
    seen: Mutex<HashMap<String, i64>>,
}

/// A certificate registered on the application: its thumbprints and RSA public key.
struct RegisteredCert {
    sha1: [u8; 20],
    sha256: [u8; 32],
    key: DecodingKey,
}

/// Why a client assertion was refused. `Display` gives an Entra-style `AADSTS…` description
/// for the token endpoint's `error_description`; [`AssertionError::aadsts_code`] gives the
/// number for `error_codes`. Entra answers all of them with `invalid_client`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    /// Not a JWT, or a header or claim is missing or of the wrong type.
    #[error("AADSTS50027: JWT token is invalid or malformed: {0}.")]
    Malformed(String),
    /// `alg` is neither RS256 nor PS256.
    #[error(
        "AADSTS50027: JWT token is invalid or malformed: client assertions are signed with \
         RS256 (and an x5t header) or PS256 (and an x5t#S256 header), not '{0}'."
    )]
    UnsupportedAlgorithm(String),
    /// The thumbprint header names no certificate registered on the application.
    #[error(
        "AADSTS700027: The certificate with identifier used to sign the client assertion is not \
         registered on application. [Reason - The key was not found., Thumbprint of key used by \
         client: '{thumbprint}'] Upload the certificate to the app registration, or sign with \
         one that is registered."
    )]
    UnknownCertificate {
        /// The thumbprint as the client sent it.
        thumbprint: String,
    },
    /// The signature does not verify with the certificate the thumbprint names.
    #[error(
        "AADSTS700027: Client assertion contains an invalid signature. [Reason - The provided \
         signature value did not match the expected signature value., Thumbprint of key used by \
         client: '{thumbprint}'] Sign with the private key of that certificate."
    )]
    BadSignature {
        /// The thumbprint as the client sent it.
        thumbprint: String,
    },
    /// `aud` is not the token endpoint of this tenant.
    #[error(
        "AADSTS700023: Client assertion audience claim does not match Realm issuer. The audience \
         in the assertion was '{found}' and the expected audience is '{expected}'."
    )]
    WrongAudience {
        /// The `aud` claim (empty when missing).
        found: String,
        /// The first configured audience.
        expected: String,
    },
    /// `iss` or `sub` is not the client id.
    #[error(
        "AADSTS700021: Client assertion application identifier doesn't match 'client_id' \
         parameter. [iss: '{iss}', sub: '{sub}', client_id: '{expected}'] Both iss and sub must \
         be the application (client) id."
    )]
    WrongIssuer {
        /// The `iss` claim (empty when missing).
        iss: String,
        /// The `sub` claim (empty when missing).
        sub: String,
        /// The application's client id.
        expected: String,
    },
    /// `nbf` is after the current time.
    #[error(
        "AADSTS700024: Client assertion is not within its valid time range. Current time: {}, \
         assertion valid from {}, expiry time of assertion {}. Check the signer's clock.",
        unix_time(*now), unix_time(*nbf), unix_time(*exp)
    )]
    NotYetValid {
        /// The verifier's time, Unix seconds.
        now: i64,
        /// The `nbf` claim.
        nbf: i64,
        /// The `exp` claim.
        exp: i64,
    },
    /// `exp` is at or before the current time.
    #[error(
        "AADSTS700024: Client assertion is not within its valid time range. Current time: {}, \
         assertion valid from {}, expiry time of assertion {}. Sign a new assertion for every \
         token request.",
        unix_time(*now), unix_time(*nbf), unix_time(*exp)
    )]
    Expired {
        /// The verifier's time, Unix seconds.
        now: i64,
        /// The `nbf` claim.
        nbf: i64,
        /// The `exp` claim.
        exp: i64,
    },
    /// The `jti` was already used by an accepted assertion that has not expired.
    #[error(
        "AADSTS70002: Error validating credentials. The client assertion with jti '{jti}' was \
         already used (replay). Sign a new assertion with a fresh jti for every token request."
    )]
    Replayed {
        /// The reused `jti`.
        jti: String,
    },
}

impl AssertionError {
    /// The AADSTS number Entra reports for this kind of failure.
    pub fn aadsts_code(&self) -> u32 {
        match self {
            Self::Malformed(_) | Self::UnsupportedAlgorithm(_) => 50027,
            Self::UnknownCertificate { .. } | Self::BadSignature { .. } => 700027,
            Self::WrongAudience { .. } => 700023,
            Self::WrongIssuer { .. } => 700021,
            Self::NotYetValid { .. } | Self::Expired { .. } => 700024,
            Self::Replayed { .. } => 70002,
        }
    }
}

/// Formats Unix seconds as Entra does in its messages (ISO 8601, UTC).
fn unix_time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| format!("{secs} (Unix time)"))
}

/// The header fields a client assertion is judged by, read leniently so that an unsupported
/// `alg` gets its own error instead of a parse failure.
#[derive(Deserialize)]
struct AssertionHeader {
    typ: Option<String>,
    alg: Option<String>,
    x5t: Option<String>,
    #[serde(rename = "x5t#S256")]
    x5t_s256: Option<String>,
}

/// The claims of a client assertion; all optional, so that a missing one gets a precise error.
#[derive(Deserialize)]
struct AssertionClaims {
    aud: Option<OneOrMany>,
    iss: Option<String>,
    sub: Option<String>,
    jti: Option<String>,
    nbf: Option<serde_json::Number>,
    exp: Option<serde_json::Number>,
}

/// `aud` may be one string or an array of them (RFC 7519 §4.1.3).
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn values(&self) -> &[String] {
        match self {
            Self::One(one) => std::slice::from_ref(one),
            Self::Many(many) => many,
        }
    }
}

/// Which thumbprint header an algorithm requires.
#[derive(Clone, Copy)]
enum Thumbprint {
    Sha1,
    Sha256,
}

impl AssertionVerifier {
    /// A verifier for application `client_id`, accepting assertions addressed to any of
    /// `audiences` (normally `{login_base}/{tenant}/oauth2/v2.0/token`, the tenant given as id
    /// and as domain) and signed with the key of any certificate in `certs_pem`.
    ///
    /// `certs_pem` holds one or more `CERTIFICATE` PEM blocks; other blocks are ignored. Fails
    /// when there is no audience, no certificate, or a certificate that cannot be parsed or has
    /// no RSA key of at least 2048 bits.
    pub fn new(
        client_id: impl Into<String>,
        audiences: Vec<String>,
        certs_pem: &str,
    ) -> Result<Self, String> {
        let audiences: Vec<String> = audiences
            .iter()
            .map(|a| a.trim_end_matches('/').to_owned())
            .collect();
        if audiences.is_empty() {
            return Err("no accepted audience for client assertions was given".to_owned());
        }
        let blocks = pem::parse_many(certs_pem)
            .map_err(|e| format!("the certificates are not valid PEM: {e}"))?;
        let certs = blocks
            .iter()
            .filter(|block| block.tag() == "CERTIFICATE")
            .enumerate()
            .map(|(i, block)| {
                RegisteredCert::from_der(block.contents())
                    .map_err(|e| format!("certificate #{} in the PEM text: {e}", i + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if certs.is_empty() {
            return Err("no CERTIFICATE block found in the PEM text".to_owned());
        }
        Ok(Self {
            client_id: client_id.into(),
            audiences,
            certs,
            seen: Mutex::new(HashMap::new()),
        })
    }

    /// Verifies one client assertion at time `now_unix` (Unix seconds, no leeway). On success
    /// its `jti` is remembered until the assertion expires, and a second use is refused.
    pub fn verify(&self, assertion: &str, now_unix: i64) -> Result<(), AssertionError> {
        let header = read_header(assertion)?;
        let bad_typ = header
            .typ
            .as_deref()
            .filter(|typ| !typ.eq_ignore_ascii_case("JWT"));
        if let Some(typ) = bad_typ {
            return Err(malformed(format!("the typ header is '{typ}', not 'JWT'")));
        }
        let alg = header
            .alg
            .ok_or_else(|| malformed("the alg header is missing"))?;
        let (algorithm, kind, thumbprint, name) = match alg.as_str() {
            "RS256" => (Algorithm::RS256, Thumbprint::Sha1, header.x5t, "x5t"),
            "PS256" => (
                Algorithm::PS256,
                Thumbprint::Sha256,
                header.x5t_s256,
                "x5t#S256",
            ),
            _ => return Err(AssertionError::UnsupportedAlgorithm(alg)),
        };
        let thumbprint = thumbprint
            .ok_or_else(|| malformed(format!("the {name} header is required with alg {alg}")))?;
        let cert = self.find_cert(kind, &thumbprint).ok_or_else(|| {
            AssertionError::UnknownCertificate {
                thumbprint: thumbprint.clone(),
            }
        })?;

        let claims = jsonwebtoken::decode::<AssertionClaims>(
            assertion,
            &cert.key,
            &signature_only(algorithm),
        )
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => AssertionError::BadSignature {
                thumbprint: thumbprint.clone(),
            },
            ErrorKind::Json(e) => malformed(format!("the claims are not valid: {e}")),
            _ => malformed(e.to_string()),
        })?
        .claims;

        let iss = claims.iss.unwrap_or_default();
        let sub = claims.sub.unwrap_or_default();
        if iss != self.client_id || sub != self.client_id {
            return Err(AssertionError::WrongIssuer {
                iss,
                sub,
                expected: self.client_id.clone(),
            });
        }
        let audience_ok = claims.aud.as_ref().is_some_and(|aud| {
            aud.values().iter().any(|a| {
                self.audiences
                    .iter()
                    .any(|ok| a.trim_end_matches('/') == ok)
            })
        });
        if !audience_ok {
            return Err(AssertionError::WrongAudience {
                found: claims.aud.map(|a| a.values().join(" ")).unwrap_or_default(),
                expected: self.audiences[0].clone(),
            });
        }
        let jti = claims.jti.filter(|jti| !jti.is_empty()).ok_or_else(|| {
            malformed("the jti claim is missing; every assertion needs a unique one")
        })?;
        let nbf = numeric_date(claims.nbf, "nbf")?;
        let exp = numeric_date(claims.exp, "exp")?;
        if now_unix < nbf {
            return Err(AssertionError::NotYetValid {
                now: now_unix,
                nbf,
                exp,
            });
        }
        if now_unix >= exp {
            return Err(AssertionError::Expired {
                now: now_unix,
                nbf,
                exp,
            });
        }

        // Any entry whose assertion has expired can go: that assertion would be refused anyway.
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.retain(|_, seen_exp| *seen_exp > now_unix);
        if seen.contains_key(&jti) {
            return Err(AssertionError::Replayed { jti });
        }
        seen.insert(jti, exp);
        Ok(())
    }

    /// The registered certificate a thumbprint header names. The thumbprint is compared as
    /// bytes, so padded or standard base64 (as some older clients send) is accepted too.
    fn find_cert(&self, kind: Thumbprint, thumbprint: &str) -> Option<&RegisteredCert> {
        let normalized: String = thumbprint
            .trim_end_matches('=')
            .chars()
            .map(|c| match c {
                '+' => '-',
                '/' => '_',
                c => c,
            })
            .collect();
        let digest = URL_SAFE_NO_PAD.decode(normalized).ok()?;
        self.certs.iter().find(|cert| match kind {
            Thumbprint::Sha1 => cert.sha1[..] == digest[..],
            Thumbprint::Sha256 => cert.sha256[..] == digest[..],
        })
    }
}

impl fmt::Debug for AssertionVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let thumbprints: Vec<String> = self
            .certs
            .iter()
            .map(|c| URL_SAFE_NO_PAD.encode(c.sha1))
            .collect();
        let seen = self.seen.lock().map(|s| s.len()).unwrap_or_default();
        f.debug_struct("AssertionVerifier")
            .field("client_id", &self.client_id)
            .field("audiences", &self.audiences)
            .field("certs_x5t", &thumbprints)
            .field("seen_jtis", &seen)
            .finish()
    }
}

impl RegisteredCert {
    fn from_der(der: &[u8]) -> Result<Self, String> {
        let cert =
            Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let spki = cert.tbs_certificate().subject_public_key_info();
        if spki.algorithm.oid != RSA_ENCRYPTION {
            return Err(format!(
                "its key is of type {}, but client assertions are verified with RSA keys",
                spki.algorithm.oid
            ));
        }
        // For rsaEncryption the subject public key bit string is a PKCS#1 RSAPublicKey, the form
        // `DecodingKey::from_rsa_der` expects.
        let pkcs1 = spki
            .subject_public_key
            .as_bytes()
            .ok_or("its RSA public key is not a whole number of bytes")?;
        let bits =
            rsa_modulus_bits(pkcs1).map_err(|e| format!("its RSA public key is invalid: {e}"))?;
        if bits < 2048 {
            return Err(format!(
                "its RSA key has {bits} bits; at least 2048 are required"
            ));
        }
        Ok(Self {
            sha1: Sha1::digest(der).into(),
            sha256: Sha256::digest(der).into(),
            key: DecodingKey::from_rsa_der(pkcs1),
        })
    }
}

/// The size of the modulus of a PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus, publicExponent }`.
fn rsa_modulus_bits(pkcs1: &[u8]) -> Result<usize, x509_cert::der::Error> {
    let mut reader = SliceReader::new(pkcs1)?;
    let modulus = reader.sequence(|seq| {
        let modulus: UintRef<'_> = seq.decode()?;
        let _exponent: UintRef<'_> = seq.decode()?;
        Ok::<_, x509_cert::der::Error>(modulus.as_bytes())
    })?;
    reader.finish()?;
    Ok(match modulus.first() {
        Some(first) => modulus.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    })
}

/// Reads the header of a compact JWS without trusting anything in it yet.
fn read_header(assertion: &str) -> Result<AssertionHeader, AssertionError> {
    let mut parts = assertion.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(
            "a JWT has three base64url parts separated by dots",
        ));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| malformed("the header is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|e| malformed(format!("the header is not valid: {e}")))
}

/// A NumericDate claim as whole seconds (RFC 7519 allows fractions; they are truncated).
fn numeric_date(value: Option<serde_json::Number>, name: &str) -> Result<i64, AssertionError> {
    value
        .and_then(|n| n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)))
        .ok_or_else(|| malformed(format!("the {name} claim is missing or not a number")))
}

fn malformed(reason: impl Into<String>) -> AssertionError {
    AssertionError::Malformed(reason.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const CLIENT_CERT: &str = include_str!("../tests/fixtures/client-cert.pem");
    const CLIENT_KEY: &str = include_str!("../tests/fixtures/client-key.pem");
    const OTHER_CERT: &str = include_str!("../tests/fixtures/other-cert.pem");
    const OTHER_KEY: &str = include_str!("../tests/fixtures/other-key.pem");

    const TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
    const CLIENT: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
    const AUD: &str =
        "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/oauth2/v2.0/token";
    const NOW: i64 = 1_750_000_000;

    fn der(cert_pem: &str) -> Vec<u8> {
        pem::parse(cert_pem).unwrap().into_contents()
    }

    fn verifier() -> AssertionVerifier {
        AssertionVerifier::new(CLIENT, vec![AUD.to_owned()], CLIENT_CERT).unwrap()
    }

    fn claims(jti: &str) -> Value {
        json!({
            "aud": AUD, "iss": CLIENT, "sub": CLIENT, "jti": jti,
            "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 590,
        })
    }

    fn sign(header: &Header, claims: &Value, key_pem: &str) -> String {
        let key = EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap();
        jsonwebtoken::encode(header, claims, &key).unwrap()
    }

    /// RS256 with `x5t` of `cert_pem`, signed with `key_pem`.
    fn rs256(claims: &Value, key_pem: &str, cert_pem: &str) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.x5t = Some(thumbprint_sha1(&der(cert_pem)));
        sign(&header, claims, key_pem)
    }

    /// PS256 with `x5t#S256` of `cert_pem`, signed with `key_pem`.
    fn ps256(claims: &Value, key_pem: &str, cert_pem: &str) -> String {
        let mut header = Header::new(Algorithm::PS256);
        header.x5t_s256 = Some(thumbprint_sha256(&der(cert_pem)));
        sign(&header, claims, key_pem)
    }

    #[test]
    fn thumbprints_match_openssl() {
        // Values from the openssl commands in tests/fixtures/README.md.
        assert_eq!(
            thumbprint_sha1(&der(CLIENT_CERT)),
            "w-JXUt3hA7TP3hEEThPv3_qKSSM"
        );
        assert_eq!(
            thumbprint_sha256(&der(CLIENT_CERT)),
            "0DC4EkfgFo7YpQQJwQ7RNQXvfACpzC7n7cVjn8Hk4RM"
        );
    }

    #[test]
    fn good_rs256_with_x5t_passes() {
        let token = rs256(&claims("a"), CLIENT_KEY, CLIENT_CERT);
        assert_eq!(verifier().verify(&token, NOW), Ok(()));
    }

    #[test]
    fn good_ps256_with_x5t_s256_passes() {
        let token = ps256(&claims("a"), CLIENT_KEY, CLIENT_CERT);
        assert_eq!(verifier().verify(&token, NOW), Ok(()));
    }

    #[test]
    fn audience_with_trailing_slash_passes() {
        let mut c = claims("a");
        c["aud"] = json!(format!("{AUD}/"));
        assert_eq!(
            verifier().verify(&rs256(&c, CLIENT_KEY, CLIENT_CERT), NOW),
            Ok(())
        );
        let v = AssertionVerifier::new(CLIENT, vec![format!("{AUD}/")], CLIENT_CERT).unwrap();
        assert_eq!(
            v.verify(&rs256(&claims("b"), CLIENT_KEY, CLIENT_CERT), NOW),
            Ok(())
        );
    }

    #[test]
    fn padded_standard_base64_x5t_passes() {
        // Some clients (MSAL Python) pad the thumbprint; Entra accepts it.
        let digest = Sha1::digest(der(CLIENT_CERT));
        let mut header = Header::new(Algorithm::RS256);
        header.x5t = Some(base64::engine::general_purpose::STANDARD.encode(digest));
        assert!(header.x5t.as_ref().unwrap().ends_with('='));
        let token = sign(&header, &claims("a"), CLIENT_KEY);
        assert_eq!(verifier().verify(&token, NOW), Ok(()));
    }

    #[test]
    fn replayed_jti_fails() {
        let v = verifier();
        let token = ps256(&claims("once"), CLIENT_KEY, CLIENT_CERT);
        assert_eq!(v.verify(&token, NOW), Ok(()));
        let again = v.verify(&token, NOW + 1).unwrap_err();
        assert_eq!(
            again,
            AssertionError::Replayed {
                jti: "once".to_owned()
            }
        );
        // A different assertion with the same jti is a replay too.
        let other = rs256(&claims("once"), CLIENT_KEY, CLIENT_CERT);
        assert!(matches!(
            v.verify(&other, NOW + 2),
            Err(AssertionError::Replayed { .. })
        ));
    }

    #[test]
    fn replay_cache_forgets_expired_assertions() {
        let v = verifier();
        for jti in ["a", "b", "c"] {
            v.verify(&rs256(&claims(jti), CLIENT_KEY, CLIENT_CERT), NOW)
                .unwrap();
        }
        assert_eq!(v.seen.lock().unwrap().len(), 3);
        let mut later = claims("d");
        later["nbf"] = json!(NOW + 590);
        later["exp"] = json!(NOW + 1200);
        v.verify(&rs256(&later, CLIENT_KEY, CLIENT_CERT), NOW + 590)
            .unwrap();
        let seen = v.seen.lock().unwrap();
        assert_eq!(seen.keys().collect::<Vec<_>>(), ["d"]);
    }

    #[test]
    fn wrong_audience_fails() {
        let mut c = claims("a");
        c["aud"] = json!("https://login.microsoftonline.com/common/oauth2/v2.0/token");
        let err = verifier()
            .verify(&rs256(&c, CLIENT_KEY, CLIENT_CERT), NOW)
            .unwrap_err();
        assert!(matches!(err, AssertionError::WrongAudience { .. }), "{err}");
        assert_eq!(err.aadsts_code(), 700023);

        c.as_object_mut().unwrap().remove("aud");
        let err = verifier()
            .verify(&rs256(&c, CLIENT_KEY, CLIENT_CERT), NOW)
            .unwrap_err();
        assert!(matches!(err, AssertionError::WrongAudience { .. }), "{err}");
    }

    #[test]
    fn wrong_issuer_or_subject_fails() {
        for claim in ["iss", "sub"] {
            let mut c = claims("a");
            c[claim] = json!("00000000-0000-0000-0000-000000000000");
            let err = verifier()
                .verify(&rs256(&c, CLIENT_KEY, CLIENT_CERT), NOW)
                .unwrap_err();
            assert!(
                matches!(err, AssertionError::WrongIssuer { .. }),
                "{claim}: {err}"
            );
            assert!(err.to_string().starts_with("AADSTS700021:"));
        }
    }

    #[test]
    fn expired_fails_without_leeway() {
        let token = rs256(&claims("a"), CLIENT_KEY, CLIENT_CERT);
        let exp = NOW + 590;
        let err = verifier().verify(&token, exp).unwrap_err();
        assert_eq!(
            err,
            AssertionError::Expired {
                now: exp,
                nbf: NOW - 10,
                exp
            }
        );
        assert!(err.to_string().starts_with("AADSTS700024:"), "{err}");
        assert_eq!(verifier().verify(&token, exp - 1), Ok(()));
    }

    #[test]
    fn not_yet_valid_fails_without_leeway() {
        let token = rs256(&claims("a"), CLIENT_KEY, CLIENT_CERT);
        let nbf = NOW - 10;
        let err = verifier().verify(&token, nbf - 1).unwrap_err();
        assert!(matches!(err, AssertionError::NotYetValid { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("Current time: 2025-06-15T15:06:29Z"),
            "{text}"
        );
        assert!(text.contains("valid from 2025-06-15T15:06:30Z"), "{text}");
        assert_eq!(verifier().verify(&token, nbf), Ok(()));
    }

    #[test]
    fn unknown_thumbprint_fails() {
        let token = rs256(&claims("a"), OTHER_KEY, OTHER_CERT);
        let err = verifier().verify(&token, NOW).unwrap_err();
        let thumbprint = thumbprint_sha1(&der(OTHER_CERT));
        assert_eq!(err, AssertionError::UnknownCertificate { thumbprint });
        assert!(err.to_string().starts_with("AADSTS700027:"));

        let token = ps256(&claims("b"), OTHER_KEY, OTHER_CERT);
        let err = verifier().verify(&token, NOW).unwrap_err();
        assert!(
            matches!(err, AssertionError::UnknownCertificate { .. }),
            "{err}"
        );
    }

    #[test]
    fn thumbprint_header_must_match_the_algorithm() {
        // RS256 with only x5t#S256, PS256 with only x5t.
        let mut header = Header::new(Algorithm::RS256);
        header.x5t_s256 = Some(thumbprint_sha256(&der(CLIENT_CERT)));
        let err = verifier()
            .verify(&sign(&header, &claims("a"), CLIENT_KEY), NOW)
            .unwrap_err();
        assert!(matches!(err, AssertionError::Malformed(_)), "{err}");

        let mut header = Header::new(Algorithm::PS256);
        header.x5t = Some(thumbprint_sha1(&der(CLIENT_CERT)));
        let err = verifier()
            .verify(&sign(&header, &claims("b"), CLIENT_KEY), NOW)
            .unwrap_err();
        assert!(matches!(err, AssertionError::Malformed(_)), "{err}");
    }

    #[test]
    fn signature_by_another_key_fails() {
        let token = rs256(&claims("a"), OTHER_KEY, CLIENT_CERT);
        let err = verifier().verify(&token, NOW).unwrap_err();
        let thumbprint = thumbprint_sha1(&der(CLIENT_CERT));
        assert_eq!(err, AssertionError::BadSignature { thumbprint });

        let token = ps256(&claims("b"), OTHER_KEY, CLIENT_CERT);
        let err = verifier().verify(&token, NOW).unwrap_err();
        assert!(matches!(err, AssertionError::BadSignature { .. }), "{err}");
    }

    #[test]
    fn other_algorithms_are_refused() {
        let mut header = Header::new(Algorithm::HS256);
        header.x5t = Some(thumbprint_sha1(&der(CLIENT_CERT)));
        let key = EncodingKey::from_secret(b"guessable");
        let token = jsonwebtoken::encode(&header, &claims("a"), &key).unwrap();
        let err = verifier().verify(&token, NOW).unwrap_err();
        assert_eq!(
            err,
            AssertionError::UnsupportedAlgorithm("HS256".to_owned())
        );

        // alg "none" with an empty signature.
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims("b").to_string());
        let err = verifier()
            .verify(&format!("{header}.{body}."), NOW)
            .unwrap_err();
        assert_eq!(err, AssertionError::UnsupportedAlgorithm("none".to_owned()));
    }

    #[test]
    fn missing_jti_and_garbage_are_malformed() {
        let mut c = claims("a");
        c.as_object_mut().unwrap().remove("jti");
        let err = verifier()
            .verify(&rs256(&c, CLIENT_KEY, CLIENT_CERT), NOW)
            .unwrap_err();
        assert!(matches!(err, AssertionError::Malformed(_)), "{err}");

        for garbage in ["", "abc", "a.b.c", "a.b.c.d", "eyJ.eyJ.sig"] {
            let err = verifier().verify(garbage, NOW).unwrap_err();
            assert!(
                matches!(err, AssertionError::Malformed(_)),
                "{garbage}: {err}"
            );
            assert!(err.to_string().starts_with("AADSTS50027:"));
        }
    }

    #[test]
    fn bad_typ_is_malformed() {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("at+jwt".to_owned());
        header.x5t = Some(thumbprint_sha1(&der(CLIENT_CERT)));
        let err = verifier()
            .verify(&sign(&header, &claims("a"), CLIENT_KEY), NOW)
            .unwrap_err();
        assert!(matches!(err, AssertionError::Malformed(_)), "{err}");
    }

    #[test]
    fn several_certificates_can_be_registered() {
        let both = format!("{CLIENT_CERT}{OTHER_CERT}");
        let v = AssertionVerifier::new(CLIENT, vec![AUD.to_owned()], &both).unwrap();
        assert_eq!(
            v.verify(&rs256(&claims("a"), CLIENT_KEY, CLIENT_CERT), NOW),
            Ok(())
        );
        assert_eq!(
            v.verify(&ps256(&claims("b"), OTHER_KEY, OTHER_CERT), NOW),
            Ok(())
        );
    }

    #[test]
    fn constructor_rejects_bad_configuration() {
        let aud = || vec![AUD.to_owned()];
        assert!(AssertionVerifier::new(CLIENT, vec![], CLIENT_CERT).is_err());
        assert!(AssertionVerifier::new(CLIENT, aud(), "").is_err());
        assert!(AssertionVerifier::new(CLIENT, aud(), "not pem").is_err());
        // A private key alone is not a certificate; it must not be echoed in the error.
        let err = AssertionVerifier::new(CLIENT, aud(), CLIENT_KEY).unwrap_err();
        assert!(!err.contains("MII"), "{err}");
        let broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = AssertionVerifier::new(CLIENT, aud(), broken).unwrap_err();
        assert!(err.contains("certificate #1"), "{err}");
    }

    #[test]
    fn every_error_names_its_aadsts_code() {
        let errors = [
            AssertionError::Malformed("x".into()),
            AssertionError::UnsupportedAlgorithm("ES256".into()),
            AssertionError::UnknownCertificate {
                thumbprint: "t".into(),
            },
            AssertionError::BadSignature {
                thumbprint: "t".into(),
            },
            AssertionError::WrongAudience {
                found: "a".into(),
                expected: "b".into(),
            },
            AssertionError::WrongIssuer {
                iss: "i".into(),
                sub: "s".into(),
                expected: "e".into(),
            },
            AssertionError::NotYetValid {
                now: 0,
                nbf: 1,
                exp: 2,
            },
            AssertionError::Expired {
                now: 2,
                nbf: 0,
                exp: 1,
            },
            AssertionError::Replayed { jti: "j".into() },
        ];
        for err in errors {
            let prefix = format!("AADSTS{}:", err.aadsts_code());
            assert!(err.to_string().starts_with(&prefix), "{err}");
        }
    }

    // --- access tokens

    const KEY: [u8; 32] = [0xA7; 32];

    fn issuer() -> TokenIssuer {
        TokenIssuer::new(KEY, Duration::from_secs(3599))
    }

    fn granted() -> Vec<String> {
        GRANTED_ROLES.iter().map(|r| (*r).to_owned()).collect()
    }

    fn payload(token: &str) -> Value {
        let body = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap()
    }

    #[test]
    fn token_round_trip() {
        let issuer = issuer();
        let token = issuer.issue(TENANT, CLIENT, &granted(), NOW);
        assert!(token.starts_with("eyJ"), "{token}");
        let claims = issuer.validate(&token, NOW + 100).unwrap();
        assert_eq!(
            claims,
            TokenClaims {
                tenant_id: TENANT.to_owned(),
                client_id: CLIENT.to_owned(),
                exp: NOW + 3599,
                roles: granted(),
            }
        );
    }

    #[test]
    fn roles_claim_lists_the_permissions_and_is_absent_without_any() {
        let issuer = issuer();
        let roles = vec!["User.Read.All".to_owned(), "Sites.Selected".to_owned()];
        let p = payload(&issuer.issue(TENANT, CLIENT, &roles, NOW));
        assert_eq!(p["roles"], json!(["User.Read.All", "Sites.Selected"]));
        assert_eq!(p["idtyp"], "app");

        let token = issuer.issue(TENANT, CLIENT, &[], NOW);
        assert!(payload(&token).get("roles").is_none());
        assert_eq!(
            issuer.validate(&token, NOW).unwrap().roles,
            Vec::<String>::new()
        );
    }

    #[test]
    fn token_claims_look_like_entra() {
        let token = issuer().issue(TENANT, CLIENT, &granted(), NOW);
        let p = payload(&token);
        assert_eq!(p["aud"], GRAPH_AUDIENCE);
        assert_eq!(p["iss"], format!("https://sts.windows.net/{TENANT}/"));
        assert_eq!(p["tid"], TENANT);
        assert_eq!(p["appid"], CLIENT);
        assert_eq!(p["iat"], NOW);
        assert_eq!(p["nbf"], NOW);
        assert_eq!(p["exp"], NOW + 3599);
        assert_eq!(p["roles"].as_array().unwrap().len(), GRANTED_ROLES.len());
        let other = payload(&issuer().issue(TENANT, CLIENT, &granted(), NOW));
        assert_eq!(p["uti"].as_str().unwrap().len(), 22);
        assert_ne!(p["uti"], other["uti"]);
    }

    #[test]
    fn token_expires_without_leeway() {
        let issuer = issuer();
        let token = issuer.issue(TENANT, CLIENT, &granted(), NOW);
        assert!(issuer.validate(&token, NOW + 3598).is_ok());
        assert_eq!(
            issuer.validate(&token, NOW + 3599),
            Err(TokenError::Expired)
        );
        assert_eq!(
            issuer.validate(&token, NOW - 1),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn tampered_or_foreign_tokens_are_rejected() {
        let issuer = issuer();
        let token = issuer.issue(TENANT, CLIENT, &granted(), NOW);
        let mut p = payload(&token);
        p["tid"] = json!("00000000-0000-0000-0000-000000000000");
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(p.to_string());
        let tampered = parts.join(".");
        assert_eq!(
            issuer.validate(&tampered, NOW),
            Err(TokenError::BadSignature)
        );

        let foreign = TokenIssuer::new([1; 32], Duration::from_secs(3599)).issue(
            TENANT,
            CLIENT,
            &granted(),
            NOW,
        );
        assert_eq!(
            issuer.validate(&foreign, NOW),
            Err(TokenError::BadSignature)
        );

        for garbage in ["", "Bearer", "a.b.c", "eyJ.eyJ.sig"] {
            assert_eq!(
                issuer.validate(garbage, NOW),
                Err(TokenError::Malformed),
                "{garbage}"
            );
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let shown = format!("{:?}", issuer());
        assert!(shown.contains("redacted"), "{shown}");
        assert!(!shown.contains("167"), "{shown}"); // 0xA7
        assert!(!shown.contains("a7") && !shown.contains("A7"), "{shown}");
    }
}

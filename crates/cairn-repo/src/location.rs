//! Where a repository is: a local directory or an S3 bucket, from a restic-style URL.

use crate::repo::RepoError;
use std::collections::BTreeMap;

/// A parsed repository URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// `/path` or `local:/path`.
    Local(String),
    /// `s3:http(s)://host[:port]/bucket[/prefix]` (path-style, any S3-compatible store).
    S3 {
        endpoint: String,
        bucket: String,
        prefix: String,
    },
}

impl Location {
    pub fn parse(url: &str) -> Result<Self, RepoError> {
        if let Some(rest) = url.strip_prefix("s3:") {
            let (scheme, after) = rest.split_once("://").ok_or_else(|| {
                RepoError::Config(format!(
                    "repository URL {url} is not s3:http(s)://host/bucket[/prefix]"
                ))
            })?;
            let mut parts = after.splitn(3, '/');
            let host = parts.next().unwrap_or("");
            let bucket = parts.next().unwrap_or("");
            let prefix = parts.next().unwrap_or("").trim_matches('/');
            if host.is_empty() || bucket.is_empty() {
                return Err(RepoError::Config(format!(
                    "repository URL {url} needs a host and a bucket: s3:https://host/bucket[/prefix]"
                )));
            }
            return Ok(Location::S3 {
                endpoint: format!("{scheme}://{host}"),
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            });
        }
        let path = url.strip_prefix("local:").unwrap_or(url);
        if path.is_empty() {
            return Err(RepoError::Config("the repository path is empty".into()));
        }
        if let Some((scheme, _)) = path.split_once(':')
            && !scheme.contains('/')
            && scheme.len() > 1
        {
            return Err(RepoError::Config(format!(
                "repository URL scheme '{scheme}:' is not supported; use a local path or s3:https://host/bucket"
            )));
        }
        Ok(Location::Local(path.to_string()))
    }
}

/// The URL as a person writes it (`/srv/cairn`, `s3:https://host/bucket/prefix`): what
/// messages show.
impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(p) => f.write_str(p),
            Location::S3 {
                endpoint,
                bucket,
                prefix,
            } if prefix.is_empty() => write!(f, "s3:{endpoint}/{bucket}"),
            Location::S3 {
                endpoint,
                bucket,
                prefix,
            } => write!(f, "s3:{endpoint}/{bucket}/{prefix}"),
        }
    }
}

/// Everything needed to reach and unlock a repository.
#[derive(Clone)]
pub struct RepoOptions {
    pub location: Location,
    pub password: String,
    /// S3 credentials and region, given by the caller (the library reads no environment:
    /// a server holds several repositories). Without a region, `us-east-1`.
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<String>,
    pub s3_region: Option<String>,
    /// Local cache of repository metadata (none: no cache).
    pub cache_dir: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for RepoOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoOptions")
            .field("location", &self.location)
            .field("password", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl RepoOptions {
    pub fn new(url: &str, password: &str) -> Result<Self, RepoError> {
        Ok(Self {
            location: Location::parse(url)?,
            password: password.to_string(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_region: None,
            cache_dir: None,
        })
    }

    /// The rustic backend string and options.
    pub(crate) fn backend(&self) -> (String, BTreeMap<String, String>) {
        match &self.location {
            Location::Local(p) => (p.clone(), BTreeMap::new()),
            Location::S3 {
                endpoint,
                bucket,
                prefix,
            } => {
                let mut o = BTreeMap::new();
                o.insert("endpoint".into(), endpoint.clone());
                o.insert("bucket".into(), bucket.clone());
                o.insert("root".into(), format!("/{prefix}"));
                o.insert(
                    "region".into(),
                    self.s3_region.clone().unwrap_or_else(|| "us-east-1".into()),
                );
                if let Some(k) = &self.s3_access_key_id {
                    o.insert("access_key_id".into(), k.clone());
                }
                if let Some(s) = &self.s3_secret_access_key {
                    o.insert("secret_access_key".into(), s.clone());
                }
                o.insert("disable_config_load".into(), "true".into());
                // Content-MD5 on every upload: integrity, and required by buckets with
                // Object Lock default retention.
                o.insert("checksum_algorithm".into(), "md5".into());
                ("opendal:s3".into(), o)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        assert_eq!(
            Location::parse("/srv/r").unwrap(),
            Location::Local("/srv/r".into())
        );
        assert_eq!(
            Location::parse("local:/srv/r").unwrap(),
            Location::Local("/srv/r".into())
        );
        assert_eq!(
            Location::parse("s3:http://127.0.0.1:9000/bkt/cairn/prod").unwrap(),
            Location::S3 {
                endpoint: "http://127.0.0.1:9000".into(),
                bucket: "bkt".into(),
                prefix: "cairn/prod".into()
            }
        );
        assert!(Location::parse("s3:nohost").is_err());
        assert!(Location::parse("sftp:host:/x").is_err());
        let o = RepoOptions::new("/x", "pw").unwrap();
        assert!(!format!("{o:?}").contains("pw\""));
    }

    #[test]
    fn locations_show_as_written() {
        for url in [
            "/srv/r",
            "s3:http://127.0.0.1:9000/bkt/cairn/prod",
            "s3:https://h/b",
        ] {
            assert_eq!(Location::parse(url).unwrap().to_string(), url);
        }
        assert_eq!(
            Location::parse("local:/srv/r").unwrap().to_string(),
            "/srv/r"
        );
    }
}

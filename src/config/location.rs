//! Where files live: parsing `source_path` / `destination_path` into a
//! store and a key prefix within it.

use std::path::{Path, PathBuf};

/// A parsed location, before any connection is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LocationSpec {
    /// A local path (plain or `file://`), possibly relative to the config.
    Local(PathBuf),
    S3 {
        bucket: String,
        prefix: String,
    },
    Gcs {
        bucket: String,
        prefix: String,
    },
    Azure {
        container: String,
        prefix: String,
    },
    /// `memory://NAME/prefix`: a process-wide in-memory store, for tests and demos.
    Memory {
        name: String,
        prefix: String,
    },
    /// `ftp://host[:port]/path`, or `ftps://…`: FTP with explicit TLS
    /// (`AUTH TLS`) on the control and data connections. The path is
    /// relative to the login folder (RFC 1738), or absolute when it starts
    /// with `%2F` (`ftp://host/%2Fdata/` is `/data`).
    Ftp {
        host: String,
        port: Option<u16>,
        prefix: String,
        tls: bool,
        absolute: bool,
    },
    /// `sftp://host[:port]/path`.
    Sftp {
        host: String,
        port: Option<u16>,
        prefix: String,
    },
}

impl LocationSpec {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(Self::Local(PathBuf::from(text)));
        };
        let split = |rest: &str, what: &str| -> Result<(String, String), String> {
            let (head, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if head.is_empty() {
                return Err(format!(
                    "`{text}` has no {what}; write {scheme}://{what}/prefix/"
                ));
            }
            Ok((head.to_string(), prefix.to_string()))
        };
        match scheme {
            "file" => Ok(Self::Local(PathBuf::from(rest))),
            "s3" | "s3a" => {
                split(rest, "bucket").map(|(bucket, prefix)| Self::S3 { bucket, prefix })
            }
            "gs" => split(rest, "bucket").map(|(bucket, prefix)| Self::Gcs { bucket, prefix }),
            "az" | "azure" => split(rest, "container")
                .map(|(container, prefix)| Self::Azure { container, prefix }),
            "memory" => split(rest, "name").map(|(name, prefix)| Self::Memory { name, prefix }),
            "ftp" | "ftps" | "sftp" => {
                let (authority, prefix) = split(rest, "host")?;
                let (host, port) = match authority.rsplit_once(':') {
                    Some((host, port)) => {
                        let port = port.parse().map_err(|_| {
                            format!("`{text}` has a bad port; write {scheme}://host:port/path/")
                        })?;
                        (host.to_string(), Some(port))
                    }
                    None => (authority, None),
                };
                Ok(match scheme {
                    "sftp" => Self::Sftp { host, port, prefix },
                    _ => {
                        let absolute = prefix
                            .get(..3)
                            .is_some_and(|start| start.eq_ignore_ascii_case("%2F"));
                        let prefix = if absolute {
                            prefix[3..].trim_start_matches('/').to_string()
                        } else {
                            prefix
                        };
                        Self::Ftp {
                            host,
                            port,
                            prefix,
                            tls: scheme == "ftps",
                            absolute,
                        }
                    }
                })
            }
            other => Err(format!(
                "unknown scheme `{other}://`; use a local path, file://, s3://, gs://, az://, ftp://, ftps://, sftp:// or memory://"
            )),
        }
    }

    /// The key prefix inside the store, as written (a trailing `/` kept).
    pub(crate) fn key_prefix(&self, base_dir: &Path) -> String {
        match self {
            Self::Local(path) => {
                let absolute = if path.is_absolute() {
                    path.clone()
                } else {
                    base_dir.join(path)
                };
                let absolute = normalize(&absolute);
                let mut key = absolute
                    .to_string_lossy()
                    .trim_start_matches('/')
                    .to_string();
                let text = path.to_string_lossy();
                if (text.ends_with('/') || text.is_empty() || text == ".")
                    && !key.ends_with('/')
                    && !key.is_empty()
                {
                    key.push('/');
                }
                key
            }
            Self::S3 { prefix, .. }
            | Self::Gcs { prefix, .. }
            | Self::Azure { prefix, .. }
            | Self::Memory { prefix, .. }
            | Self::Ftp { prefix, .. }
            | Self::Sftp { prefix, .. } => prefix.clone(),
        }
    }
}

/// The known_hosts file `ssh` itself reads, when it exists: where an SFTP
/// server's host key is looked up when the config names no other way.
pub(crate) fn default_known_hosts() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var_os("HOME")?)
        .join(".ssh")
        .join("known_hosts");
    path.is_file().then_some(path)
}

/// Removes `.` and resolves `..` lexically, so keys are canonical.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Why a listed name cannot be written under the destination, if it cannot.
pub(crate) fn unsafe_relative_path(relative: &str) -> Option<&'static str> {
    if relative.is_empty() {
        return Some("empty name");
    }
    if relative.starts_with('/') || relative.starts_with('\\') {
        return Some("absolute path");
    }
    if relative.contains('\0') {
        return Some("NUL character in name");
    }
    for segment in relative.split('/') {
        match segment {
            ".." => return Some("`..` segment would leave the destination"),
            "." | "" => return Some("empty or `.` path segment"),
            _ => {}
        }
    }
    None
}

/// Whether `text` is an SSH host key's SHA256 fingerprint as `ssh-keygen -l`
/// prints it (`SHA256:` and 43 base64 characters; the prefix and a trailing
/// `=` are optional, as other tools write it).
pub fn is_sha256_fingerprint(text: &str) -> bool {
    let digest = sha256_fingerprint_digest(text);
    digest.len() == 43
        && digest
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/')
}

/// The base64 digest of a SHA256 fingerprint, without its `SHA256:` prefix
/// or `=` padding, so two ways of writing one key compare equal.
pub fn sha256_fingerprint_digest(text: &str) -> &str {
    let text = text.trim();
    text.strip_prefix("SHA256:")
        .unwrap_or(text)
        .trim_end_matches('=')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_compared_however_they_are_written() {
        let printed = "SHA256:2atksxrMQry1/hjDZ5f2wILKKStRICv1dzHTSz5dxBg";
        for written in [
            printed,
            "2atksxrMQry1/hjDZ5f2wILKKStRICv1dzHTSz5dxBg",
            "SHA256:2atksxrMQry1/hjDZ5f2wILKKStRICv1dzHTSz5dxBg=",
            " 2atksxrMQry1/hjDZ5f2wILKKStRICv1dzHTSz5dxBg= ",
        ] {
            assert!(is_sha256_fingerprint(written), "{written}");
            assert_eq!(
                sha256_fingerprint_digest(written),
                sha256_fingerprint_digest(printed)
            );
        }
        for wrong in [
            "MD5:aa:bb",
            "SHA256:short",
            "",
            "SHA256:2atksxrMQry1/hjDZ5f2wILKKStRICv1dzHTSz5dx!g",
        ] {
            assert!(!is_sha256_fingerprint(wrong), "{wrong}");
        }
    }

    #[test]
    fn parses_schemes() {
        assert_eq!(
            LocationSpec::parse("s3://bucket/data/").expect("s3"),
            LocationSpec::S3 {
                bucket: "bucket".into(),
                prefix: "data/".into()
            }
        );
        assert_eq!(
            LocationSpec::parse("/tmp/x").expect("local"),
            LocationSpec::Local("/tmp/x".into())
        );
        assert!(LocationSpec::parse("s3:///nobucket").is_err());
        assert_eq!(
            LocationSpec::parse("ftp://files.example.com:2121/data/").expect("ftp"),
            LocationSpec::Ftp {
                host: "files.example.com".into(),
                port: Some(2121),
                prefix: "data/".into(),
                tls: false,
                absolute: false,
            }
        );
        assert_eq!(
            LocationSpec::parse("ftp://files.example.com/%2fsrv/data/").expect("ftp"),
            LocationSpec::Ftp {
                host: "files.example.com".into(),
                port: None,
                prefix: "srv/data/".into(),
                tls: false,
                absolute: true,
            },
            "%2F at the start of an FTP path makes it absolute"
        );
        assert_eq!(
            LocationSpec::parse("sftp://files.example.com/data/").expect("sftp"),
            LocationSpec::Sftp {
                host: "files.example.com".into(),
                port: None,
                prefix: "data/".into()
            }
        );
        assert_eq!(
            LocationSpec::parse("ftps://host/x/").expect("ftps"),
            LocationSpec::Ftp {
                host: "host".into(),
                port: None,
                prefix: "x/".into(),
                tls: true,
                absolute: false,
            }
        );
        assert!(
            LocationSpec::parse("gopher://x/y")
                .expect_err("unknown")
                .contains("unknown scheme")
        );
    }

    #[test]
    fn local_prefix_is_absolute_and_keeps_the_slash() {
        let spec = LocationSpec::parse("data/in/").expect("local");
        assert_eq!(spec.key_prefix(Path::new("/etc/app")), "etc/app/data/in/");
        let spec = LocationSpec::parse("./data/../x.csv").expect("local");
        assert_eq!(spec.key_prefix(Path::new("/w")), "w/x.csv");
    }

    #[test]
    fn refuses_names_that_escape() {
        assert!(unsafe_relative_path("../etc/passwd").is_some());
        assert!(unsafe_relative_path("a/../../b").is_some());
        assert!(unsafe_relative_path("/abs").is_some());
        assert_eq!(unsafe_relative_path("a b/é.csv"), None);
    }
}

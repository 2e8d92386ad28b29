//! `decryption_identities` of the trust policy directory: the age X25519 identities
//! an encrypted package is decrypted with ([`crate::decrypt`] uses them). They are
//! secrets: `Debug` shows only the public recipients, and no error contains a line
//! of the file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::x25519;
use anyhow::{bail, Context, Result};

/// The file name in the trust policy directory.
pub const IDENTITIES_FILE: &str = "decryption_identities";

/// The X25519 identities of `decryption_identities`. `Debug` shows only the public
/// recipients.
pub struct Identities {
    keys: Vec<x25519::Identity>,
    /// Where they were read from, for errors.
    pub path: PathBuf,
}

impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identities").field("recipients", &self.recipients()).field("path", &self.path).finish()
    }
}

impl Identities {
    /// Parse an age identity file: `AGE-SECRET-KEY-1...` lines, `#` comments and blank
    /// lines. Errors name the line, never its content.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self> {
        let w = path.display();
        let text = std::str::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{w}: not UTF-8 text"))?;
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match x25519::Identity::from_str(line) {
                Ok(k) => keys.push(k),
                Err(_) if line.starts_with("AGE-PLUGIN-") => bail!(
                    "{w}: line {}: an age plugin identity; stboot has no plugins, expected an X25519 identity (AGE-SECRET-KEY-1..., from age-keygen)",
                    i + 1
                ),
                Err(_) => bail!(
                    "{w}: line {}: not an age X25519 identity, expected AGE-SECRET-KEY-1... as age-keygen writes it (the line is not shown: it may be secret)",
                    i + 1
                ),
            }
        }
        if keys.is_empty() {
            bail!("{w}: no identity in the file; expected AGE-SECRET-KEY-1... lines from age-keygen, or remove the file to boot unencrypted packages only");
        }
        Ok(Self { keys, path: path.to_path_buf() })
    }

    /// Read `DIR/decryption_identities` if it exists.
    pub fn load(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(IDENTITIES_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&bytes, &path).map(Some)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The public recipients (`age1...`) packages must be encrypted to.
    pub fn recipients(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.to_public().to_string()).collect()
    }

    /// The keys, for decryption.
    pub(crate) fn keys(&self) -> &[x25519::Identity] {
        &self.keys
    }
}

//! The manifest (`manifest.json` inside the archive): which entries to boot, and how.

use anyhow::{bail, Result};
use serde::Serialize;
use serde_json::Value;

use crate::gojson;

pub const MANIFEST_VERSION: u64 = 1;
/// The name of the manifest entry in the archive.
pub const MANIFEST_NAME: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    pub version: u64,
    pub label: String,
    /// Exact name of the kernel's archive entry.
    pub kernel: String,
    /// Exact name of the initramfs's archive entry.
    pub initramfs: String,
    /// Passed verbatim to the booted kernel.
    pub cmdline: String,
}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let obj = gojson::parse_object(bytes, MANIFEST_NAME)?;
        let version = match gojson::get_non_null(&obj, "version") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(other) => bail!(
                "{MANIFEST_NAME}: field \"version\": expected the number {MANIFEST_VERSION}, found {}",
                gojson::type_name(other)
            ),
            None => None,
        };
        if version != Some(MANIFEST_VERSION) {
            let shown = gojson::get(&obj, "version").map(|v| v.to_string()).unwrap_or_else(|| "nothing".into());
            bail!("{MANIFEST_NAME}: field \"version\": unsupported version {shown}, expected {MANIFEST_VERSION}");
        }
        let s = |k| gojson::opt_string(&obj, k, MANIFEST_NAME).map(Option::unwrap_or_default);
        let m = Manifest {
            version: MANIFEST_VERSION,
            label: s("label")?,
            kernel: s("kernel")?,
            initramfs: s("initramfs")?,
            cmdline: s("cmdline")?,
        };
        m.validate()?;
        Ok(m)
    }

    pub fn validate(&self) -> Result<()> {
        if self.kernel.is_empty() {
            bail!("{MANIFEST_NAME}: field \"kernel\" is missing or empty, expected the name of the kernel's archive entry");
        }
        if self.initramfs.is_empty() {
            bail!("{MANIFEST_NAME}: field \"initramfs\" is missing or empty, expected the name of the initramfs's archive entry");
        }
        if self.cmdline.contains('\0') {
            bail!("{MANIFEST_NAME}: field \"cmdline\" contains a NUL byte");
        }
        Ok(())
    }

    pub fn to_json(&self) -> String {
        gojson::marshal_indent(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_go_layout() {
        let m = Manifest {
            version: 1,
            label: "L".into(),
            kernel: "boot/k".into(),
            initramfs: "boot/i".into(),
            cmdline: "console=ttyS0".into(),
        };
        let j = m.to_json();
        assert_eq!(j, "{\n  \"version\": 1,\n  \"label\": \"L\",\n  \"kernel\": \"boot/k\",\n  \"initramfs\": \"boot/i\",\n  \"cmdline\": \"console=ttyS0\"\n}");
        assert_eq!(Manifest::parse(j.as_bytes()).unwrap(), m);
    }

    #[test]
    fn errors() {
        let e = Manifest::parse(br#"{"version":1,"initramfs":"i"}"#).unwrap_err().to_string();
        assert!(e.contains("\"kernel\" is missing"), "{e}");
        let e = Manifest::parse(br#"{"version":1,"kernel":"k"}"#).unwrap_err().to_string();
        assert!(e.contains("\"initramfs\" is missing"), "{e}");
        let e = Manifest::parse(br#"{"version":7,"kernel":"k","initramfs":"i"}"#).unwrap_err().to_string();
        assert!(e.contains("unsupported version 7"), "{e}");
        let e = Manifest::parse(br#"{"version":1,"kernel":5,"initramfs":"i"}"#).unwrap_err().to_string();
        assert!(e.contains("\"kernel\": expected a string, found a number"), "{e}");
    }
}

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
    /// stboot-rs extension: the package's version for rollback protection, a
    /// number that only rises from release to release (`stmgr ospkg create
    /// -version N`). Inside the archive, so the signatures cover it; upstream's
    /// tools ignore the field. Absent: version 0 (and no version event is
    /// measured, so upstream's packages measure as before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ospkg_version: Option<u64>,
    /// stboot-rs extension: the archive entry of a unified kernel image (`stmgr
    /// ospkg create -uki`), which carries kernel, initrd and command line itself;
    /// `kernel`, `initramfs` and `cmdline` are then empty ([`super::uki`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uki: Option<String>,
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
        let ospkg_version = gojson::opt_whole(&obj, "ospkg_version", MANIFEST_NAME, "")?;
        let uki = gojson::opt_string(&obj, "uki", MANIFEST_NAME)?;
        let m = Manifest {
            version: MANIFEST_VERSION,
            label: s("label")?,
            kernel: s("kernel")?,
            initramfs: s("initramfs")?,
            cmdline: s("cmdline")?,
            ospkg_version,
            uki,
        };
        m.validate()?;
        Ok(m)
    }

    pub fn validate(&self) -> Result<()> {
        if let Some(uki) = &self.uki {
            if uki.is_empty() {
                bail!("{MANIFEST_NAME}: field \"uki\" is empty, expected the name of the UKI's archive entry");
            }
            for (field, value) in [("kernel", &self.kernel), ("initramfs", &self.initramfs), ("cmdline", &self.cmdline)]
            {
                if !value.is_empty() {
                    bail!("{MANIFEST_NAME}: field \"{field}\" must be empty in a UKI package (field \"uki\"): the UKI carries the kernel, the initrd and the command line");
                }
            }
            return Ok(());
        }
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

    /// The version rollback protection compares: `ospkg_version`, 0 without one.
    pub fn rollback_version(&self) -> u64 {
        self.ospkg_version.unwrap_or(0)
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
            ospkg_version: None,
            uki: None,
        };
        let j = m.to_json();
        assert_eq!(j, "{\n  \"version\": 1,\n  \"label\": \"L\",\n  \"kernel\": \"boot/k\",\n  \"initramfs\": \"boot/i\",\n  \"cmdline\": \"console=ttyS0\"\n}");
        assert_eq!(Manifest::parse(j.as_bytes()).unwrap(), m);
        // the version, when there is one, comes last (upstream's fields keep their places)
        let v = Manifest { ospkg_version: Some(7), ..m };
        assert!(v.to_json().ends_with("\"cmdline\": \"console=ttyS0\",\n  \"ospkg_version\": 7\n}"), "{}", v.to_json());
        assert_eq!(Manifest::parse(v.to_json().as_bytes()).unwrap(), v);
        assert_eq!(v.rollback_version(), 7);
        // a UKI package: the entry named, the upstream fields empty
        let u = Manifest {
            kernel: String::new(),
            initramfs: String::new(),
            cmdline: String::new(),
            uki: Some("boot/os.efi".into()),
            ..v
        };
        assert!(u.to_json().ends_with("\"ospkg_version\": 7,\n  \"uki\": \"boot/os.efi\"\n}"), "{}", u.to_json());
        assert_eq!(Manifest::parse(u.to_json().as_bytes()).unwrap(), u);
        let e = Manifest::parse(br#"{"version":1,"kernel":"k","initramfs":"","uki":"boot/os.efi"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("field \"kernel\" must be empty in a UKI package"), "{e}");
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
        for bad in ["-1", "1.5", "\"3\"", "18446744073709551616"] {
            let j = format!(r#"{{"version":1,"kernel":"k","initramfs":"i","ospkg_version":{bad}}}"#);
            let e = Manifest::parse(j.as_bytes()).unwrap_err().to_string();
            assert!(e.contains("field \"ospkg_version\": expected a whole number >= 0"), "{bad}: {e}");
        }
    }
}

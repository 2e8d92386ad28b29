//! The OS package descriptor (`NAME.json`): where the archive is, and who signed it.

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use serde::Serialize;
use serde_json::Value;

use crate::gojson;

/// The only descriptor version there is.
pub const DESCRIPTOR_VERSION: u64 = 1;
/// Descriptors are small (a URL and a few certificates); anything larger is refused
/// before it is parsed.
pub const MAX_DESCRIPTOR_BYTES: usize = 1 << 20;

/// A parsed and validated descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// URL of the archive: absolute, relative to the descriptor's URL, or empty.
    pub os_pkg_url: String,
    /// Certificate *i* signs with signature *i*; each is PEM text or DER bytes.
    pub certificates: Vec<Vec<u8>>,
    /// Raw signature bytes (64 bytes for Ed25519).
    pub signatures: Vec<Vec<u8>>,
}

#[derive(Serialize)]
struct Wire<'a> {
    version: u64,
    os_pkg_url: &'a str,
    certificates: Option<Vec<String>>,
    signatures: Option<Vec<String>>,
}

impl Descriptor {
    pub fn new(os_pkg_url: &str) -> Result<Self> {
        validate_url(os_pkg_url)?;
        Ok(Self { os_pkg_url: os_pkg_url.to_string(), certificates: Vec::new(), signatures: Vec::new() })
    }

    /// Parse descriptor bytes; every error names the field and what was expected.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_DESCRIPTOR_BYTES {
            bail!("descriptor: {} bytes, larger than the limit of {} bytes", bytes.len(), MAX_DESCRIPTOR_BYTES);
        }
        let obj = gojson::parse_object(bytes, "descriptor")?;
        let version = match gojson::get_non_null(&obj, "version") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(other) => bail!(
                "descriptor: field \"version\": expected the number {DESCRIPTOR_VERSION}, found {}",
                gojson::type_name(other)
            ),
            None => Some(0),
        };
        if version != Some(DESCRIPTOR_VERSION) {
            let shown = gojson::get(&obj, "version").map(|v| v.to_string()).unwrap_or_else(|| "nothing".into());
            bail!("descriptor: field \"version\": unsupported version {shown}, expected {DESCRIPTOR_VERSION}");
        }
        let os_pkg_url = gojson::opt_string(&obj, "os_pkg_url", "descriptor")?.unwrap_or_default();
        validate_url(&os_pkg_url)?;
        let certificates = base64_array(&obj, "certificates")?;
        let signatures = base64_array(&obj, "signatures")?;
        Ok(Self { os_pkg_url, certificates, signatures })
    }

    /// Serialise exactly as upstream's `json.MarshalIndent` does.
    pub fn to_json(&self) -> String {
        let enc = |v: &Vec<Vec<u8>>| {
            (!v.is_empty()).then(|| v.iter().map(|b| base64::engine::general_purpose::STANDARD.encode(b)).collect())
        };
        gojson::marshal_indent(&Wire {
            version: DESCRIPTOR_VERSION,
            os_pkg_url: &self.os_pkg_url,
            certificates: enc(&self.certificates),
            signatures: enc(&self.signatures),
        })
    }

    /// Resolve `os_pkg_url` against the URL the descriptor came from.
    pub fn archive_url(&self, descriptor_url: &reqwest::Url) -> Result<reqwest::Url> {
        if self.os_pkg_url.is_empty() {
            bail!("descriptor: field \"os_pkg_url\" is empty, expected the URL of the archive");
        }
        let url = descriptor_url
            .join(&self.os_pkg_url)
            .with_context(|| format!("descriptor: field \"os_pkg_url\": cannot resolve {:?}", self.os_pkg_url))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            bail!("descriptor: field \"os_pkg_url\": scheme {:?} is not http or https", url.scheme());
        }
        if !url.path().ends_with(".zip") {
            bail!("descriptor: field \"os_pkg_url\": {url} does not name a .zip file");
        }
        Ok(url)
    }
}

fn validate_url(s: &str) -> Result<()> {
    if s.is_empty() {
        return Ok(());
    }
    if s.trim() != s || s.chars().any(|c| c.is_control()) {
        bail!("descriptor: field \"os_pkg_url\": {s:?} has spaces or control characters, expected a URL");
    }
    match reqwest::Url::parse(s) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(()),
        Ok(u) => bail!("descriptor: field \"os_pkg_url\": scheme {:?} is not http or https", u.scheme()),
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            let base = reqwest::Url::parse("http://base.invalid/dir/x.json").expect("static URL");
            base.join(s).map(|_| ()).map_err(|e| anyhow!("descriptor: field \"os_pkg_url\": {s:?} is not a URL: {e}"))
        }
        Err(e) => bail!("descriptor: field \"os_pkg_url\": {s:?} is not a URL: {e}"),
    }
}

fn base64_array(obj: &gojson::Object, key: &str) -> Result<Vec<Vec<u8>>> {
    let items = match gojson::get_non_null(obj, key) {
        None => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(other) => bail!(
            "descriptor: field \"{key}\": expected an array of base64 strings, found {}",
            gojson::type_name(other)
        ),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Null => Ok(Vec::new()),
            Value::String(s) => {
                // Go's StdEncoding ignores line breaks inside the string.
                let clean: String = s.chars().filter(|&c| c != '\r' && c != '\n').collect();
                base64::engine::general_purpose::STANDARD.decode(clean.as_bytes()).map_err(|e| {
                    anyhow!("descriptor: field \"{key}\"[{i}]: invalid base64 ({e}), expected standard padded base64")
                })
            }
            other => {
                bail!("descriptor: field \"{key}\"[{i}]: expected a base64 string, found {}", gojson::type_name(other))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_descriptor_matches_go_output() {
        let d = Descriptor::new("https://example.org/a.zip?x=1&y=2").unwrap();
        assert_eq!(
            d.to_json(),
            "{\n  \"version\": 1,\n  \"os_pkg_url\": \"https://example.org/a.zip?x=1\\u0026y=2\",\n  \"certificates\": null,\n  \"signatures\": null\n}"
        );
        assert_eq!(Descriptor::parse(d.to_json().as_bytes()).unwrap(), d);
    }

    #[test]
    fn parses_upstream_shapes() {
        let d =
            Descriptor::parse(br#"{"version":1,"os_pkg_url":"","certificates":["AQID",null],"signatures":["YW\nJj"]}"#)
                .unwrap();
        assert_eq!(d.certificates, vec![vec![1, 2, 3], vec![]]);
        assert_eq!(d.signatures, vec![b"abc".to_vec()]);
        let d = Descriptor::parse(br#"{"Version":1,"OS_PKG_URL":"x.zip","extra":true}"#).unwrap();
        assert_eq!(d.os_pkg_url, "x.zip");
    }

    #[test]
    fn errors_name_the_field() {
        let cases: &[(&[u8], &str)] = &[
            (br#"{"version":2}"#, "field \"version\": unsupported version 2, expected 1"),
            (br#"{}"#, "field \"version\": unsupported version nothing"),
            (br#"{"version":"1"}"#, "field \"version\": expected the number 1, found a string"),
            (br#"{"version":1,"signatures":["!!"]}"#, "field \"signatures\"[0]: invalid base64"),
            (br#"{"version":1,"signatures":["QQ"]}"#, "field \"signatures\"[0]: invalid base64"),
            (br#"{"version":1,"certificates":{}}"#, "field \"certificates\": expected an array"),
            (br#"{"version":1,"os_pkg_url":"ftp://x/y.zip"}"#, "scheme \"ftp\" is not http or https"),
            (br#"{"version":1,"os_pkg_url":" http://x/y.zip"}"#, "has spaces"),
            (br#"{"version":1} trailing"#, "not valid JSON"),
            (b"[]", "expected a JSON object, found an array"),
        ];
        for (input, want) in cases {
            let e = format!("{:#}", Descriptor::parse(input).unwrap_err());
            assert!(e.contains(want), "{e:?} should contain {want:?}");
        }
    }

    #[test]
    fn huge_descriptor_is_refused() {
        let big = format!(r#"{{"version":1,"os_pkg_url":"{}"}}"#, "a".repeat(5_000_000));
        let e = Descriptor::parse(big.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("larger than the limit"), "{e}");
    }

    #[test]
    fn archive_url_resolution() {
        let base = reqwest::Url::parse("https://h.example/pkgs/os.json").unwrap();
        let mut d = Descriptor::new("os.zip").unwrap();
        assert_eq!(d.archive_url(&base).unwrap().as_str(), "https://h.example/pkgs/os.zip");
        d.os_pkg_url = "../other/os.zip".into();
        assert_eq!(d.archive_url(&base).unwrap().as_str(), "https://h.example/other/os.zip");
        d.os_pkg_url = "http://elsewhere/x.zip".into();
        assert_eq!(d.archive_url(&base).unwrap().as_str(), "http://elsewhere/x.zip");
        d.os_pkg_url = "x.tar".into();
        assert!(d.archive_url(&base).is_err());
        d.os_pkg_url = String::new();
        assert!(d.archive_url(&base).unwrap_err().to_string().contains("empty"));
    }
}

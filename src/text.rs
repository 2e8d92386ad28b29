//! Small text helpers for messages.

/// The candidate closest to `word`, if one is close enough to be a likely typo
/// (what clap's "did you mean" does for flags).
pub fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(&w, &c.to_ascii_lowercase()), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Text from outside (certificate subjects, file names, JSON keys) made safe for a
/// console or terminal: control characters, escape sequences and line breaks are
/// shown escaped, so signed or unsigned input can never forge a log line.
pub fn printable(s: &str) -> String {
    if !s.chars().any(|c| c.is_control()) {
        return s.to_string();
    }
    s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// A Unix time as a UTC date, `2031-12-05`; far-future times (notAfter
/// 99991231235959Z, or none) as `9999-12-31` or `never`.
pub fn utc_date(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!("{:04}-{:02}-{:02}", t.year(), t.month() as u8, t.day()),
        Err(_) => "never".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let keys = ["network_interfaces", "bonding_mode", "bond_name", "label"];
        assert_eq!(suggest("netwrk_interfaces", &keys), Some("network_interfaces"));
        assert_eq!(suggest("bonding_mod", &keys), Some("bonding_mode"));
        assert_eq!(suggest("lable", &keys), Some("label"));
        assert_eq!(suggest("zzz", &keys), None);
        assert_eq!(suggest("isca", &["isCA", "rootCert"]), Some("isCA"));
    }
}

//! Upstream's single-dash long flags (`-kernel x`, `-isCA`, `-out=x`) for clap, which
//! wants `--kernel`. Every single-dash word in a flag's place becomes a long flag,
//! known or not, so that clap reports a typo as the unknown flag it is (with a
//! suggestion) rather than as a cluster of short flags; words in a value's place
//! (after a flag that takes a value) pass through untouched, even when they start
//! with a dash.

use std::collections::HashMap;

/// The rewritten arguments, and for each rewritten word the word the user typed.
pub struct Rewritten {
    pub args: Vec<String>,
    pub typed: HashMap<String, String>,
}

pub fn upstream_flags(args: Vec<String>, cmd: &clap::Command) -> Rewritten {
    let mut takes_value = Vec::new();
    collect(cmd, &mut takes_value, true);
    let mut out = Vec::with_capacity(args.len());
    let mut typed = HashMap::new();
    let mut value_next = false;
    let mut positional_only = false;
    for (i, a) in args.into_iter().enumerate() {
        if i == 0 || positional_only || value_next {
            value_next = false;
            out.push(a);
            continue;
        }
        if a == "--" {
            positional_only = true;
            out.push(a);
            continue;
        }
        let long = match a.strip_prefix("--") {
            Some(rest) => Some(rest.to_string()),
            None => a
                .strip_prefix('-')
                .filter(|rest| rest.len() > 1 && rest.starts_with(|c: char| c.is_ascii_alphabetic()))
                .map(String::from),
        };
        match long {
            Some(rest) => {
                let (name, inline) = match rest.split_once('=') {
                    Some((n, _)) => (n.to_string(), true),
                    None => (rest.clone(), false),
                };
                value_next = !inline && takes_value.contains(&name);
                let word = format!("--{rest}");
                if word != a {
                    typed.insert(format!("--{name}"), a.split('=').next().unwrap_or(&a).to_string());
                }
                out.push(word);
            }
            None => out.push(a),
        }
    }
    Rewritten { args: out, typed }
}

/// The long names of `c` and its subcommands (only those that take a value, if
/// `valued`).
fn collect(c: &clap::Command, out: &mut Vec<String>, valued: bool) {
    for a in c.get_arguments() {
        if let Some(l) = a.get_long() {
            if !valued || a.get_action().takes_values() {
                out.push(l.to_string());
            }
        }
    }
    for s in c.get_subcommands() {
        collect(s, out, valued);
    }
}

/// A clap error in the user's own spelling: `-lable`, not `--lable`; an unknown
/// flag gets a suggestion even where clap has none (clap's is case-sensitive:
/// `-isca` is meant as `-isCA`).
pub fn render_error(e: &clap::Error, typed: &HashMap<String, String>, cmd: &clap::Command) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let mut text = e.render().to_string();
    if e.kind() == ErrorKind::UnknownArgument && e.get(ContextKind::SuggestedArg).is_none() {
        if let Some(ContextValue::String(bad)) = e.get(ContextKind::InvalidArg) {
            let mut longs = Vec::new();
            collect(cmd, &mut longs, false);
            let names: Vec<&str> = longs.iter().map(String::as_str).collect();
            if let Some(s) = stboot::text::suggest(bad.trim_start_matches('-'), &names) {
                let tip = format!("\n\n  tip: a similar argument exists: '--{s}'");
                text = match text.find("\n\nUsage:") {
                    Some(i) => format!("{}{tip}{}", &text[..i], &text[i..]),
                    None => text + &tip,
                };
            }
        }
    }
    for (long, orig) in typed {
        text = text.replace(&format!("'{long}'"), &format!("'{orig}'"));
        let single = format!("-{}", long.trim_start_matches('-'));
        if orig.starts_with('-') && !orig.starts_with("--") {
            // suggestions are spelled as clap knows them; show upstream's spelling
            text = text.replace(&format!("'{long} "), &format!("'{single} "));
        }
    }
    if typed.values().any(|o| !o.starts_with("--")) {
        // the user writes upstream's single-dash flags: suggest them that way
        text = single_dash_suggestions(&text);
    }
    text
}

/// `tip: a similar argument exists: '--label'` -> `'-label'`.
fn single_dash_suggestions(text: &str) -> String {
    text.lines()
        .map(|l| if l.contains("similar argument") { l.replace("'--", "'-") } else { l.to_string() })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction, Command};

    fn cmd() -> Command {
        Command::new("t").subcommand(
            Command::new("create")
                .arg(Arg::new("cmdline").long("cmdline"))
                .arg(Arg::new("label").long("label"))
                .arg(Arg::new("isCA").long("isCA").action(ArgAction::SetTrue)),
        )
    }

    fn rw(args: &[&str]) -> Vec<String> {
        upstream_flags(args.iter().map(|s| s.to_string()).collect(), &cmd()).args
    }

    #[test]
    fn values_that_start_with_a_dash_pass_through() {
        assert_eq!(
            rw(&["t", "create", "-cmdline", "-- -x", "-label", "-weird", "-isCA"]),
            ["t", "create", "--cmdline", "-- -x", "--label", "-weird", "--isCA"]
        );
        assert_eq!(rw(&["t", "create", "-cmdline=-x", "-isCA"]), ["t", "create", "--cmdline=-x", "--isCA"]);
    }

    #[test]
    fn unknown_single_dash_words_become_long_flags() {
        assert_eq!(rw(&["t", "create", "-lable", "x"]), ["t", "create", "--lable", "x"]);
        assert_eq!(rw(&["t", "create", "-h"]), ["t", "create", "-h"]);
        assert_eq!(rw(&["t", "create", "--", "-lable"]), ["t", "create", "--", "-lable"]);
    }

    #[test]
    fn errors_use_the_spelling_typed() {
        let r = upstream_flags(["t", "create", "-lable", "x"].map(String::from).to_vec(), &cmd());
        let e = cmd().try_get_matches_from(&r.args).unwrap_err();
        let text = render_error(&e, &r.typed, &cmd());
        assert!(text.contains("'-lable'"), "{text}");
        assert!(text.contains("'-label'"), "{text}");
        let r = upstream_flags(["t", "create", "-isca"].map(String::from).to_vec(), &cmd());
        let e = cmd().try_get_matches_from(&r.args).unwrap_err();
        let text = render_error(&e, &r.typed, &cmd());
        assert!(text.contains("'-isca'") && text.contains("'-isCA'"), "{text}");
    }
}

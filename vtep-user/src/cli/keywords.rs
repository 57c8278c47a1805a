//! Keyword-value arguments in any order (`dst IP vni N`), the way `bridge fdb` and `ip neigh`
//! take them, for the commands that change a running instance.

use anyhow::{Result, anyhow, bail};

use crate::config::{fields::check_vni, invalid};

/// The values given for each keyword of one command.
pub struct Keywords<'a> {
    given: Vec<(&'static str, &'a str)>,
}

/// Parses `words` as pairs of a keyword from `allowed` (keyword, placeholder) and its value,
/// each keyword at most once, for `command` (named in errors).
pub fn parse<'a>(
    command: &str,
    allowed: &[(&'static str, &'static str)],
    words: &'a [String],
) -> Result<Keywords<'a>> {
    let expected = allowed
        .iter()
        .map(|(k, p)| format!("{k} {p}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut given: Vec<(&'static str, &'a str)> = Vec::new();
    let mut rest = words.iter();
    while let Some(word) = rest.next() {
        let Some(&(keyword, placeholder)) = allowed.iter().find(|(k, _)| k == word) else {
            bail!("`{word}` is not an argument of `{command}` (expected: {expected})");
        };
        let value = rest
            .next()
            .ok_or_else(|| anyhow!("`{word}` needs a value: {word} {placeholder}"))?;
        if given.iter().any(|(k, _)| *k == keyword) {
            bail!("`{word}` is given twice");
        }
        given.push((keyword, value));
    }
    Ok(Keywords { given })
}

impl<'a> Keywords<'a> {
    /// The value of `keyword`, if it was given.
    pub fn get(&self, keyword: &str) -> Option<&'a str> {
        self.given
            .iter()
            .find(|(k, _)| *k == keyword)
            .map(|(_, v)| *v)
    }

    /// The value of `keyword`; an error naming `keyword placeholder` when it is missing.
    pub fn require(&self, keyword: &str, placeholder: &str) -> Result<&'a str> {
        self.get(keyword)
            .ok_or_else(|| anyhow!("`{keyword} {placeholder}` is missing"))
    }

    /// `vni N`, checked like the config's VNIs.
    pub fn vni(&self) -> Result<u32> {
        let vni = self.require("vni", "N")?;
        let id = vni
            .parse::<u32>()
            .map_err(|_| invalid("vni", format!("`{vni}` is not a VNI (1..=16777215)")))?;
        check_vni("vni", id)?;
        Ok(id)
    }
}

/// `s` split at whitespace, as the shell hands words to clap.
#[cfg(test)]
pub(crate) fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

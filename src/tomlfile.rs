//! TOML files whose errors point at a line: the one place that turns a parse error or a span into a
//! 1-based line number, for the config, the mapping tables and simulator seeds.

use serde::de::DeserializeOwned;

/// The 1-based line of a byte offset in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1
}

/// Parses `text`; an error comes back as the offset it points at and its message.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, (usize, String)> {
    toml::from_str(text).map_err(|e| (e.span().map_or(0, |s| s.start), e.message().trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_point_at_their_line() {
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a", 99), 1);
        let (offset, message) = parse::<toml::Table>("a = 1\nb = \n").unwrap_err();
        assert_eq!(line_of("a = 1\nb = \n", offset), 2, "{message}");
    }
}

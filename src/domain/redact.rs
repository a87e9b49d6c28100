//! Keeping secrets out of messages built from what upstream servers answered: an error
//! body may echo a client secret or a token (a careless or hostile server), and such
//! text reaches `last_error`, API answers and logs.

/// Longest excerpt of an upstream answer kept in a message.
pub const MAX_EXCERPT_CHARS: usize = 200;

/// What a redacted value becomes.
const REDACTED: &str = "[redacted]";

/// Keys whose values are secrets, wherever they appear (`key=value`, `"key": "value"`,
/// `key: value`); matched case-insensitively.
const SECRET_KEYS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "password",
    "api_key",
    "apikey",
    "secret",
    "token",
    "authorization",
];

/// Words at least this long made of token characters, with letters and digits, look
/// like credentials (opaque tokens, JWTs) and are redacted.
const OPAQUE_TOKEN_CHARS: usize = 32;

/// An upstream answer (or the message read from it) fit for a message: whitespace
/// collapsed, secret-looking values redacted, at most [`MAX_EXCERPT_CHARS`] characters
/// (then an ellipsis). Both API clients use it for every error text they keep.
pub fn upstream_excerpt(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let clean = redact_patterns(&collapsed);
    if clean.chars().count() <= MAX_EXCERPT_CHARS {
        clean
    } else {
        let cut: String = clean.chars().take(MAX_EXCERPT_CHARS).collect();
        format!("{cut}…")
    }
}

/// `text` with every occurrence of each of `secrets` (the tenant's own client secrets
/// and webhook credentials) and every secret-looking value redacted.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut clean = text.to_string();
    for secret in secrets.iter().filter(|secret| secret.len() >= 4) {
        clean = clean.replace(secret, REDACTED);
    }
    redact_patterns(&clean)
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~+/=".contains(c)
}

/// Redacts values after [`SECRET_KEYS`], `Bearer`/`Basic` credentials and opaque tokens.
fn redact_patterns(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let lower: Vec<char> = chars.iter().map(|c| c.to_ascii_lowercase()).collect();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < chars.len() {
        if let Some((value_start, value_end)) = secret_value(&chars, &lower, at) {
            out.extend(&chars[at..value_start]);
            out.push_str(REDACTED);
            at = value_end;
            continue;
        }
        // Copy one word (or one separator) unchanged, unless it is an opaque token.
        if is_token_char(chars[at]) {
            let end = (at..chars.len())
                .find(|&index| !is_token_char(chars[index]))
                .unwrap_or(chars.len());
            let word = &chars[at..end];
            let opaque = word.len() >= OPAQUE_TOKEN_CHARS
                && word.iter().any(char::is_ascii_digit)
                && word.iter().any(char::is_ascii_alphabetic);
            if opaque {
                out.push_str(REDACTED);
            } else {
                out.extend(word);
            }
            at = end;
        } else {
            out.push(chars[at]);
            at += 1;
        }
    }
    out
}

/// If a secret key (or the `Bearer`/`Basic` scheme) starts the word at `at` and a
/// value follows it, where that value starts and ends.
fn secret_value(chars: &[char], lower: &[char], at: usize) -> Option<(usize, usize)> {
    if at > 0 && (chars[at - 1].is_ascii_alphanumeric() || chars[at - 1] == '_') {
        return None;
    }
    let matches = |key: &str| {
        let key: Vec<char> = key.chars().collect();
        lower.get(at..at + key.len()) == Some(&key[..])
            && !chars
                .get(at + key.len())
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
    };
    if let Some(scheme) = ["bearer", "basic"]
        .into_iter()
        .find(|scheme| matches(scheme))
    {
        let start = at + scheme.len();
        let value_start = (start..chars.len()).find(|&i| chars[i] != ' ')?;
        let value_end = (value_start..chars.len())
            .find(|&i| !is_token_char(chars[i]))
            .unwrap_or(chars.len());
        return (value_start > start && value_end > value_start)
            .then_some((value_start, value_end));
    }
    let key = SECRET_KEYS.iter().find(|key| matches(key))?;
    let mut index = at + key.len();
    // The key may close a quote; then separators (spaces, `:`, `=`) and maybe a quote.
    if matches!(chars.get(index), Some('"' | '\'')) {
        index += 1;
    }
    let mut delimited = false;
    while let Some(c @ (' ' | ':' | '=')) = chars.get(index) {
        delimited |= *c != ' ';
        index += 1;
    }
    if !delimited {
        return None;
    }
    let quote = chars
        .get(index)
        .copied()
        .filter(|c| matches!(c, '"' | '\''));
    if quote.is_some() {
        index += 1;
    }
    let value_end = match quote {
        Some(quote) => (index..chars.len())
            .find(|&i| chars[i] == quote)
            .unwrap_or(chars.len()),
        None => (index..chars.len())
            .find(|&i| matches!(chars[i], ' ' | ',' | ';' | '&' | '}' | ')' | '"'))
            .unwrap_or(chars.len()),
    };
    if value_end == index {
        return None;
    }
    // `Authorization: Bearer <token>`: the scheme and the credential go together.
    let value: String = lower[index..value_end].iter().collect();
    if quote.is_none() && (value == "bearer" || value == "basic") {
        let credential = (value_end..chars.len()).find(|&i| chars[i] != ' ');
        if let Some(start) = credential.filter(|&start| is_token_char(chars[start])) {
            let end = (start..chars.len())
                .find(|&i| !is_token_char(chars[i]))
                .unwrap_or(chars.len());
            return Some((index, end));
        }
    }
    Some((index, value_end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_redacted_in_every_usual_shape() {
        let cases = [
            (
                r#"{"access_token": "abc.def", "expires_in": 3600}"#,
                r#"{"access_token": "[redacted]", "expires_in": 3600}"#,
            ),
            (
                "grant_type=client_credentials&client_secret=s3cr3t&x=1",
                "grant_type=client_credentials&client_secret=[redacted]&x=1",
            ),
            (
                "Authorization: Bearer papi-123.456",
                "Authorization: [redacted]",
            ),
            ("sent Bearer abcdef to us", "sent Bearer [redacted] to us"),
            (
                "password = hunter2, user = x",
                "password = [redacted], user = x",
            ),
            ("REFRESH_TOKEN='xyz'", "REFRESH_TOKEN='[redacted]'"),
            ("the token is missing", "the token is missing"),
            ("no_secret_here: fine", "no_secret_here: fine"),
        ];
        for (given, expected) in cases {
            assert_eq!(upstream_excerpt(given), expected, "{given}");
        }
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N";
        assert_eq!(upstream_excerpt(&format!("bad {jwt}!")), "bad [redacted]!");
        assert_eq!(
            upstream_excerpt("trace 5b0e6c1e-2d5f-4c1b-9c8e-1234"),
            "trace 5b0e6c1e-2d5f-4c1b-9c8e-1234",
            "short ids stay"
        );
    }

    #[test]
    fn excerpts_are_collapsed_and_capped() {
        let long = format!("<html>\n  {} </html>", "x ".repeat(500));
        let excerpt = upstream_excerpt(&long);
        assert_eq!(excerpt.chars().count(), MAX_EXCERPT_CHARS + 1);
        assert!(excerpt.ends_with('…') && !excerpt.contains('\n'));
        assert_eq!(upstream_excerpt("  short  "), "short");
    }

    #[test]
    fn the_tenants_own_secrets_go_wherever_they_appear() {
        let text = "invalid client sim-secret (Bearer-less) for key k3y-value";
        assert_eq!(
            scrub(text, &["sim-secret", "k3y-value", ""]),
            "invalid client [redacted] (Bearer-less) for key [redacted]"
        );
    }
}

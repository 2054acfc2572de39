//! `X-Twilio-Signature` validation: HMAC-SHA1, keyed with the account's auth token, over the
//! full URL Twilio requested followed by the form parameters sorted by name (each name then its
//! value, no separators), base64 with padding. Twilio may have signed the URL with or without
//! the scheme's default port, so both forms are tried. The comparison is constant-time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use std::collections::{BTreeMap, BTreeSet};

/// Whether `signature` is Twilio's signature of a form POST of `params` to `url`.
pub fn is_valid(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(expected) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    let suffix = signed_params(params);
    url_forms(url).iter().any(|candidate| {
        let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) else {
            return false;
        };
        mac.update(candidate.as_bytes());
        mac.update(suffix.as_bytes());
        mac.verify_slice(&expected).is_ok()
    })
}

/// Twilio's signature of `params` posted to `url` exactly as given (what a test stand-in for
/// Twilio sends).
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(url.as_bytes());
    mac.update(signed_params(params).as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Names sorted by byte value, each followed by its value; a repeated name's values are
/// de-duplicated and sorted.
fn signed_params(params: &[(String, String)]) -> String {
    let mut by_name: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, value) in params {
        by_name.entry(name).or_default().insert(value);
    }
    let mut out = String::new();
    for (name, values) in by_name {
        for value in values {
            out.push_str(name);
            out.push_str(value);
        }
    }
    out
}

/// The URL as given, without its port, and with the scheme's default port added when it had
/// none: each a form Twilio may have signed.
fn url_forms(url: &str) -> Vec<String> {
    let mut forms = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return forms;
    };
    let default_port = match scheme {
        "https" => "443",
        "http" => "80",
        _ => return forms,
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((user, host)) => (format!("{user}@"), host),
        None => (String::new(), authority),
    };
    // A port is the digits after the last `:` that is not inside an IPv6 literal.
    let port_at = hostport.rfind(':').filter(|&i| {
        !hostport[i..].contains(']') && hostport[i + 1..].bytes().all(|b| b.is_ascii_digit())
    });
    match port_at {
        Some(i) => forms.push(format!("{scheme}://{userinfo}{}{tail}", &hostport[..i])),
        None => forms.push(format!(
            "{scheme}://{userinfo}{hostport}:{default_port}{tail}"
        )),
    }
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn official() -> Vec<(String, String)> {
        params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ])
    }

    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const SIGNATURE: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";

    #[test]
    fn the_official_sdk_vector_validates() {
        // GIVEN Twilio's published example (auth token 12345)
        // THEN the signature validates, whatever order the parameters arrive in
        assert!(is_valid("12345", URL, &official(), SIGNATURE));
        let mut shuffled = official();
        shuffled.reverse();
        assert!(is_valid("12345", URL, &shuffled, SIGNATURE));
        // AND signing produces exactly that signature
        assert_eq!(sign("12345", URL, &official()), SIGNATURE);
    }

    #[test]
    fn anything_changed_fails() {
        // GIVEN the official vector with one thing changed each time
        let mut tampered = official();
        tampered[2].1 = "1235".into();
        let mut extra = official();
        extra.push(("Foo".into(), "bar".into()));
        // THEN none validates
        assert!(!is_valid("12345", URL, &tampered, SIGNATURE));
        assert!(!is_valid("12345", URL, &extra, SIGNATURE));
        assert!(!is_valid("54321", URL, &official(), SIGNATURE));
        assert!(!is_valid(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &official(),
            SIGNATURE
        ));
        assert!(!is_valid("12345", URL, &official(), ""));
        assert!(!is_valid("12345", URL, &official(), "not base64!"));
        assert!(!is_valid(
            "12345",
            URL,
            &official(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B9="
        ));
    }

    #[test]
    fn either_port_form_validates() {
        // GIVEN a request Twilio signed with the default port, and one signed without it
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        let signed_with_port = sign("12345", with_port, &official());
        // THEN each validates against the other form of the URL
        assert!(is_valid("12345", URL, &official(), &signed_with_port));
        assert!(is_valid("12345", with_port, &official(), SIGNATURE));
        // AND with a non-default port, the URL as given and without its port both validate
        // (as Twilio's SDKs do), but a signature made for another port does not
        let odd = "https://mycompany.com:8443/myapp.php?foo=1&bar=2";
        let signed_odd = sign("12345", odd, &official());
        assert!(is_valid("12345", odd, &official(), &signed_odd));
        assert!(is_valid("12345", odd, &official(), SIGNATURE));
        let other = "https://mycompany.com:9443/myapp.php?foo=1&bar=2";
        let signed_other = sign("12345", other, &official());
        assert!(!is_valid("12345", odd, &official(), &signed_other));
    }

    #[test]
    fn names_sort_by_byte_and_repeats_sort_by_value() {
        // GIVEN names that differ by case and a repeated name
        let p = params(&[
            ("Caller", "x"),
            ("CallSid", "y"),
            ("Event", "b"),
            ("Event", "a"),
            ("Event", "a"),
        ]);
        // THEN upper-case sorts first and repeated values come sorted, once each
        assert_eq!(signed_params(&p), "CallSidyCallerxEventaEventb");
    }
}

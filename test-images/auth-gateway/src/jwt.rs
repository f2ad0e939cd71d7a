//! HS256 JSON Web Tokens (RFC 7519): signature and expiry checks.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What the gateway uses from a valid token.
#[derive(Debug, PartialEq, Eq)]
pub struct Claims {
    /// The `sub` claim, empty when absent.
    pub subject: String,
}

/// Checks `token`'s HS256 signature against `secret` and its `exp` against `now` (seconds
/// since the epoch); says what is wrong otherwise.
pub fn verify(token: &str, secret: &[u8], now: u64) -> Result<Claims, String> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a JWT (three dot-separated parts)".into());
    };
    let signing_input = &token[..header.len() + 1 + payload.len()];
    let header = decode_json(header, "header")?;
    if header.get("alg").and_then(|alg| alg.as_str()) != Some("HS256") {
        return Err("the algorithm is not HS256".into());
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|e| format!("signature: {e}"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|e| e.to_string())?;
    mac.update(signing_input.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| "bad signature".to_string())?;
    let claims = decode_json(payload, "payload")?;
    match claims.get("exp") {
        None => {}
        Some(exp) => match exp.as_u64() {
            Some(exp) if exp > now => {}
            Some(_) => return Err("expired".into()),
            None => return Err("exp is not a number of seconds".into()),
        },
    }
    let subject = claims
        .get("sub")
        .and_then(|sub| sub.as_str())
        .unwrap_or_default()
        .to_string();
    Ok(Claims { subject })
}

fn decode_json(part: &str, what: &str) -> Result<serde_json::Value, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| format!("{what}: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(header: &str, claims: &str, secret: &[u8]) -> String {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    const HS256: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

    #[test]
    fn a_valid_token_gives_its_subject() {
        let token = sign(HS256, r#"{"sub":"alice","exp":2000}"#, b"secret");
        assert_eq!(
            verify(&token, b"secret", 1000),
            Ok(Claims {
                subject: "alice".into()
            })
        );
    }

    #[test]
    fn bad_signatures_expiry_and_algorithms_are_refused() {
        let token = sign(HS256, r#"{"sub":"alice","exp":2000}"#, b"other");
        assert_eq!(verify(&token, b"secret", 1000), Err("bad signature".into()));
        let token = sign(HS256, r#"{"sub":"alice","exp":1000}"#, b"secret");
        assert_eq!(verify(&token, b"secret", 1000), Err("expired".into()));
        let token = sign(r#"{"alg":"none"}"#, r#"{"sub":"alice"}"#, b"secret");
        assert!(verify(&token, b"secret", 1000).is_err());
        assert!(verify("a.b", b"secret", 1000).is_err());
    }
}

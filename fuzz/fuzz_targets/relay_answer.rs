//! A relay's reading of the central site's answers (`agent_deploy::parse_central_answer`).
//! The first byte picks the call the answer belongs to (register, status, agent), the rest
//! is the answer's body. Checks: no panic; an oversized body is refused as too large and
//! nothing else is; a registration that is accepted carries a 64-character host secret; a
//! status answer that offers a package names a valid agent hash and the package's SHA-256
//! (64 lower-case hex), which is what the relay checks cached and fetched bytes against; and
//! the raw `result` the relay passes on reads back as the same typed answer.
#![no_main]

use agent_deploy::{AnswerError, AnswerKind, CentralAnswer, parse_central_answer};
use agent_wire::{RegisterResult, StatusResult, valid_aghash};
use libfuzzer_sys::fuzz_target;

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let kind = match selector % 3 {
        0 => AnswerKind::Register,
        1 => AnswerKind::Status,
        _ => AnswerKind::Agent,
    };
    match parse_central_answer(body, kind) {
        Err(AnswerError::TooLarge { limit }) => {
            assert_eq!(limit, kind.limit());
            assert!(
                body.len() > limit,
                "{} bytes refused as too large",
                body.len()
            );
        }
        Err(_) => assert!(body.len() <= kind.limit()),
        Ok(answer) => {
            assert!(
                body.len() <= kind.limit(),
                "an oversized answer was accepted"
            );
            match answer {
                CentralAnswer::Refused(_) => {}
                CentralAnswer::Register { result, raw } => {
                    assert_eq!(kind, AnswerKind::Register);
                    assert_eq!(result.host_secret.len(), 64);
                    let again: RegisterResult =
                        serde_json::from_value(raw).expect("the passed-on result reads back");
                    assert_eq!(again, result);
                }
                CentralAnswer::Status {
                    result,
                    sha256,
                    raw,
                } => {
                    assert_eq!(kind, AnswerKind::Status);
                    if let Some(s) = &sha256 {
                        assert!(is_sha256(s), "{s:?}");
                    }
                    if result.agent_available {
                        assert!(sha256.is_some(), "a package offered without its SHA-256");
                        assert!(result.target_hash.as_deref().is_some_and(valid_aghash));
                    }
                    let again: StatusResult =
                        serde_json::from_value(raw).expect("the passed-on result reads back");
                    assert_eq!(again, *result);
                }
                CentralAnswer::Agent(_) => assert_eq!(kind, AnswerKind::Agent),
            }
        }
    }
});

//! Verification phrases: a short string both people can compare (in person or on a
//! call) to be sure the keys their clients use are each other's, as Signal's safety
//! numbers do. It depends only on the two parties' public keys, in either order.

use sha2::{Digest, Sha256};

/// Public keys of one party, as text (age recipient, Ed25519 key in base64).
pub struct PartyKeys<'a> {
    pub age_recipient: &'a str,
    pub signing_key: &'a str,
}

/// Eight groups of five digits.
pub fn verification_phrase(a: &PartyKeys<'_>, b: &PartyKeys<'_>) -> String {
    let mut parties = [party_digest(a), party_digest(b)];
    parties.sort();
    let digest = Sha256::new()
        .chain_update(b"closedcircuit verification phrase v1\0")
        .chain_update(parties[0])
        .chain_update(parties[1])
        .finalize();
    digest
        .chunks(4)
        .map(|c| {
            let n = u32::from_be_bytes([c[0], c[1], c[2], c[3]]) % 100_000;
            format!("{n:05}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn party_digest(p: &PartyKeys<'_>) -> [u8; 32] {
    Sha256::new()
        .chain_update(p.age_recipient.trim().as_bytes())
        .chain_update(b"\0")
        .chain_update(p.signing_key.trim().as_bytes())
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_and_key_sensitive() {
        let a = PartyKeys {
            age_recipient: "age1aaa",
            signing_key: "AAA=",
        };
        let b = PartyKeys {
            age_recipient: "age1bbb",
            signing_key: "BBB=",
        };
        let m = PartyKeys {
            age_recipient: "age1bbb",
            signing_key: "MMM=",
        };
        let ab = verification_phrase(&a, &b);
        assert_eq!(ab, verification_phrase(&b, &a));
        assert_ne!(ab, verification_phrase(&a, &m));
        assert_eq!(ab.split(' ').count(), 8);
    }
}

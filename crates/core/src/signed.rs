//! Statements signed with Ed25519: the signature covers the exact JSON text that is
//! stored and served, so verifiers never depend on re-serialising anything.

use std::marker::PhantomData;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Largest statement text accepted; manifests and certificates are far smaller.
pub const MAX_STATEMENT_LEN: usize = 8 * 1024;

/// A kind of signed statement. The context string separates domains, so a signature
/// on one kind can never be replayed as another.
pub trait Statement: Serialize + DeserializeOwned {
    const CONTEXT: &'static [u8];
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the statement is too large")]
    TooLarge,
    #[error("the signature is malformed")]
    Malformed,
    #[error("the signature does not verify with the expected key")]
    Invalid,
    #[error("the signed statement is not well-formed: {0}")]
    BadBody(String),
}

/// A statement and its signature, as carried in the API.
#[derive(Serialize, Deserialize)]
pub struct Signed<T> {
    /// The statement as JSON text, exactly as signed.
    pub body: String,
    /// Ed25519 signature over the context and the body, base64.
    pub signature: String,
    #[serde(skip)]
    kind: PhantomData<fn() -> T>,
}

impl<T> Clone for Signed<T> {
    fn clone(&self) -> Self {
        Self::from_parts(self.body.clone(), self.signature.clone())
    }
}

impl<T> std::fmt::Debug for Signed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signed").field("body", &self.body).finish()
    }
}

impl<T> PartialEq for Signed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.body == other.body && self.signature == other.signature
    }
}

impl<T> Signed<T> {
    pub fn from_parts(body: String, signature: String) -> Self {
        Self {
            body,
            signature,
            kind: PhantomData,
        }
    }
}

impl<T: Statement> Signed<T> {
    pub fn sign(statement: &T, key: &SigningKey) -> Self {
        let body = serde_json::to_string(statement).unwrap_or_default();
        let signature = key.sign(&Self::message(&body));
        Self::from_parts(body, crate::b64::encode(signature.to_bytes()))
    }

    fn message(body: &str) -> Vec<u8> {
        [T::CONTEXT, b"\0", body.as_bytes()].concat()
    }

    /// Checks the signature with `key`, then parses the statement.
    pub fn verify(&self, key: &VerifyingKey) -> Result<T, SignatureError> {
        if self.body.len() > MAX_STATEMENT_LEN {
            return Err(SignatureError::TooLarge);
        }
        let bytes = crate::b64::decode(&self.signature).map_err(|_| SignatureError::Malformed)?;
        let signature = Signature::from_slice(&bytes).map_err(|_| SignatureError::Malformed)?;
        key.verify(&Self::message(&self.body), &signature)
            .map_err(|_| SignatureError::Invalid)?;
        serde_json::from_str(&self.body).map_err(|e| SignatureError::BadBody(e.to_string()))
    }

    /// Parses the statement without checking the signature; only for routing a
    /// request to the key that will then verify it.
    pub fn peek(&self) -> Result<T, SignatureError> {
        if self.body.len() > MAX_STATEMENT_LEN {
            return Err(SignatureError::TooLarge);
        }
        serde_json::from_str(&self.body).map_err(|e| SignatureError::BadBody(e.to_string()))
    }
}

impl<T> utoipa::PartialSchema for Signed<T> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .property("body", ObjectBuilder::new().schema_type(Type::String))
            .property("signature", ObjectBuilder::new().schema_type(Type::String))
            .required("body")
            .required("signature")
            .description(Some(
                "A JSON statement and its Ed25519 signature (base64) over the context string and the body.",
            ))
            .into()
    }
}

impl<T> utoipa::ToSchema for Signed<T> {}

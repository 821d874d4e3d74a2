// Every key and format the browser shares with the command line, byte for byte:
// Argon2id + HKDF key derivation, XChaCha20-Poly1305 key wrapping, age files, Ed25519
// signed statements, claim codes and verification phrases (see crates/core).

import { argon2id } from "hash-wasm";
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { ed25519 } from "@noble/curves/ed25519.js";
import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from "age-encryption";

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

export const text = (s) => utf8.encode(s);
export const untext = (bytes) => fromUtf8.decode(bytes);

export function randomBytes(n) {
  return crypto.getRandomValues(new Uint8Array(n));
}

export function b64(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

export function unb64(s) {
  const raw = atob(s);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export const sha256hex = (bytes) => hex(sha256(bytes));

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** RFC 4648 base32 without padding, as the Rust side's `BASE32_NOPAD`. */
export function base32(bytes) {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** The defaults every new account gets, as `KdfParams::default()`. */
export const DEFAULT_KDF = { m_kib: 64 * 1024, t: 3, p: 1 };

/** The same bounds as `KdfParams::is_reasonable`: a hostile server cannot make us hang. */
function kdfReasonable(k) {
  const within = (v, lo, hi) => Number.isInteger(v) && v >= lo && v <= hi;
  return within(k.m_kib, 8 * 1024, 1024 * 1024) && within(k.t, 1, 16) && within(k.p, 1, 8);
}

const expand = (ikm, info) => hkdf(sha256, ikm, undefined, text(info), 32);

/** Argon2id, then HKDF into the key-encryption key and the auth key. */
export async function derivePasswordKeys(password, salt, kdf) {
  if (!kdfReasonable(kdf)) throw new Error("the account's key derivation parameters are out of range");
  const master = await argon2id({
    password: text(password),
    salt,
    parallelism: kdf.p,
    iterations: kdf.t,
    memorySize: kdf.m_kib,
    hashLength: 32,
    outputType: "binary",
  });
  return { kek: expand(master, "closedcircuit kek v1"), authKey: expand(master, "closedcircuit auth v1") };
}

export function recoveryWrappingKey(raw) {
  return expand(raw, "closedcircuit recovery v1");
}

/** The recovery key as the CLI prints it: base32 in groups of four. */
export function displayRecoveryKey(raw) {
  return base32(raw).match(/.{1,4}/g).join("-");
}

const WRAP_AAD = text("closedcircuit user keys v1");

/** A user's keys: the age identity (grants) and the Ed25519 seed (certificates). */
export async function generateUserKeys() {
  return userKeys(await generateX25519Identity(), randomBytes(32));
}

async function userKeys(ageIdentity, signingSeed) {
  return {
    ageIdentity,
    signingSeed,
    recipient: await identityToRecipient(ageIdentity),
    signingPublic: ed25519.getPublicKey(signingSeed),
  };
}

/** The secret half of a user's keys, `{age_identity, signing_seed}`, as wrapping seals it. */
export function exportUserKeys(keys) {
  return { age_identity: keys.ageIdentity, signing_seed: b64(keys.signingSeed) };
}

/** A user's keys from `exportUserKeys`'s shape; the public halves are derived again. */
export async function importUserKeys(parts) {
  const seed = typeof parts?.signing_seed === "string" ? unb64(parts.signing_seed) : null;
  if (seed?.length !== 32 || typeof parts.age_identity !== "string") {
    throw new Error("stored key material is malformed");
  }
  return userKeys(parts.age_identity.trim(), seed);
}

/** `nonce(24) || XChaCha20-Poly1305(JSON {age_identity, signing_seed})`, as `UserKeys::wrap`. */
export function wrapUserKeys(keys, key) {
  const body = JSON.stringify(exportUserKeys(keys));
  const nonce = randomBytes(24);
  const sealed = xchacha20poly1305(key, nonce, WRAP_AAD).encrypt(text(body));
  const out = new Uint8Array(24 + sealed.length);
  out.set(nonce);
  out.set(sealed, 24);
  return out;
}

export async function unwrapUserKeys(wrapped, key) {
  if (wrapped.length < 40) throw new Error("stored key material is malformed");
  let plain;
  try {
    plain = xchacha20poly1305(key, wrapped.subarray(0, 24), WRAP_AAD).decrypt(wrapped.subarray(24));
  } catch {
    throw new Error("wrong password");
  }
  return importUserKeys(JSON.parse(untext(plain)));
}

/** Decrypts an age file with an identity string; throws when it is not for us. */
export async function ageDecrypt(identity, ciphertext) {
  const d = new Decrypter();
  d.addIdentity(identity);
  return d.decrypt(ciphertext, "uint8array");
}

export async function ageEncrypt(recipient, plaintext) {
  const e = new Encrypter();
  e.addRecipient(recipient);
  return e.encrypt(plaintext);
}

export const generateContentIdentity = generateX25519Identity;
export const recipientOf = identityToRecipient;

/** Signed statements: the signature covers `context || 0 || body` (core/src/signed.rs). */
export const CONTEXT = {
  manifest: "closedcircuit event manifest v1",
  certificate: "closedcircuit camera certificate v1",
  live: "closedcircuit live segment v1",
};
const MAX_STATEMENT_LEN = 8 * 1024;

function statementMessage(context, body) {
  const c = text(context);
  const b = text(body);
  const m = new Uint8Array(c.length + 1 + b.length);
  m.set(c);
  m.set(b, c.length + 1);
  return m;
}

/** Checks a `{body, signature}` with a raw Ed25519 public key and returns the parsed body. */
export function verifySigned(context, signed, publicKey) {
  if (typeof signed?.body !== "string" || signed.body.length > MAX_STATEMENT_LEN) {
    throw new Error("the signed statement is malformed");
  }
  let ok = false;
  try {
    ok = ed25519.verify(unb64(signed.signature), statementMessage(context, signed.body), publicKey);
  } catch {
    ok = false;
  }
  if (!ok) throw new Error("the signature does not verify with the expected key");
  return JSON.parse(signed.body);
}

export function sign(context, statement, seed) {
  const body = JSON.stringify(statement);
  const signature = ed25519.sign(statementMessage(context, body), seed);
  return { body, signature: b64(signature) };
}

export function publicKeyFromB64(s) {
  const key = unb64(s);
  if (key.length !== 32) throw new Error("not an Ed25519 key");
  return key;
}

/** 16 base32 characters of SHA-256 of a signing key, as `keys::fingerprint`. */
export function fingerprint(publicKey) {
  return base32(sha256(publicKey).subarray(0, 10));
}

/** A claim code, as `claim::ClaimCode`: `CC1-<secret>-<owner fingerprint>`. */
export function newClaimCode(ownerPublic) {
  const secret = randomBytes(16);
  return {
    secret,
    text: `CC1-${base32(secret)}-${fingerprint(ownerPublic)}`,
    secretHash: sha256hex(concat(text("closedcircuit claim v1\0"), secret)),
  };
}

/** The camera's proof that it holds the claim secret, bound to its device key. */
export function pairingMacMatches(secret, deviceKey, mac) {
  const expected = hmac(sha256, secret, concat(text("closedcircuit pairing v1\0"), deviceKey));
  if (mac.length !== expected.length) return false;
  let diff = 0;
  for (let i = 0; i < mac.length; i++) diff |= mac[i] ^ expected[i];
  return diff === 0;
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Eight groups of five digits from both parties' public keys, as `phrase::verification_phrase`. */
export function verificationPhrase(a, b) {
  const party = (p) => sha256(concat(text(p.age_recipient.trim()), text("\0"), text(p.signing_key.trim())));
  const parties = [party(a), party(b)].sort(compareBytes);
  const digest = sha256(concat(text("closedcircuit verification phrase v1\0"), parties[0], parties[1]));
  const groups = [];
  for (let i = 0; i < 32; i += 4) {
    const n = new DataView(digest.buffer, digest.byteOffset + i, 4).getUint32(0) % 100000;
    groups.push(String(n).padStart(5, "0"));
  }
  return groups.join(" ");
}

function compareBytes(x, y) {
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] - y[i];
  }
  return x.length - y.length;
}

/** A time-ordered UUID (version 7), as `CameraId::new_v7`. */
export function uuidv7() {
  const bytes = randomBytes(16);
  const ms = Date.now();
  for (let i = 0; i < 6; i++) bytes[i] = Math.floor(ms / 2 ** (8 * (5 - i))) & 0xff;
  bytes[6] = (bytes[6] & 0x0f) | 0x70;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const h = hex(bytes);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// What the CLI's client crate does, in the browser: sign-up and login (keys derived and
// unwrapped here), camera certificates checked against the owner's key, grants and
// names opened, events verified against the device's signed manifest before anything
// is shown, claims completed, shares written and revoked (with key rotation).

import * as c from "./crypto.js";

const CLIENT_NAME = "closedcircuit web";

/** Who is logged in: the token lives in `api`, the unwrapped keys in memory (see `remember`). */
export class Session {
  constructor(api, login, keys, email) {
    this.api = api;
    this.userId = login.user_id;
    this.sessionId = login.session_id;
    this.email = email;
    this.keys = keys;
    this.grants = new Map();
    this.contents = new Map();
    this.pins = loadPins(login.user_id);
  }

  get signingKeyB64() {
    return c.b64(this.keys.signingPublic);
  }

  /** The content identity of `camera` at `epoch`, from this user's grant. */
  async contentIdentity(camera, epoch) {
    const key = `${camera}/${epoch}`;
    if (!this.contents.has(key)) {
      const opened = (async () => {
        let grants = this.grants.get(camera);
        if (!grants || !grants.some((g) => g.epoch === epoch)) {
          grants = await this.api.get(`/v1/cameras/${camera}/grants`);
          this.grants.set(camera, grants);
        }
        const grant = grants.find((g) => g.epoch === epoch);
        if (!grant) throw new Error(`no key for this camera's epoch ${epoch}`);
        const secret = c.untext(await c.ageDecrypt(this.keys.ageIdentity, c.unb64(grant.grant))).trim();
        return secret;
      })();
      this.contents.set(key, opened);
      opened.catch(() => this.contents.delete(key));
    }
    return this.contents.get(key);
  }

  forgetCamera(camera) {
    this.grants.delete(camera);
    for (const key of [...this.contents.keys()]) if (key.startsWith(`${camera}/`)) this.contents.delete(key);
  }
}

// Owner keys of shared cameras, pinned on first sight (as the CLI's pins file): from then
// on only certificates signed by that key are believed, whatever the server says.
function loadPins(userId) {
  try {
    return JSON.parse(localStorage.getItem(`cc.pins.${userId}`) || "{}");
  } catch {
    return {};
  }
}

function pin(session, camera, ownerKey) {
  const pinned = session.pins[camera];
  if (pinned && pinned !== ownerKey) throw new Error("the camera's owner key changed since you first saw it");
  if (!pinned) {
    session.pins[camera] = ownerKey;
    localStorage.setItem(`cc.pins.${session.userId}`, JSON.stringify(session.pins));
  }
}

const SAVED = "cc.session";

/**
 * Keeps what a reload of this tab needs to resume the session in its sessionStorage, which
 * the tab's closing erases: the token, who we are and the unwrapped keys, never the password.
 */
function remember(session) {
  const saved = { token: session.api.token, user_id: session.userId, email: session.email, keys: c.exportUserKeys(session.keys) };
  sessionStorage.setItem(SAVED, JSON.stringify(saved));
}

export function forget() {
  sessionStorage.removeItem(SAVED);
}

/**
 * The session this tab kept, once `/v1/me` confirms it; null when there is none. An
 * `unauthenticated` ApiError means the server has ended it.
 */
export async function resume(api) {
  let saved, keys;
  try {
    saved = JSON.parse(sessionStorage.getItem(SAVED));
    keys = await c.importUserKeys(saved?.keys);
  } catch {
    keys = null;
  }
  if (!keys || typeof saved.token !== "string") {
    forget();
    return null;
  }
  api.token = saved.token;
  return confirm(new Session(api, saved, keys, saved.email));
}

/** Checks the server's record of us against our keys, and takes the email and session from it. */
async function confirm(session) {
  const me = await session.api.get("/v1/me");
  if (me.signing_key !== session.signingKeyB64 || me.age_recipient !== session.keys.recipient || me.user_id !== session.userId) {
    session.api.token = null;
    throw new Error("the server's record of your public keys differs from your keys");
  }
  session.email = me.email;
  session.sessionId = me.session_id;
  return session;
}

export async function signup(api, email, password) {
  const salt = c.randomBytes(16);
  const kdf = c.DEFAULT_KDF;
  const derived = await c.derivePasswordKeys(password, salt, kdf);
  const keys = await c.generateUserKeys();
  const recovery = c.randomBytes(32);
  await api.post("/v1/accounts", {
    email: email.trim(),
    salt: c.b64(salt),
    kdf,
    auth_key: c.b64(derived.authKey),
    age_recipient: keys.recipient,
    signing_key: c.b64(keys.signingPublic),
    wrapped_keys: c.b64(c.wrapUserKeys(keys, derived.kek)),
    recovery_wrapped_keys: c.b64(c.wrapUserKeys(keys, c.recoveryWrappingKey(recovery))),
  });
  return c.displayRecoveryKey(recovery);
}

/**
 * Logs in and keeps the session for this tab's reloads; a `second_factor_required` ApiError
 * asks the caller for a TOTP code.
 */
export async function login(api, email, password, totp) {
  email = email.trim();
  const pre = await api.post("/v1/accounts/prelogin", { email });
  const derived = await c.derivePasswordKeys(password, c.unb64(pre.salt), pre.kdf);
  const body = { email, auth_key: c.b64(derived.authKey), client: CLIENT_NAME };
  if (totp) body.totp = totp.trim();
  const answer = await api.post("/v1/sessions", body);
  const keys = await c.unwrapUserKeys(c.unb64(answer.wrapped_keys), derived.kek);
  api.token = answer.token;
  const session = await confirm(new Session(api, answer, keys, email));
  remember(session);
  return session;
}

export async function stepUp(session, password, totp) {
  if (totp) return session.api.post("/v1/sessions/current/step-up", { totp: totp.trim() });
  const pre = await session.api.post("/v1/accounts/prelogin", { email: session.email });
  const derived = await c.derivePasswordKeys(password, c.unb64(pre.salt), pre.kdf);
  return session.api.post("/v1/sessions/current/step-up", { auth_key: c.b64(derived.authKey) });
}

/** Verifies a camera's certificate with its owner's key (ours, or the pinned one). */
export function verifyCamera(session, info) {
  let owner;
  if (info.role === "owner") {
    owner = session.keys.signingPublic;
  } else {
    pin(session, info.camera_id, info.owner_signing_key);
    owner = c.publicKeyFromB64(session.pins[info.camera_id]);
  }
  const cert = c.verifySigned(c.CONTEXT.certificate, info.certificate, owner);
  if (cert.owner_key !== c.b64(owner)) throw new Error("the certificate is signed by a key other than the owner's");
  if (cert.camera_id !== info.camera_id) throw new Error("the certificate is for another camera");
  cert.deviceKey = c.publicKeyFromB64(cert.device_key);
  return cert;
}

/** A camera as shown: its verified certificate and decrypted name, or why not. */
export async function cameraView(session, info) {
  const view = { info, cert: null, name: null, error: null };
  try {
    view.cert = verifyCamera(session, info);
    const content = await session.contentIdentity(info.camera_id, info.name.epoch);
    view.name = c.untext(await c.ageDecrypt(content, c.unb64(info.name.ciphertext)));
  } catch (e) {
    view.error = e.message;
  }
  return view;
}

export async function cameras(session) {
  const infos = await session.api.get("/v1/cameras");
  return Promise.all(infos.map((info) => cameraView(session, info)));
}

const millis = (t) => {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(t || "");
  if (!m) return NaN;
  return Date.parse(`${m[1]}.${(m[2] || "").padEnd(3, "0").slice(0, 3)}${m[3]}`);
};

export const MAX_THUMB_BYTES = 2 * 1024 * 1024;
export const MAX_CLIP_BYTES = 64 * 1024 * 1024;

/**
 * Verifies a listed event against its camera, as `events::verify_listed`: the device's
 * signature, the camera and event it names, and that the server's metadata agrees.
 */
export function verifyEvent(camera, info) {
  if (!camera?.cert) throw new Error(camera?.error || "the camera is not one of yours");
  const m = c.verifySigned(c.CONTEXT.manifest, info.manifest, camera.cert.deviceKey);
  if (m.v !== 1) throw new Error(`unsupported manifest version ${m.v}`);
  if (m.camera_id !== camera.info.camera_id) throw new Error("the manifest belongs to another camera");
  if (m.event_id !== info.event_id) throw new Error("the manifest belongs to another event");
  const agrees =
    info.camera_id === camera.info.camera_id &&
    info.kind === m.kind &&
    millis(info.started_at) === millis(m.started_at) &&
    info.duration_ms === m.duration_ms &&
    info.epoch === m.epoch &&
    info.thumb_size === m.thumb_size &&
    info.clip_size === m.clip_size;
  if (!agrees) throw new Error("the server's description of the event differs from the signed manifest");
  if (m.thumb_size > MAX_THUMB_BYTES || m.clip_size > MAX_CLIP_BYTES) throw new Error("the signed sizes exceed the API's limits");
  return m;
}

/** Downloads, checks against the signed hash and decrypts one medium of an event. */
export async function openMedia(session, manifest, what) {
  const ciphertext = await session.api.bytes(`/v1/cameras/${manifest.camera_id}/events/${manifest.event_id}/${what}`);
  const [size, hash] = what === "thumb" ? [manifest.thumb_size, manifest.thumb_sha256] : [manifest.clip_size, manifest.clip_sha256];
  if (ciphertext.length !== size || c.sha256hex(ciphertext) !== hash) {
    throw new Error(`the ${what === "thumb" ? "thumbnail" : "clip"} does not match the hash in the signed manifest`);
  }
  const content = await session.contentIdentity(manifest.camera_id, manifest.epoch);
  return c.ageDecrypt(content, ciphertext);
}

export const LIVE_MEDIA_TYPES = ["image/bmp", "image/jpeg", "image/png", "video/webm"];
const MAX_LIVE_SKEW_S = 30;

/**
 * What a viewer remembers of the live view it watches, as `live::LiveCheck`: a segment is
 * shown only if the device signed it for this camera, its ciphertext is the one signed,
 * it was captured within 30 s of now, and it comes after the last one of its stream.
 */
export class LiveCheck {
  constructor(camera) {
    this.camera = camera;
    this.last = null;
  }

  /** Checks a LiveFrame; returns its segment and ciphertext, or throws why not. */
  accept(frame, now = Date.now()) {
    const camera = this.camera;
    if (!camera?.cert) throw new Error(camera?.error || "the camera is not one of yours");
    const s = c.verifySigned(c.CONTEXT.live, frame?.segment, camera.cert.deviceKey);
    if (s.v !== 1) throw new Error(`unsupported live segment version ${s.v}`);
    if (s.camera_id !== camera.info.camera_id) throw new Error("the segment belongs to another camera");
    if (!LIVE_MEDIA_TYPES.includes(s.media_type)) throw new Error("the media type is not one a camera sends");
    if (typeof s.stream !== "string" || !Number.isSafeInteger(s.seq) || !Number.isSafeInteger(s.epoch)) throw new Error("the signed segment is malformed");
    let ciphertext;
    try {
      ciphertext = c.unb64(frame.ciphertext);
    } catch {
      throw new Error("the ciphertext is not base64");
    }
    if (ciphertext.length !== s.size || c.sha256hex(ciphertext) !== s.sha256) throw new Error("the ciphertext does not match the hash in the signed segment");
    const capturedAt = millis(s.captured_at);
    const skew = Math.trunc((now - capturedAt) / 1000);
    if (!(Math.abs(skew) <= MAX_LIVE_SKEW_S)) throw new Error(`the segment was captured ${Number.isNaN(skew) ? "at no valid time" : `${skew} s away from now`}: not live`);
    if (this.last && this.last.stream === s.stream && s.seq <= this.last.seq) throw new Error(`segment ${s.seq} came after ${this.last.seq}: replayed or out of order`);
    this.last = { stream: s.stream, seq: s.seq };
    return { segment: s, ciphertext, capturedAt };
  }
}

/** Decrypts a checked live segment with the content key of its epoch. */
export async function openSegment(session, segment, ciphertext) {
  const content = await session.contentIdentity(segment.camera_id, segment.epoch);
  return c.ageDecrypt(content, ciphertext);
}

/** The media type of decrypted bytes, by their magic numbers (as `media::sniff_extension`). */
export function mediaType(bytes, fallback) {
  const at = (s, i = 0) => s.split("").every((ch, k) => bytes[i + k] === ch.charCodeAt(0));
  if (at("BM")) return "image/bmp";
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return "image/jpeg";
  if (at("\x89PNG")) return "image/png";
  if (at("GIF8")) return "image/gif";
  if (at("RIFF") && at("WEBP", 8)) return "image/webp";
  if (at("ftyp", 4)) return "video/mp4";
  if (bytes[0] === 0x1a && bytes[1] === 0x45 && bytes[2] === 0xdf && bytes[3] === 0xa3) return "video/webm";
  return fallback;
}

/** A claim the page waits on; its secrets stay in this tab's memory. */
export async function startClaim(session, name) {
  const code = c.newClaimCode(session.keys.signingPublic);
  const claim = await session.api.post("/v1/claims", { secret_hash: code.secretHash });
  const content = await c.generateContentIdentity();
  return { claimId: claim.claim_id, expiresAt: claim.expires_at, code, content, name };
}

/** Checks a claim once: "waiting", "gone", or the paired camera's info. */
export async function pollClaim(session, pending) {
  const open = await session.api.get("/v1/claims");
  const claim = open.find((x) => x.claim_id === pending.claimId);
  if (!claim) return "gone";
  if (!claim.pairing) return "waiting";
  const deviceKey = c.publicKeyFromB64(claim.pairing.device_key);
  if (!c.pairingMacMatches(pending.code.secret, deviceKey, c.unb64(claim.pairing.mac))) {
    await session.api.del(`/v1/claims/${pending.claimId}`).catch(() => {});
    throw new Error("the camera's pairing proof does not match the code: the claim was withdrawn");
  }
  const cameraId = c.uuidv7();
  const recipient = await c.recipientOf(pending.content);
  const certificate = {
    v: 1,
    camera_id: cameraId,
    device_key: c.b64(deviceKey),
    epoch: 1,
    content_recipient: recipient,
    owner_key: session.signingKeyB64,
    issued_at: new Date().toISOString(),
  };
  return session.api.post(`/v1/claims/${pending.claimId}/complete`, {
    certificate: c.sign(c.CONTEXT.certificate, certificate, session.keys.signingSeed),
    grant: c.b64(await c.ageEncrypt(session.keys.recipient, c.text(pending.content))),
    name: { epoch: 1, ciphertext: c.b64(await c.ageEncrypt(recipient, c.text(pending.name))) },
  });
}

export const MAX_NAME_CHARS = 100;

export function checkName(name) {
  const trimmed = name.trim();
  if (!trimmed) throw new Error("a camera name cannot be empty");
  if ([...trimmed].length > MAX_NAME_CHARS) throw new Error(`a camera name has at most ${MAX_NAME_CHARS} characters`);
  return trimmed;
}

export async function rename(session, view, name) {
  const info = await session.api.get(`/v1/cameras/${view.info.camera_id}`);
  const cert = verifyCamera(session, info);
  if (cert.epoch !== info.epoch) throw new Error("the camera's certificate is not for its current epoch");
  const sealed = await c.ageEncrypt(cert.content_recipient, c.text(checkName(name)));
  return session.api.patch(`/v1/cameras/${info.camera_id}`, { name: { epoch: info.epoch, ciphertext: c.b64(sealed) } });
}

export function phraseWith(session, other) {
  return c.verificationPhrase(
    { age_recipient: session.keys.recipient, signing_key: session.signingKeyB64 },
    { age_recipient: other.age_recipient, signing_key: other.signing_key },
  );
}

/** Invites a user: our grants re-encrypted to them (current epoch, or all with history). */
export async function invite(session, cameraId, user, role, history) {
  const info = await session.api.get(`/v1/cameras/${cameraId}`);
  verifyCamera(session, info);
  const own = await session.api.get(`/v1/cameras/${cameraId}/grants`);
  const grants = [];
  for (const g of own) {
    const wanted = history ? g.epoch <= info.epoch : g.epoch === info.epoch;
    if (!wanted || grants.some((x) => x.epoch === g.epoch)) continue;
    const content = await session.contentIdentity(cameraId, g.epoch);
    grants.push({ epoch: g.epoch, grant: c.b64(await c.ageEncrypt(user.age_recipient, c.text(content))) });
  }
  if (!grants.some((g) => g.epoch === info.epoch)) throw new Error("you hold no key for the camera's current epoch");
  grants.sort((a, b) => a.epoch - b.epoch);
  await session.api.post(`/v1/cameras/${cameraId}/shares`, { user_id: user.user_id, role, grants });
}

export async function acceptInvitation(session, invitation) {
  pin(session, invitation.camera_id, invitation.owner.signing_key);
  await session.api.post(`/v1/invitations/${invitation.camera_id}/accept`);
}

/** Removes a member; as owner, rotates the camera to a key the removed member never gets. */
export async function revoke(session, cameraId, userId) {
  await session.api.del(`/v1/cameras/${cameraId}/shares/${userId}`);
  const info = await session.api.get(`/v1/cameras/${cameraId}`);
  if (info.role === "owner") await rotate(session, info);
}

export async function rotate(session, info) {
  const camera = info.camera_id;
  const current = verifyCamera(session, info);
  const oldContent = await session.contentIdentity(camera, info.name.epoch);
  const name = c.untext(await c.ageDecrypt(oldContent, c.unb64(info.name.ciphertext)));
  const epoch = info.epoch + 1;
  const content = await c.generateContentIdentity();
  const recipient = await c.recipientOf(content);
  const certificate = {
    v: 1,
    camera_id: camera,
    device_key: current.device_key,
    epoch,
    content_recipient: recipient,
    owner_key: session.signingKeyB64,
    issued_at: new Date().toISOString(),
  };
  const members = await session.api.get(`/v1/cameras/${camera}/shares`);
  const grants = [{ user_id: session.userId, grant: c.b64(await c.ageEncrypt(session.keys.recipient, c.text(content))) }];
  for (const m of members) {
    if (m.status !== "active" || grants.some((g) => g.user_id === m.user.user_id)) continue;
    grants.push({ user_id: m.user.user_id, grant: c.b64(await c.ageEncrypt(m.user.age_recipient, c.text(content))) });
  }
  await session.api.post(`/v1/cameras/${camera}/rotate`, {
    certificate: c.sign(c.CONTEXT.certificate, certificate, session.keys.signingSeed),
    grants,
    name: { epoch, ciphertext: c.b64(await c.ageEncrypt(recipient, c.text(name))) },
  });
  session.forgetCamera(camera);
}

/** Rotates every owned camera the server flags (a member removed while we were away). */
export async function rotatePending(session, views) {
  for (const v of views) {
    if (v.info.role === "owner" && v.info.rotation_needed && v.cert) await rotate(session, v.info).catch(() => {});
  }
}

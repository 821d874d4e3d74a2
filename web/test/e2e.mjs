// End-to-end tests of the web app in headless Chromium, against a real
// `closedcircuit serve` on a temporary data directory and port, with cameras simulated
// by `closedcircuit camera agent`. Screenshots land in target/web-artifacts/.
//
//   node web/test/e2e.mjs [path/to/closedcircuit]

import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = path.resolve(process.argv[2] || process.env.CLOSEDCIRCUIT_BIN || path.join(root, "target/debug/closedcircuit"));
const ARTIFACTS = path.join(root, "target/web-artifacts");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const PASSWORD = "correct horse battery staple";
const WAIT = 60_000;

const work = await mkdtemp(path.join(tmpdir(), "cc-web-e2e-"));
const dataDir = path.join(work, "data");
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
let server = null;
const children = new Set();

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

/** Runs the CLI; resolves with its output, rejects on a non-zero exit. */
function cli(args, { profile, input, background } = {}) {
  const env = { ...process.env, CLOSEDCIRCUIT_SERVER: base, CLOSEDCIRCUIT_PASSWORD: PASSWORD, NO_COLOR: "1" };
  if (profile) env.CLOSEDCIRCUIT_PROFILE = path.join(work, "profiles", profile);
  const child = spawn(BIN, args, { env, stdio: ["pipe", "pipe", "pipe"] });
  children.add(child);
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  child.stdin.end(input ?? "");
  const done = new Promise((resolve, reject) => {
    child.on("exit", (code) => {
      children.delete(child);
      if (code === 0) resolve(out);
      else reject(new Error(`closedcircuit ${args.join(" ")} exited ${code}:\n${out}`));
    });
  });
  if (background) return { child, done, output: () => out };
  return done;
}

async function startServer() {
  server = spawn(BIN, ["serve", "--data-dir", dataDir, "--listen", `127.0.0.1:${port}`], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  server.stderr.on("data", (d) => (log = (log + d).slice(-4000)));
  const deadline = Date.now() + WAIT;
  for (;;) {
    try {
      if ((await fetch(`${base}/`)).ok) return;
    } catch {
      // not listening yet
    }
    if (server.exitCode !== null || Date.now() > deadline) throw new Error(`the server did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopServer() {
  if (!server || server.exitCode !== null) return;
  const exited = new Promise((r) => server.once("exit", r));
  server.kill("SIGTERM");
  await exited;
}

/** Runs a simulated camera that pairs with `code` and sends `events` events. */
function agent(code, name, events, interval = 1) {
  const args = ["camera", "agent", "--state-dir", path.join(work, "cameras", name), "--source", "synthetic", "--events", String(events), "--interval", String(interval)];
  if (code) args.push("--claim", code);
  return cli(args, { background: true });
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

const problems = [];
const openPages = new Map();

/** A fresh browser context (its own storage) with guards against dialogs and outside requests. */
async function newPage(label, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  openPages.set(label, page);
  page.on("dialog", async (d) => {
    problems.push(`${label}: a dialog opened: ${d.message()}`);
    await d.dismiss();
  });
  page.on("request", (r) => {
    const url = new URL(r.url());
    if (url.protocol === "blob:" || url.protocol === "data:") return;
    if (url.hostname !== "127.0.0.1" || url.port !== String(port)) problems.push(`${label}: request left the origin: ${r.url()}`);
  });
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/.test(m.text())) problems.push(`${label}: ${m.text()} at ${JSON.stringify(m.location())}`);
  });
  page.on("pageerror", (e) => problems.push(`${label}: uncaught ${e.message}`));
  await page.goto(base);
  return page;
}

async function signUp(page, email) {
  await page.fill("#signup-email", email);
  await page.fill("#signup-password", PASSWORD);
  await page.fill("#signup-password2", PASSWORD);
  await page.click("#signup-submit");
  await page.waitForSelector("#recovery-key");
  check(/^[A-Z2-7]{4}(-[A-Z2-7]{1,4})+$/.test(await page.textContent("#recovery-key")), "a recovery key is shown");
  await page.click("#recovery-done");
  await page.waitForSelector("#tab-events");
}

async function signIn(page, email) {
  await page.fill("#login-email", email);
  await page.fill("#login-password", PASSWORD);
  await page.click("#login-submit");
  await page.waitForSelector("#tab-events");
}

async function claimInBrowser(page, name) {
  await page.click("#tab-cameras");
  await page.fill("#claim-name", name);
  await page.click("#claim-submit");
  const code = (await page.textContent("#claim-code")).trim();
  check(/^CC1-[A-Z2-7]+-[A-Z2-7]{16}$/.test(code), `the page shows a claim code (${code})`);
  check(await page.isVisible("canvas.qr"), "the page shows a QR code");
  return code;
}

/** Event IDs of verified cards on the Events tab, waiting until there are at least `n`. */
async function verifiedEvents(page, n) {
  const deadline = Date.now() + WAIT;
  for (;;) {
    const ids = await page.$$eval("#event-list article.card.verified", (cards) => cards.map((c) => c.dataset.eventId));
    if (ids.length >= n) return ids;
    if (Date.now() > deadline) throw new Error(`expected ${n} verified events, saw ${ids.length}`);
    await page.waitForTimeout(500);
  }
}

/** The current RFC 6238 code (SHA-1, 30 s, 6 digits) of a base32 secret. */
function totp(secret) {
  let bits = "";
  for (const ch of secret) bits += "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".indexOf(ch).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const at = mac[mac.length - 1] & 15;
  return String((mac.readUInt32BE(at) & 0x7fffffff) % 1e6).padStart(6, "0");
}

/** Clicks Refresh on the Events tab and waits until the list has been rebuilt. */
async function refreshEvents(page) {
  await page.click("#events-refresh");
  await page.waitForSelector("#event-list[aria-busy='false']", { state: "attached" });
}

async function cameraIdsOnPage(page) {
  return page.$$eval("#event-list article.card", (cards) => [...new Set(cards.map((c) => c.dataset.cameraId))]);
}

/** The page's bearer token, from the request that lists its cameras. */
async function bearer(page) {
  const [request] = await Promise.all([page.waitForRequest((r) => new URL(r.url()).pathname === "/v1/cameras"), page.click("#tab-cameras")]);
  return request.headerValue("authorization");
}

/** Opens a camera's live view with `auth` and returns its first `n` frames (LiveFrame JSON). */
async function liveFrames(auth, cameraId, n) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), WAIT);
  try {
    const response = await fetch(`${base}/v1/cameras/${cameraId}/live`, { headers: { Authorization: auth }, signal: controller.signal });
    check(response.ok, `the live view opens (${response.status})`);
    const decoder = new TextDecoder();
    const frames = [];
    let text = "";
    for await (const chunk of response.body) {
      text += decoder.decode(chunk, { stream: true });
      let at;
      while ((at = text.indexOf("\n\n")) >= 0) {
        const message = text.slice(0, at);
        text = text.slice(at + 2);
        const data = /^data: ?(.*)$/m.exec(message);
        if (/^event: ?segment$/m.test(message) && data) frames.push(JSON.parse(data[1]));
      }
      if (frames.length >= n) return frames.slice(0, n);
    }
    throw new Error("the live view ended early");
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

/** Waits until the live panel shows a decoded frame and at least `n` frames were shown. */
async function liveShows(page, n) {
  await page.waitForFunction((n) => {
    const img = document.querySelector("#live-frame");
    return img && !img.hidden && img.complete && img.naturalWidth > 0 && parseInt(document.querySelector("#live-count").textContent, 10) >= n;
  }, n);
}

async function shoot(page, name) {
  const size = page.viewportSize();
  await page.screenshot({ path: path.join(ARTIFACTS, `${size.width}x${size.height}-${name}.png`), fullPage: false });
}

const results = [];
async function test(name, body) {
  const started = Date.now();
  await body();
  results.push(name);
  console.log(`ok - ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

try {
  await mkdir(ARTIFACTS, { recursive: true });
  await startServer();

  let alice;
  await test("full flow: sign up, pair with the CLI, live events, clip plays, share, revoke", async () => {
    alice = await newPage("alice");
    await shoot(alice, "sign-in");
    await signUp(alice, "alice@example.org");
    const code = await claimInBrowser(alice, "Front door");
    await shoot(alice, "claim");
    const camera = agent(code, "front-door", 3, 1);
    await alice.waitForSelector("#claim-state:has-text('Paired')");
    await alice.waitForSelector("#camera-list article:has-text('Front door')");
    await alice.click("#tab-events");
    await camera.done;
    const events = await verifiedEvents(alice, 3);
    check(events.length === 3, "three events");
    check((await alice.$$("#event-list article.card.bad")).length === 0, "no error cards");
    const thumbOk = await alice.$eval("#event-list article.card.verified img", (img) => img.complete && img.naturalWidth > 0);
    check(thumbOk, "the decrypted thumbnail renders");
    await alice.waitForSelector("[data-timeline] .marker");
    await shoot(alice, "events");

    await alice.click("#event-list article.card.verified button.play");
    await alice.waitForFunction(() => document.querySelector("#player-video")?.readyState >= 2);
    const frame = await alice.evaluate(async () => {
      const video = document.querySelector("#player-video");
      const seeked = new Promise((r) => video.addEventListener("seeked", r, { once: true }));
      video.currentTime = Math.min(1.2, video.duration - 0.1);
      await seeked;
      const canvas = document.createElement("canvas");
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      const ctx = canvas.getContext("2d");
      ctx.drawImage(video, 0, 0);
      const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
      const colours = new Set();
      for (let i = 0; i < data.length; i += 4 * 97) colours.add(`${data[i] >> 4},${data[i + 1] >> 4},${data[i + 2] >> 4}`);
      return { width: video.videoWidth, duration: video.duration, time: video.currentTime, colours: colours.size, ready: video.readyState };
    });
    check(frame.width > 0 && frame.ready >= 2, `the clip decodes (${JSON.stringify(frame)})`);
    check(frame.time > 1, `seeking works (${JSON.stringify(frame)})`);
    check(frame.colours > 8, `a decoded frame is not blank (${JSON.stringify(frame)})`);
    await shoot(alice, "player");
    await alice.click("#player-close");

    const bob = await newPage("bob");
    await signUp(bob, "bob@example.org");
    await alice.click("#tab-sharing");
    await alice.fill(".share-block .invite-email", "bob@example.org");
    await alice.click(".share-block .invite-lookup");
    const alicePhrase = (await alice.textContent(".invite-phrase")).trim();
    await alice.click(".invite-confirm");
    await alice.waitForSelector(".share-block tr.member:has-text('bob@example.org')");
    await shoot(alice, "sharing");
    await bob.click("#tab-sharing");
    await bob.waitForSelector(".invitation");
    const bobPhrase = (await bob.textContent(".invitation .phrase")).trim();
    check(alicePhrase === bobPhrase && /^(\d{5} ){7}\d{5}$/.test(bobPhrase), "both sides see the same verification phrase");
    await bob.click(".invitation button.accept");
    await bob.waitForSelector("text=Front door (viewer)");
    await bob.click("#tab-events");
    const bobEvents = await verifiedEvents(bob, 3);
    check(bobEvents.sort().join() === events.sort().join(), "the friend sees the shared camera's events");

    await alice.click(".share-block tr.member:has-text('bob@example.org') button.revoke");
    await alice.click(".share-block tr.member:has-text('bob@example.org') button.revoke");
    await alice.waitForSelector(".share-block tr.member:has-text('bob@example.org')", { state: "detached" });
    await refreshEvents(bob);
    await bob.waitForSelector("#no-cameras");
    check((await bob.$$("#event-list article.card")).length === 0, "after revocation the friend's view is empty");
    await bob.context().close();

    await alice.click("#tab-account");
    await alice.waitForSelector("#sessions tbody tr");
    await shoot(alice, "account");
    await alice.click("#tab-cameras");
    await alice.click("#camera-list article button.access");
    await alice.waitForSelector("table.access-log");
    check((await alice.textContent("table.access-log")).includes("bob@example.org"), "the access log shows who read the camera");
    await shoot(alice, "access-log");
  });

  await test("phone-size screens", async () => {
    const phone = await newPage("phone", { width: 390, height: 844 });
    await shoot(phone, "sign-in");
    await signIn(phone, "alice@example.org");
    await verifiedEvents(phone, 3);
    await shoot(phone, "events");
    await phone.click("#event-list article.card.verified button.play");
    await phone.waitForFunction(() => document.querySelector("#player-video")?.readyState >= 2);
    await shoot(phone, "player");
    await phone.click("#player-close");
    for (const tab of ["cameras", "sharing", "account"]) {
      await phone.click(`#tab-${tab}`);
      await phone.waitForSelector("#view-title");
      await phone.waitForTimeout(300);
      await shoot(phone, tab);
    }
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `no sideways scrolling on a phone (${overflow}px)`);
    await phone.context().close();
  });

  await test("keyboard: sign in and open a clip without a mouse", async () => {
    const page = await newPage("keyboard");
    await page.focus("#login-email");
    await page.keyboard.type("alice@example.org");
    await page.keyboard.press("Tab");
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press("Enter");
    await page.waitForSelector("#event-list article.card.verified");
    await page.focus("#event-list article.card.verified button.play");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.querySelector("#player-video")?.readyState >= 2);
    await page.keyboard.press("Escape");
    await page.waitForSelector("dialog", { state: "detached" });
    await page.context().close();
  });

  await test("accounts interoperate: browser-made logs in on the CLI and CLI-made in the browser", async () => {
    await cli(["account", "login", "--email", "alice@example.org", "--password-stdin"], { profile: "alice", input: PASSWORD });
    const cameras = JSON.parse(await cli(["camera", "list", "--json"], { profile: "alice" }));
    check(cameras.length === 1 && JSON.stringify(cameras).includes("Front door"), "the CLI reads the camera the browser paired, and its name");
    const listed = JSON.parse(await cli(["events", "list", "--json"], { profile: "alice" }));
    check(listed.length === 3 && !JSON.stringify(listed).includes('"verified":false'), "the CLI verifies the events");

    await cli(["account", "signup", "--email", "carol@example.org", "--password-stdin"], { profile: "carol", input: PASSWORD });
    const carol = await newPage("carol-cli");
    await signIn(carol, "carol@example.org");
    await carol.click("#tab-account");
    check((await carol.textContent("#account-email")).trim() === "carol@example.org", "the CLI-made account signs in");
    await carol.context().close();
  });

  await test("two-factor login asks for the authenticator's code", async () => {
    await cli(["account", "signup", "--email", "frank@example.org", "--password-stdin"], { profile: "frank", input: PASSWORD });
    const shown = await cli(["account", "2fa", "enable"], { profile: "frank" }).catch((e) => e.message);
    const secret = /Secret: ([A-Z2-7]+)/.exec(shown)?.[1];
    check(secret, "the CLI shows a TOTP secret");
    const enabledWith = totp(secret);
    await cli(["account", "2fa", "enable", "--code", enabledWith], { profile: "frank" });
    const page = await newPage("frank");
    await page.fill("#login-email", "frank@example.org");
    await page.fill("#login-password", PASSWORD);
    await page.click("#login-submit");
    await page.waitForSelector("#login-totp");
    check((await page.textContent("#auth-status")).includes("authenticator"), "the page asks for the code");
    await shoot(page, "two-factor");
    while (totp(secret) === enabledWith) await page.waitForTimeout(1000);
    await page.fill("#login-totp", totp(secret));
    await page.click("#login-submit");
    await page.waitForSelector("#tab-events");
    await page.context().close();
  });

  await test("a reload keeps the tab signed in until it logs out or the session ends; nothing outlives the tab", async () => {
    const email = "henry@example.org";
    const kept = (page) => page.evaluate(() => ({ session: sessionStorage.getItem("cc.session"), local: localStorage.length, cookie: document.cookie }));
    const nothingElse = async (page, label) => {
      const { local, cookie } = await kept(page);
      const cookies = await page.context().cookies();
      check(local === 0 && cookie === "" && cookies.length === 0, `${label}: no localStorage and no cookie (${local}, ${JSON.stringify(cookies)})`);
    };
    const signedIn = async (page, events) => {
      await page.waitForSelector("#tab-events");
      const shown = await verifiedEvents(page, events.length);
      check(shown.sort().join() === events.sort().join(), "the same events after a reload");
      check(await page.$eval("#event-list article.card.verified img", (img) => img.complete && img.naturalWidth > 0), "a thumbnail decrypts after a reload");
    };
    const signInForm = async (page, note) => {
      await page.waitForSelector("#login-form");
      check((await page.textContent("#auth-status")) === note, `the sign-in form says "${note}"`);
      check((await kept(page)).session === null, "nothing is kept for the tab");
    };

    const page = await newPage("henry");
    check((await page.textContent("#login-note")) === "This tab stays signed in until you close it or log out.", "the sign-in form says how long a tab stays signed in");
    await signUp(page, email);
    const camera = agent(await claimInBrowser(page, "Hall"), "hall", 2, 0.5);
    await page.waitForSelector("#claim-state:has-text('Paired')");
    await camera.done;
    await page.click("#tab-events");
    const events = await verifiedEvents(page, 2);
    const saved = (await kept(page)).session;
    check(saved && !saved.includes(PASSWORD), "the tab keeps its session, without the password");
    await nothingElse(page, "signed in");

    await page.reload();
    await signedIn(page, events);
    await page.click("#tab-account");
    check((await page.textContent("#account-email")).trim() === email, "the account is the same after a reload");

    await page.click("#logout");
    await signInForm(page, "You are logged out.");
    await page.reload();
    await signInForm(page, "");

    await signIn(page, email);
    await page.reload();
    await signedIn(page, events);

    const laptop = await newPage("henry-laptop");
    await signIn(laptop, email);
    await laptop.click("#tab-account");
    await laptop.waitForSelector("#sessions tbody tr");
    for (let n; (n = (await laptop.$$("#sessions tbody button")).length) > 0; ) {
      await laptop.click("#sessions tbody button >> nth=0");
      await laptop.waitForFunction((n) => document.querySelectorAll("#sessions tbody button").length < n, n);
    }
    check((await kept(page)).session !== null, "the other tab still keeps its ended session");
    await page.reload();
    await signInForm(page, "Your session ended; sign in again.");
    await nothingElse(page, "after the session ended");

    await signIn(page, email);
    await page.click("#tab-account");
    await page.click("#logout-everywhere");
    await signInForm(page, "You are logged out.");
    await laptop.click("#tab-cameras");
    await signInForm(laptop, "Your session ended; sign in again.");
    await nothingElse(laptop, "the laptop after log out everywhere");
    await page.context().close();
    await laptop.context().close();
  });

  await test("two households never see each other's items, also across a server restart; removing a camera", async () => {
    const homes = [];
    for (const who of ["dora", "erin"]) {
      const page = await newPage(who);
      await signUp(page, `${who}@example.org`);
      const code = await claimInBrowser(page, `${who}'s porch`);
      const cam = agent(code, `${who}-porch`, 2, 0.5);
      await page.waitForSelector("#claim-state:has-text('Paired')");
      const cameraId = await page.$eval("#camera-list article", (a) => a.dataset.cameraId);
      await cam.done;
      await page.click("#tab-events");
      homes.push({ who, page, cameraId, events: await verifiedEvents(page, 2) });
    }
    const [d, e] = homes;
    const disjoint = () => !d.events.some((x) => e.events.includes(x));
    check(disjoint(), "different events");
    for (const home of homes) check((await cameraIdsOnPage(home.page)).join() === home.cameraId, `${home.who} sees only their camera`);

    await stopServer();
    for (const home of homes) await home.page.waitForSelector("#live-state:has-text('reconnecting')");
    await startServer();
    for (const home of homes) await home.page.waitForSelector("#live-state:has-text('Live:')");
    for (const home of homes) {
      await agent(null, `${home.who}-porch`, 2, 0.5).done;
    }
    for (const home of homes) {
      home.events = await verifiedEvents(home.page, 4);
      check((await cameraIdsOnPage(home.page)).join() === home.cameraId, `${home.who} still sees only their camera after the restart`);
      await refreshEvents(home.page);
      const after = await verifiedEvents(home.page, 4);
      check(after.length === 4, `${home.who} has exactly their four events`);
      check((await cameraIdsOnPage(home.page)).join() === home.cameraId, `${home.who} sees only their camera after a refresh`);
    }
    check(disjoint(), "still different events");

    const [gone] = homes;
    await gone.page.click("#tab-cameras");
    await gone.page.click("#camera-list article button.remove");
    await gone.page.click("#remove-confirm");
    await gone.page.waitForSelector("text=No cameras yet.");
    await gone.page.click("#tab-events");
    await gone.page.waitForSelector("#no-cameras");
    check((await homes[1].page.$$("#camera-list article, #event-list article")).length > 0, "the other household keeps theirs");
    for (const home of homes) await home.page.context().close();
  });

  await test("script payloads in camera names, emails and labels render as text", async () => {
    const evilEmail = "<img/src=x/onerror=alert(1)>@evil.example";
    const evilName = "<script>alert(2)</script><img src=x onerror=alert(3)>";
    await cli(["account", "signup", "--email", evilEmail, "--password-stdin"], { profile: "mallory", input: PASSWORD });
    const claim = await cli(["camera", "claim", "--name", evilName, "--no-wait"], { profile: "mallory" });
    const code = /CC1-[A-Z2-7]+-[A-Z2-7]{16}/.exec(claim)?.[0];
    check(code, "the CLI prints a claim code");
    const cam = agent(code, "mallory-cam", 2, 1);
    let cameraId;
    for (let i = 0; !cameraId && i < 120; i++) {
      const printed = await cli(["camera", "list", "--json"], { profile: "mallory" });
      const list = JSON.parse(printed.slice(printed.indexOf("[")));
      cameraId = list[0]?.camera_id;
      if (!cameraId) await new Promise((r) => setTimeout(r, 500));
    }
    check(cameraId, "the payload-named camera paired");
    await cam.done;
    await cli(["share", "invite", "--camera", cameraId, "--email", "alice@example.org", "--role", "viewer", "--history"], { profile: "mallory" });

    await alice.click("#tab-sharing");
    await alice.waitForSelector(".invitation");
    check((await alice.textContent(".invitation")).includes(evilEmail.toLowerCase()), "the inviter's email shows as text");
    await alice.click(".invitation button.accept");
    await alice.waitForSelector("li:has-text('(viewer)')");
    await alice.click("#tab-cameras");
    await alice.click("#camera-list article:has-text('Front door') button.rename");
    await alice.fill(".rename-form input", "<img src=x onerror=alert(4)>");
    await alice.click(".rename-form button[type=submit]");
    await alice.waitForSelector("text=<img src=x onerror=alert(4)>");
    check((await alice.textContent("#camera-list")).includes(evilName), "the shared camera's name shows as text");
    await alice.click("#tab-events");
    await verifiedEvents(alice, 5);
    check((await alice.textContent("#event-list")).includes(evilName), "event cards show the name as text");
    await shoot(alice, "payloads");
    const injected = await alice.evaluate(() => document.querySelectorAll("img[src='x'], script:not([src='/app.js'])").length);
    check(injected === 0, "no element was made from a payload");
  });

  await test("a lying server's events show as error cards, never as pictures", async () => {
    await alice.click("#tab-cameras");
    await alice.waitForSelector("#camera-list article >> nth=1");
    const ids = await alice.$$eval("#camera-list article", (cards) => cards.map((c) => ({ id: c.dataset.cameraId, text: c.textContent })));
    const own = ids.find((c) => c.text.includes("You own"));
    const other = ids.find((c) => c.id !== own.id);
    let foreign;
    const foreignSeen = new Promise((resolve) => (foreign = resolve));
    const tampered = new Set();
    await alice.route(/\/v1\/cameras\/[^/]+\/events(\?.*)?$/, async (route) => {
      const response = await route.fetch();
      const page = await response.json();
      if (route.request().url().includes(other.id)) {
        foreign(page.events[0]);
      } else if (page.events.length >= 3) {
        const [forged, , hashed] = page.events;
        forged.manifest.body = forged.manifest.body.replace(/"kind":"\w+"/, '"kind":"person","x":1');
        const swapped = await Promise.race([foreignSeen, new Promise((r) => setTimeout(() => r(null), 5000))]);
        if (swapped) page.events[1] = { ...swapped, camera_id: own.id };
        tampered.add(forged.event_id).add(page.events[1].event_id).add(hashed.event_id);
        await alice.route(`**/events/${hashed.event_id}/thumb`, async (thumb) => {
          const body = await (await thumb.fetch()).body();
          body[body.length - 1] ^= 1;
          await thumb.fulfill({ body, contentType: "application/octet-stream" });
        });
      }
      await route.fulfill({ response, json: page });
    });
    await alice.click("#tab-events");
    await verifiedEvents(alice, 2);
    await alice.waitForFunction((n) => document.querySelectorAll("#event-list article.card.bad").length >= n, 3);
    const bad = await alice.$$eval("#event-list article.card.bad", (cards) => cards.map((c) => ({ id: c.dataset.eventId, imgs: c.querySelectorAll("img").length, text: c.textContent })));
    check(bad.length === 3 && bad.every((c) => tampered.has(c.id)), `exactly the tampered events are error cards (${JSON.stringify(bad)})`);
    check(bad.every((c) => c.imgs === 0 && c.text.includes("cannot be shown")), "error cards carry no image and say why");
    await shoot(alice, "error-cards");
    await alice.unrouteAll({ behavior: "wait" });
  });

  await test("step-up before video, when the account asks for it", async () => {
    await alice.click("#tab-account");
    await alice.check("#require-step-up");
    await alice.waitForFunction(() => document.getElementById("live").textContent.includes("only after"));
    await alice.click("#tab-events");
    await alice.click("#event-list article.card.verified button.play");
    await alice.waitForSelector("#stepup-form");
    await shoot(alice, "step-up");
    await alice.fill("#stepup-password", PASSWORD);
    await alice.click("#stepup-submit");
    await alice.waitForFunction(() => document.querySelector("#player-video")?.readyState >= 2);
    await alice.click("#player-close");
    await alice.click("#tab-account");
    await alice.uncheck("#require-step-up");
  });

  await test("older events load as you scroll; filters by camera and kind", async () => {
    await agent(null, "front-door", 30, 0.05).done;
    await alice.click("#tab-cameras");
    await alice.waitForSelector("#camera-list article:has-text('You own')");
    const own = await alice.$eval("#camera-list article:has-text('You own')", (a) => a.dataset.cameraId);
    await alice.click("#tab-events");
    await alice.waitForSelector("#event-list[aria-busy='false']", { state: "attached" });
    await alice.evaluate(() => window.scrollTo(0, 0));
    await alice.selectOption("#filter-camera", own);
    await alice.waitForSelector("#event-list[aria-busy='false']", { state: "attached" });
    await alice.locator("#events-more").scrollIntoViewIfNeeded();
    await alice.waitForSelector("#events-end:not([hidden])");
    const all = await alice.$$eval("#event-list article.card", (cards) => cards.map((c) => [c.dataset.cameraId, c.dataset.eventId]));
    check(all.length === 33 && new Set(all.map(([, e]) => e)).size === 33, `all 33 events of the camera, once each, after scrolling (${all.length})`);
    check(all.every(([camera]) => camera === own), "only the chosen camera's events");
    await alice.selectOption("#filter-kind", "person");
    await alice.waitForSelector("#event-list[aria-busy='false']", { state: "attached" });
    const kinds = await alice.$$eval("#event-list article.card > span.meta:nth-of-type(1)", (metas) => metas.map((m) => m.textContent.split(" ")[0]));
    check(kinds.length > 0 && kinds.length < 33 && kinds.every((k) => k === "person"), `only person events (${kinds})`);
    await alice.selectOption("#filter-kind", "");
    await alice.selectOption("#filter-camera", "");
  });

  await test("live view: frames verified and decrypted in the browser; others get 404; a lying stream is caught", async () => {
    const gina = await newPage("gina");
    await signUp(gina, "gina@example.org");
    const garden = agent(await claimInBrowser(gina, "Garden"), "garden", 1000, 60);
    garden.done.catch(() => {});
    await gina.waitForSelector("#claim-state:has-text('Paired')");
    const cameraId = await gina.$eval("#camera-list article", (a) => a.dataset.cameraId);

    await gina.focus(`#camera-list article[data-camera-id="${cameraId}"] button.watch`);
    await gina.keyboard.press("Enter");
    await liveShows(gina, 2);
    check(await gina.isVisible("#live-badge"), "the LIVE badge shows");
    check(/^\d+\.\d s ago$/.test(await gina.textContent("#live-age")), "the frame's age shows");
    check(await gina.isHidden("#live-warning"), "the camera's own frames verify");
    const colours = await gina.$eval("#live-frame", (img) => {
      const canvas = document.createElement("canvas");
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const ctx = canvas.getContext("2d");
      ctx.drawImage(img, 0, 0);
      const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
      const seen = new Set();
      for (let i = 0; i < data.length; i += 4 * 97) seen.add(`${data[i] >> 4},${data[i + 1] >> 4},${data[i + 2] >> 4}`);
      return seen.size;
    });
    check(colours > 8, `a decoded live frame is not blank (${colours} colours)`);
    await shoot(gina, "live");
    const aborted = gina.waitForEvent("requestfailed", (r) => r.url().endsWith(`/v1/cameras/${cameraId}/live`));
    await gina.keyboard.press("Escape");
    await gina.waitForSelector("#live-view", { state: "detached" });
    await aborted;

    const aliceAuth = await bearer(alice);
    check((await alice.$$(`[data-camera-id="${cameraId}"]`)).length === 0, "another household does not list the camera");
    const answer = await alice.evaluate(async ([url, auth]) => {
      const response = await fetch(url, { headers: { Authorization: auth } });
      return { status: response.status, code: (await response.json()).code };
    }, [`/v1/cameras/${cameraId}/live`, aliceAuth]);
    check(answer.status === 404 && answer.code === "not_found", `another household's live view of the camera is 404 (${JSON.stringify(answer)})`);
    const aliceCamera = await alice.$eval("#camera-list article:has-text('You own')", (a) => a.dataset.cameraId);

    await gina.click("#tab-account");
    await gina.check("#require-step-up");
    await gina.waitForFunction(() => document.getElementById("live").textContent.includes("only after"));
    const phone = await newPage("gina-phone", { width: 390, height: 844 });
    await signIn(phone, "gina@example.org");
    await phone.click("#tab-cameras");
    await phone.click("#camera-list button.watch");
    await phone.waitForSelector("#live-view #stepup-form");
    await phone.fill("#stepup-password", PASSWORD);
    await phone.click("#stepup-submit");
    await liveShows(phone, 2);
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `no sideways scrolling in live view on a phone (${overflow}px)`);
    await shoot(phone, "live");
    await phone.click("#live-close");
    await phone.context().close();
    await gina.uncheck("#require-step-up");
    await gina.waitForFunction(() => document.getElementById("live").textContent.includes("without"));

    const [first, second] = await liveFrames(await bearer(gina), cameraId, 2);
    const stream = (...frames) => frames.map((f) => `event: segment\ndata: ${JSON.stringify(f)}\n\n`).join("");
    const lies = [
      ["a replayed segment", [first, first], /replayed or out of order/],
      ["a segment edited to name another camera", [first, { ...first, segment: { ...first.segment, body: first.segment.body.replace(cameraId, aliceCamera) } }], /signature does not verify/],
      ["another segment's ciphertext", [first, { ...second, ciphertext: first.ciphertext }], /does not match the hash/],
    ];
    for (const [what, frames, reason] of lies) {
      let served = 0;
      await gina.route(`**/v1/cameras/${cameraId}/live`, (route) => {
        served += 1;
        if (served === 1) return route.fulfill({ status: 200, contentType: "text/event-stream", body: stream(...frames) });
        return route.fulfill({ status: 404, contentType: "application/problem+json", body: JSON.stringify({ status: 404, code: "not_found", title: "Not found" }) });
      });
      await gina.click(`#camera-list article[data-camera-id="${cameraId}"] button.watch`);
      await gina.waitForSelector("#live-warning:not([hidden])");
      const warning = await gina.textContent("#live-warning");
      check(warning.startsWith("A live segment did not verify: ") && reason.test(warning), `${what} is caught (${warning})`);
      await liveShows(gina, 1);
      check((await gina.textContent("#live-count")) === "1 frame", `${what} is not shown`);
      if (what === lies[0][0]) await shoot(gina, "live-warning");
      await gina.waitForSelector("#live-status:has-text('Live view ended')");
      check(served === 2 && (await gina.textContent("#live-count")) === "1 frame", `after the stream ends it is retried once, then not again (${served})`);
      await gina.click("#live-close");
      await gina.unrouteAll({ behavior: "wait" });
    }
    await gina.context().close();
    garden.child.kill("SIGTERM");
  });

  await test("log out everywhere ends the session", async () => {
    await alice.click("#tab-account");
    await alice.click("#logout-everywhere");
    await alice.waitForSelector("#login-form");
    await cli(["camera", "list", "--json"], { profile: "alice" }).then(
      () => problems.push("the CLI session survived log out everywhere"),
      () => {},
    );
  });

  check(problems.length === 0, `no dialogs, outside requests or policy violations:\n${problems.join("\n")}`);
  console.log(`web e2e: ${results.length} passed; screenshots in ${path.relative(root, ARTIFACTS)}/`);
} catch (e) {
  console.error(e);
  if (problems.length) console.error(problems.join("\n"));
  for (const [label, page] of openPages) {
    if (!page.isClosed()) await page.screenshot({ path: path.join(ARTIFACTS, `failure-${label}.png`) }).catch(() => {});
  }
  process.exitCode = 1;
} finally {
  await browser.close();
  for (const child of children) child.kill("SIGKILL");
  await stopServer();
  await rm(work, { recursive: true, force: true });
}

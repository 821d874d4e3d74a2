// The Closed Circuit web app: sign-in, cameras, the Events tab, sharing and the account.
// Keys live in this tab: in memory and, so that a reload resumes, in its sessionStorage
// until the tab closes or the session ends.

import qrcode from "qrcode-generator";
import { Api, ApiError } from "./api.js";
import * as client from "./client.js";
import { fingerprint } from "./crypto.js";
import { announce, dayKey, fill, fmtDateTime, fmtDay, fmtTime, h } from "./dom.js";

const api = new Api();
const main = document.getElementById("main");
const nav = document.getElementById("nav");

const app = {
  session: null,
  cameras: [],
  tab: "events",
  follower: null,
  onLive: null,
  claim: null,
};

const TABS = [
  ["events", "Events"],
  ["cameras", "Cameras"],
  ["sharing", "Sharing"],
  ["account", "Account"],
];

const KINDS = ["motion", "person", "sound"];

const SESSION_ENDED = "Your session ended; sign in again.";

api.onEnded = () => {
  if (app.session) signedOut(SESSION_ENDED);
};

function errorText(e) {
  if (e instanceof ApiError && e.code === "invalid_credentials") return "Wrong email or password.";
  if (e instanceof ApiError && e.code === "network") return "The server cannot be reached. Try again in a moment.";
  return e?.message || String(e);
}

function busy(button, work) {
  return async (event) => {
    event?.preventDefault();
    button.disabled = true;
    try {
      await work();
    } finally {
      button.disabled = false;
    }
  };
}

function field(label, props) {
  const id = props.id;
  return [h("label", { for: id }, label), h("input", props)];
}

function cameraName(view) {
  if (!view) return "(unknown camera)";
  if (!view.cert) return "(untrusted camera)";
  return view.name ?? "(name unreadable)";
}

// ---------------------------------------------------------------------------- sign-in

function showAuth(message) {
  nav.hidden = true;
  fill(nav);
  const status = h("p", { id: "auth-status", role: "alert" }, message || "");
  const totpRow = h("div", { hidden: true }, field("Authenticator code", { id: "login-totp", inputmode: "numeric", autocomplete: "one-time-code" }));
  const loginButton = h("button", { class: "primary", type: "submit", id: "login-submit" }, "Sign in");
  const loginForm = h(
    "form",
    { class: "panel", id: "login-form", "aria-labelledby": "login-title" },
    h("h2", { id: "login-title" }, "Sign in"),
    h("p", { class: "muted", id: "login-note" }, "This tab stays signed in until you close it or log out."),
    field("Email", { id: "login-email", type: "email", autocomplete: "username", required: true }),
    field("Password", { id: "login-password", type: "password", autocomplete: "current-password", required: true }),
    totpRow,
    h("div", { class: "row" }, loginButton),
  );
  loginForm.addEventListener(
    "submit",
    busy(loginButton, async () => {
      status.textContent = "Unlocking your keys…";
      const email = loginForm.querySelector("#login-email").value;
      const password = loginForm.querySelector("#login-password").value;
      const totp = totpRow.hidden ? null : loginForm.querySelector("#login-totp").value;
      try {
        const session = await client.login(api, email, password, totp);
        await enter(session);
      } catch (e) {
        if (e instanceof ApiError && e.code === "second_factor_required") {
          totpRow.hidden = false;
          status.textContent = "Enter the code from your authenticator app (or a recovery code).";
          loginForm.querySelector("#login-totp").focus();
        } else {
          status.textContent = errorText(e);
        }
      }
    }),
  );

  const signupButton = h("button", { class: "primary", type: "submit", id: "signup-submit" }, "Create account");
  const signupForm = h(
    "form",
    { class: "panel", id: "signup-form", "aria-labelledby": "signup-title" },
    h("h2", { id: "signup-title" }, "Create an account"),
    h("p", { class: "muted" }, "Your keys are made in this browser. The server receives only public keys and your private keys sealed under your password."),
    field("Email", { id: "signup-email", type: "email", autocomplete: "username", required: true }),
    field("Password", { id: "signup-password", type: "password", autocomplete: "new-password", required: true, minlength: 8 }),
    field("Password again", { id: "signup-password2", type: "password", autocomplete: "new-password", required: true }),
    h("div", { class: "row" }, signupButton),
  );
  signupForm.addEventListener(
    "submit",
    busy(signupButton, async () => {
      const email = signupForm.querySelector("#signup-email").value;
      const password = signupForm.querySelector("#signup-password").value;
      if (password !== signupForm.querySelector("#signup-password2").value) {
        status.textContent = "The two passwords differ.";
        return;
      }
      status.textContent = "Making your keys…";
      try {
        const recovery = await client.signup(api, email, password);
        const session = await client.login(api, email, password);
        showRecovery(session, recovery);
      } catch (e) {
        status.textContent = errorText(e);
      }
    }),
  );
  fill(main, h("div", { class: "auth" }, status, loginForm, signupForm));
  loginForm.querySelector("#login-email").focus();
}

function showRecovery(session, recovery) {
  const go = h("button", { class: "primary", id: "recovery-done", onclick: () => enter(session) }, "I have written it down");
  fill(
    main,
    h(
      "section",
      { class: "panel auth", "aria-labelledby": "recovery-title" },
      h("h2", { id: "recovery-title" }, "Your recovery key"),
      h("p", {}, "Write this down and keep it safe. It is shown only now. If you forget your password, it is the only way back to your cameras."),
      h("p", { class: "code", id: "recovery-key" }, recovery),
      go,
    ),
  );
  go.focus();
}

async function enter(session) {
  app.session = session;
  nav.hidden = false;
  await refreshCameras();
  client.rotatePending(session, app.cameras);
  startLive();
  show(app.tab);
}

/** Resumes the session this tab kept, if the server still knows it; else the sign-in form. */
async function start() {
  let session;
  try {
    session = await client.resume(api);
  } catch (e) {
    if (e instanceof ApiError && e.code !== "unauthenticated") return showRetry(e);
    return signedOut(e instanceof ApiError ? SESSION_ENDED : errorText(e));
  }
  if (!session) return showAuth();
  try {
    await enter(session);
  } catch (e) {
    if (app.session) showRetry(e);
  }
}

/** The server could not confirm the kept session just now: it stays kept for another try. */
function showRetry(e) {
  app.session = null;
  nav.hidden = true;
  fill(nav);
  const again = h("button", { type: "button", class: "primary", id: "resume-retry" }, "Try again");
  again.addEventListener("click", busy(again, start));
  fill(
    main,
    h(
      "section",
      { class: "panel auth" },
      h("p", { role: "alert" }, errorText(e)),
      h("div", { class: "row" }, again, h("button", { type: "button", onclick: () => signedOut() }, "Sign in again")),
    ),
  );
  again.focus();
}

function signedOut(message) {
  client.forget();
  for (const dialog of document.querySelectorAll("dialog")) dialog.close();
  app.follower?.stop();
  app.follower = null;
  app.session = null;
  app.cameras = [];
  app.claim = null;
  api.token = null;
  showAuth(message);
}

// ---------------------------------------------------------------------------- shell

function show(tab) {
  app.tab = tab;
  app.onLive = null;
  fill(
    nav,
    TABS.map(([id, label]) =>
      h("button", { type: "button", id: `tab-${id}`, "aria-current": id === tab ? "page" : false, onclick: () => show(id) }, label),
    ),
  );
  const views = { events: eventsView, cameras: camerasView, sharing: sharingView, account: accountView };
  const section = h("section", { "aria-labelledby": "view-title" });
  fill(main, section);
  views[tab](section).catch((e) => {
    if (!(e instanceof ApiError && e.code === "unauthenticated")) section.append(h("p", { class: "error", role: "alert" }, errorText(e)));
  });
}

/** Shows `tab` again after a change, unless the user has moved on to another tab. */
function rerender(tab) {
  if (app.session && app.tab === tab) show(tab);
}

async function refreshCameras() {
  app.cameras = await client.cameras(app.session);
}

const cameraById = (id) => app.cameras.find((v) => v.info.camera_id === id);

function startLive() {
  app.follower?.stop();
  app.liveState = "connecting";
  app.follower = api.follow(
    async (info) => {
      if (!cameraById(info.camera_id)) await refreshCameras().catch(() => {});
      const view = cameraById(info.camera_id);
      if (view) view.info.last_event_at = info.started_at;
      announce(`New ${info.kind} event on ${cameraName(view)}`);
      app.onLive?.(info);
    },
    (state) => {
      app.liveState = state;
      const el = document.getElementById("live-state");
      if (el) el.textContent = liveLabel(state);
    },
  );
}

function liveLabel(state) {
  return (
    {
      live: "Live: new events appear as they arrive.",
      connecting: "Connecting to live events…",
      reconnecting: "Live events interrupted; reconnecting. Some events may have been missed: refresh to see them.",
      lagged: "Some live events were missed; refresh to see them.",
      malformed: "The server sent something that is not an event.",
    }[state] || ""
  );
}

// ---------------------------------------------------------------------------- events

/** Newest-first pages merged across cameras, each camera followed by its own cursor. */
class Feed {
  constructor(views, kind) {
    this.kind = kind;
    this.sources = views.map((view) => ({ view, cursor: undefined, done: false, buffer: [] }));
  }

  get exhausted() {
    return this.sources.every((s) => s.done && s.buffer.length === 0);
  }

  async next(n) {
    await Promise.all(
      this.sources.map(async (s) => {
        while (!s.done && s.buffer.length < n) {
          const page = await api.get(`/v1/cameras/${s.view.info.camera_id}/events`, { kind: this.kind, before: s.cursor, limit: n });
          s.buffer.push(...page.events);
          if (page.next_cursor && page.events.length) s.cursor = page.next_cursor;
          else s.done = true;
        }
      }),
    );
    const out = [];
    while (out.length < n) {
      let best = null;
      for (const s of this.sources) {
        if (s.buffer.length && (!best || newer(s.buffer[0], best.buffer[0]))) best = s;
      }
      if (!best) break;
      out.push({ view: best.view, info: best.buffer.shift() });
    }
    return out;
  }
}

function newer(a, b) {
  const ta = Date.parse(a.started_at);
  const tb = Date.parse(b.started_at);
  return ta !== tb ? ta > tb : a.event_id > b.event_id;
}

async function eventsView(section) {
  const session = app.session;
  const cameraSelect = h("select", { id: "filter-camera" }, h("option", { value: "" }, "All cameras"), app.cameras.map((v) => h("option", { value: v.info.camera_id }, cameraName(v))));
  const kindSelect = h("select", { id: "filter-kind" }, h("option", { value: "" }, "All kinds"), KINDS.map((k) => h("option", { value: k }, k)));
  const refresh = h("button", { type: "button", id: "events-refresh" }, "Refresh");
  const timelines = h("div", { id: "timelines" });
  const list = h("div", { id: "event-list" });
  const more = h("button", { type: "button", id: "events-more" }, "Load older events");
  const end = h("p", { class: "muted", id: "events-end", hidden: true }, "No more events.");
  fill(
    section,
    h("h2", { id: "view-title" }, "Events"),
    h("p", { id: "live-state", class: "muted", role: "status" }, liveLabel(app.liveState)),
    h(
      "div",
      { class: "filters" },
      h("div", {}, h("label", { for: "filter-camera" }, "Camera"), cameraSelect),
      h("div", {}, h("label", { for: "filter-kind" }, "Kind"), kindSelect),
      refresh,
    ),
    h("h3", {}, "Last 24 hours"),
    timelines,
    h("h3", {}, "All events"),
    list,
    h("div", { class: "row" }, more, end),
  );

  const days = new Map();
  let feed = null;

  const shown = (info) => list.querySelector(`[data-camera-id="${CSS.escape(info.camera_id)}"][data-event-id="${CSS.escape(info.event_id)}"]`);
  const selected = () => app.cameras.filter((v) => !cameraSelect.value || v.info.camera_id === cameraSelect.value);

  function daySection(t, atTop) {
    const key = dayKey(t);
    if (!days.has(key)) {
      const grid = h("div", { class: "grid" });
      const sec = h("section", { class: "day", "aria-label": fmtDay(t) }, h("h4", {}, fmtDay(t)), grid);
      if (atTop) list.prepend(sec);
      else list.append(sec);
      days.set(key, grid);
    }
    return days.get(key);
  }

  async function loadMore() {
    const current = feed;
    if (!current || current.busy) return;
    if (current.exhausted) {
      list.setAttribute("aria-busy", "false");
      more.hidden = true;
      end.hidden = false;
      return;
    }
    current.busy = true;
    more.disabled = true;
    list.setAttribute("aria-busy", "true");
    let loaded = false;
    try {
      const items = await current.next(24);
      for (const { view, info } of current === feed ? items : []) {
        if (!shown(info)) daySection(info.started_at, false).append(eventCard(session, view, info));
      }
      loaded = true;
    } catch (e) {
      if (current === feed) list.append(h("p", { class: "error", role: "alert" }, errorText(e)));
    } finally {
      current.busy = false;
    }
    if (current !== feed) return;
    list.setAttribute("aria-busy", "false");
    more.disabled = false;
    more.hidden = current.exhausted;
    end.hidden = !current.exhausted;
    // The observer only reports changes: keep filling while the button is still in view.
    if (loaded && !current.exhausted && more.getBoundingClientRect().top < window.innerHeight) setTimeout(loadMore, 0);
  }

  let generation = 0;
  async function reload() {
    const mine = ++generation;
    list.setAttribute("aria-busy", "true");
    await refreshCameras();
    if (mine !== generation) return; // a newer reload (another filter) has started
    const keep = cameraSelect.value;
    fill(cameraSelect, h("option", { value: "" }, "All cameras"), app.cameras.map((v) => h("option", { value: v.info.camera_id }, cameraName(v))));
    cameraSelect.value = app.cameras.some((v) => v.info.camera_id === keep) ? keep : "";
    days.clear();
    fill(list);
    feed = new Feed(selected(), kindSelect.value || undefined);
    if (!app.cameras.length) list.append(h("p", { class: "muted", id: "no-cameras" }, "No cameras yet. Pair one on the Cameras tab, or accept an invitation on the Sharing tab."));
    renderTimelines(session, timelines, selected(), kindSelect.value);
    await loadMore();
  }

  more.addEventListener("click", loadMore);
  refresh.addEventListener("click", busy(refresh, reload));
  cameraSelect.addEventListener("change", reload);
  kindSelect.addEventListener("change", reload);
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) loadMore();
  });
  observer.observe(more);

  app.onLive = (info) => {
    const view = cameraById(info.camera_id);
    if (!view || (cameraSelect.value && cameraSelect.value !== info.camera_id) || (kindSelect.value && kindSelect.value !== info.kind)) return;
    if (shown(info)) return;
    document.getElementById("no-cameras")?.remove();
    const card = eventCard(session, view, info);
    card.classList.add("new");
    daySection(info.started_at, true).prepend(card);
    const line = timelines.querySelector(`[data-timeline="${CSS.escape(info.camera_id)}"]`);
    line?.addEvent?.(info);
  };
  await reload();
}

/** One event: a thumbnail once everything verified and decrypted, else an error card. */
function eventCard(session, view, info) {
  const title = h("strong", {}, cameraName(view));
  const meta = h("span", { class: "meta" }, `${info.kind} · ${fmtTime(info.started_at)}`);
  const card = h("article", { class: "card", dataset: { eventId: info.event_id, cameraId: info.camera_id }, "aria-label": `${info.kind} event` });
  let manifest;
  try {
    manifest = client.verifyEvent(view, info);
  } catch (e) {
    return errorCard(card, title, meta, e);
  }
  const img = h("img", { alt: `${info.kind} on ${cameraName(view)} at ${fmtTime(info.started_at)}`, hidden: true });
  const open = h("button", { type: "button", class: "thumb-btn", "aria-label": `Play ${info.kind} clip from ${fmtDateTime(info.started_at)}`, onclick: () => openPlayer(session, view, manifest) }, img);
  const status = h("span", { class: "meta" }, "Decrypting…");
  fill(card, open, title, meta, status, h("button", { type: "button", class: "play", onclick: () => openPlayer(session, view, manifest) }, "Play clip"));
  client
    .openMedia(session, manifest, "thumb")
    .then((bytes) => {
      img.src = URL.createObjectURL(new Blob([bytes], { type: client.mediaType(bytes, "application/octet-stream") }));
      img.hidden = false;
      status.remove();
      card.classList.add("verified");
    })
    .catch((e) => errorCard(card, title, meta, e));
  return card;
}

function errorCard(card, title, meta, e) {
  card.classList.add("bad");
  card.classList.remove("verified");
  fill(card, title, meta, h("p", { class: "error" }, "This event cannot be shown: ", errorText(e)));
  return card;
}

/** A 24-hour bar per camera, with a marker per event and a slider to scrub through them. */
function renderTimelines(session, container, views, kind) {
  fill(container);
  const end = Date.now();
  const start = end - 24 * 3600 * 1000;
  for (const view of views) {
    if (!view.cert) continue;
    const bar = h("div", { class: "timeline", role: "group", "aria-label": `Events of ${cameraName(view)} in the last 24 hours` });
    const scrub = h("input", { type: "range", class: "scrub", min: 0, max: 1440, value: 1440, "aria-label": `Scrub the last 24 hours of ${cameraName(view)}` });
    const preview = h("div", { class: "row preview" });
    const block = h(
      "div",
      { class: "panel", dataset: { timeline: view.info.camera_id } },
      h("strong", {}, cameraName(view)),
      bar,
      h("div", { class: "timeline-scale" }, h("span", {}, fmtTime(start)), h("span", {}, "now")),
      scrub,
      preview,
    );
    container.append(block);
    const events = [];
    let selected = null;
    const place = (info) => {
      let manifest;
      try {
        manifest = client.verifyEvent(view, info);
      } catch {
        return;
      }
      const at = (Date.parse(info.started_at) - start) / (end - start);
      if (at < 0 || at > 1.02) return;
      const marker = h("button", {
        type: "button",
        class: `marker ${info.kind}`,
        "aria-label": `${info.kind} at ${fmtTime(info.started_at)}`,
        title: `${info.kind} at ${fmtTime(info.started_at)}`,
        onclick: () => openPlayer(session, view, manifest),
        onfocus: () => select(entry),
      });
      marker.style.left = `${Math.min(at, 1) * 100}%`;
      const entry = { info, manifest, marker, at };
      events.push(entry);
      bar.append(marker);
    };
    const select = async (entry) => {
      if (selected === entry) return;
      selected?.marker.classList.remove("selected");
      selected = entry;
      entry.marker.classList.add("selected");
      const img = h("img", { alt: `${entry.info.kind} at ${fmtTime(entry.info.started_at)}`, width: 160, height: 90 });
      fill(preview, img, h("span", {}, `${entry.info.kind} · ${fmtTime(entry.info.started_at)} `), h("button", { type: "button", onclick: () => openPlayer(session, view, entry.manifest) }, "Play"));
      try {
        const bytes = await client.openMedia(session, entry.manifest, "thumb");
        if (selected === entry) img.src = URL.createObjectURL(new Blob([bytes], { type: client.mediaType(bytes, "image/bmp") }));
      } catch (e) {
        fill(preview, h("p", { class: "error" }, "This event cannot be shown: ", errorText(e)));
      }
    };
    scrub.addEventListener("input", () => {
      const at = Number(scrub.value) / 1440;
      let best = null;
      for (const e of events) if (!best || Math.abs(e.at - at) < Math.abs(best.at - at)) best = e;
      if (best) select(best);
    });
    block.addEvent = place;
    (async () => {
      let before;
      for (let page = 0; page < 5; page++) {
        const answer = await api.get(`/v1/cameras/${view.info.camera_id}/events`, { kind: kind || undefined, since: new Date(start).toISOString(), before, limit: 200 });
        answer.events.forEach(place);
        if (!answer.next_cursor || !answer.events.length) break;
        before = answer.next_cursor;
      }
      if (!events.length) preview.append(h("span", { class: "muted" }, "No events in the last 24 hours."));
    })().catch((e) => preview.append(h("span", { class: "error" }, errorText(e))));
  }
}

/** The clip player: the clip is verified, decrypted here and played from a blob URL. */
function openPlayer(session, view, manifest) {
  const status = h("p", { id: "player-status", role: "status" }, "Fetching and decrypting the clip…");
  const video = h("video", { id: "player-video", controls: true, playsinline: true, preload: "auto" });
  const close = h("button", { type: "button", id: "player-close" }, "Close");
  const body = h("div", {});
  const dialog = h(
    "dialog",
    { "aria-labelledby": "player-title" },
    h("h2", { id: "player-title" }, `${cameraName(view)}: ${manifest.kind}, ${fmtDateTime(manifest.started_at)}`),
    body,
    status,
    h("div", { class: "row" }, close),
  );
  let url = null;
  const done = () => {
    video.pause();
    if (url) URL.revokeObjectURL(url);
    dialog.remove();
  };
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", done);
  document.body.append(dialog);
  dialog.showModal();

  const load = async () => {
    try {
      const bytes = await client.openMedia(session, manifest, "clip");
      url = URL.createObjectURL(new Blob([bytes], { type: client.mediaType(bytes, "video/mp4") }));
      fill(body, video);
      video.src = url;
      status.textContent = `${Math.round(manifest.duration_ms / 100) / 10} s clip, verified and decrypted in this browser.`;
      video.focus();
    } catch (e) {
      if (e instanceof ApiError && e.code === "step_up_required") stepUpForm(session, body, status, load, "Verified. Fetching the clip…");
      else {
        status.textContent = "";
        fill(body, h("p", { class: "error", role: "alert" }, "This clip cannot be played: ", errorText(e)));
      }
    }
  };
  load();
}

function stepUpForm(session, body, status, retry, resumed) {
  status.textContent = "";
  const button = h("button", { type: "submit", class: "primary", id: "stepup-submit" }, "Verify");
  const note = h("p", { role: "alert" });
  const form = h(
    "form",
    { id: "stepup-form" },
    h("p", {}, "Your account asks you to verify again before video plays on this session."),
    field("Password", { id: "stepup-password", type: "password", autocomplete: "current-password" }),
    field("…or authenticator code", { id: "stepup-totp", inputmode: "numeric", autocomplete: "one-time-code" }),
    note,
    button,
  );
  form.addEventListener(
    "submit",
    busy(button, async () => {
      try {
        await client.stepUp(session, form.querySelector("#stepup-password").value, form.querySelector("#stepup-totp").value);
        fill(body);
        status.textContent = resumed;
        await retry();
      } catch (e) {
        note.textContent = errorText(e);
      }
    }),
  );
  fill(body, form);
  form.querySelector("#stepup-password").focus();
}

const LIVE_NOTE = "Live: every frame is verified and decrypted in this browser.";

/**
 * The live view: the camera streams while it is open; each segment is checked against the
 * camera's certificate and what came before, decrypted here and shown from a blob URL.
 */
function openLive(session, view) {
  const badge = h("span", { id: "live-badge", hidden: true }, "LIVE");
  const img = h("img", { id: "live-frame", alt: `Live view of ${cameraName(view)}`, hidden: true });
  const age = h("span", { id: "live-age" });
  const count = h("span", { id: "live-count" }, "0 frames");
  const status = h("p", { id: "live-status", role: "status" }, "Asking the camera to stream…");
  const warning = h("p", { id: "live-warning", class: "error", role: "alert", hidden: true });
  const close = h("button", { type: "button", id: "live-close" }, "Close");
  const prompt = h("div", {});
  const dialog = h(
    "dialog",
    { id: "live-view", "aria-labelledby": "live-title" },
    h("h2", { id: "live-title", class: "row" }, badge, cameraName(view)),
    prompt,
    img,
    h("p", { class: "row muted" }, age, count),
    status,
    warning,
    h("div", { class: "row" }, close),
  );
  const controller = new AbortController();
  const check = new client.LiveCheck(view);
  let url = null;
  let capturedAt = null;
  let frames = 0;
  let queue = Promise.resolve();
  let retried = false;
  const showAge = () => {
    if (capturedAt !== null) age.textContent = `${(Math.max(0, Date.now() - capturedAt) / 1000).toFixed(1)} s ago`;
  };
  const tick = setInterval(showAge, 100);
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    controller.abort();
    clearInterval(tick);
    if (url) URL.revokeObjectURL(url);
    dialog.remove();
  });
  document.body.append(dialog);
  dialog.showModal();

  const show = async (data) => {
    let checked, bytes;
    try {
      checked = check.accept(JSON.parse(data));
      bytes = await client.openSegment(session, checked.segment, checked.ciphertext);
    } catch (e) {
      warning.hidden = false;
      warning.textContent = `A live segment did not verify: ${errorText(e)}`;
      return;
    }
    if (controller.signal.aborted) return;
    if (checked.segment.media_type === "video/webm") {
      status.textContent = "This camera streams video, which is unsupported in this view.";
      return;
    }
    const previous = url;
    url = URL.createObjectURL(new Blob([bytes], { type: checked.segment.media_type }));
    img.src = url;
    if (previous) URL.revokeObjectURL(previous);
    capturedAt = checked.capturedAt;
    showAge();
    frames += 1;
    count.textContent = `${frames} frame${frames === 1 ? "" : "s"}`;
    if (img.hidden) status.textContent = LIVE_NOTE;
    img.hidden = false;
    badge.hidden = false;
  };

  const watch = async () => {
    let failed = null;
    try {
      await session.api.stream(
        `/v1/cameras/${view.info.camera_id}/live`,
        controller.signal,
        () => {
          status.textContent = img.hidden ? "Waiting for the camera…" : LIVE_NOTE;
        },
        (event, data) => {
          if (event === "segment") queue = queue.then(() => show(data));
        },
      );
    } catch (e) {
      if (controller.signal.aborted) return;
      if (e instanceof ApiError && e.code === "step_up_required") return stepUpForm(session, prompt, status, watch, "Verified. Asking the camera to stream…");
      failed = e;
    }
    if (controller.signal.aborted) return;
    badge.hidden = true;
    if (retried || failed?.status === 404) {
      status.textContent = failed && failed.status !== 404 ? `Live view ended: ${errorText(failed)}` : "Live view ended.";
      return;
    }
    retried = true;
    status.textContent = "Live view interrupted; trying again…";
    setTimeout(watch, 3000);
  };
  watch();
}

// ---------------------------------------------------------------------------- cameras

async function camerasView(section) {
  await refreshCameras();
  const session = app.session;
  const claimArea = h("div", { id: "claim-area" });
  const nameInput = h("input", { id: "claim-name", required: true, maxlength: client.MAX_NAME_CHARS });
  const claimButton = h("button", { type: "submit", class: "primary", id: "claim-submit" }, "Make a claim code");
  const claimForm = h("form", { class: "panel", id: "claim-form" }, h("h3", {}, "Pair a new camera"), h("label", { for: "claim-name" }, "Camera name"), h("div", { class: "row" }, nameInput, claimButton), claimArea);
  claimForm.addEventListener(
    "submit",
    busy(claimButton, async () => {
      try {
        const name = client.checkName(nameInput.value);
        app.claim = await client.startClaim(session, name);
        showClaim(claimArea);
      } catch (e) {
        fill(claimArea, h("p", { class: "error", role: "alert" }, errorText(e)));
      }
    }),
  );
  const list = h("div", { class: "grid", id: "camera-list" }, app.cameras.map((v) => cameraCard(session, v)));
  const paired = app.paired ? h("p", { class: "ok", id: "claim-state", role: "status" }, `Paired “${app.paired}”.`) : null;
  app.paired = null;
  fill(
    section,
    h("h2", { id: "view-title" }, "Cameras"),
    paired,
    app.cameras.length ? list : h("p", { class: "muted" }, "No cameras yet."),
    claimForm,
  );
  if (app.claim) showClaim(claimArea);
}

function showClaim(area) {
  const pending = app.claim;
  const qr = qrcode(0, "M");
  qr.addData(pending.code.text);
  qr.make();
  const n = qr.getModuleCount();
  const canvas = h("canvas", { class: "qr", width: (n + 8) * 6, height: (n + 8) * 6, role: "img", "aria-label": "QR code of the claim code" });
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = "#000";
  for (let r = 0; r < n; r++) for (let col = 0; col < n; col++) if (qr.isDark(r, col)) ctx.fillRect((col + 4) * 6, (r + 4) * 6, 6, 6);
  const state = h("p", { id: "claim-state", role: "status" }, "Waiting for the camera…");
  fill(
    area,
    h("p", {}, "Give this code to the camera (type it, or let it scan the QR code). It works once and expires ", fmtDateTime(pending.expiresAt), "."),
    h("p", { class: "code", id: "claim-code" }, pending.code.text),
    canvas,
    h("p", { class: "muted" }, "A simulated camera: closedcircuit camera agent --claim ", pending.code.text, " --state-dir ./camera"),
    state,
  );
  const tick = async () => {
    if (app.claim !== pending || !document.body.contains(state)) return;
    try {
      const result = await client.pollClaim(app.session, pending);
      if (result === "waiting") {
        setTimeout(tick, 1000);
        return;
      }
      app.claim = null;
      if (result === "gone") {
        state.textContent = "The claim expired or was withdrawn. Make a new code.";
        return;
      }
      app.paired = pending.name;
      announce(`Paired ${pending.name}`);
      rerender("cameras");
    } catch (e) {
      state.textContent = errorText(e);
      if (!(e instanceof ApiError) || e.code === "network" || e.code === "overloaded") setTimeout(tick, 2000);
    }
  };
  tick();
}

function cameraCard(session, view) {
  const info = view.info;
  const card = h("article", { class: `card${view.cert ? "" : " bad"}`, dataset: { cameraId: info.camera_id } });
  const extra = h("div", {});
  const actions = h("div", { class: "row" });
  if (view.cert) actions.append(h("button", { type: "button", class: "watch", "aria-label": `Live view of ${cameraName(view)}`, onclick: () => openLive(session, view) }, "Live"));
  if (view.cert && (info.role === "owner" || info.role === "admin")) {
    actions.append(
      h("button", {
        type: "button",
        class: "rename",
        onclick: () => {
          const input = h("input", { "aria-label": "New name", value: view.name ?? "", maxlength: client.MAX_NAME_CHARS });
          const save = h("button", { type: "submit", class: "primary" }, "Save");
          const note = h("p", { role: "alert" });
          const form = h("form", { class: "rename-form" }, h("div", { class: "row" }, input, save), note);
          form.addEventListener(
            "submit",
            busy(save, async () => {
              try {
                await client.rename(session, view, input.value);
                rerender("cameras");
              } catch (e) {
                note.textContent = errorText(e);
              }
            }),
          );
          fill(extra, form);
          input.focus();
        },
      }, "Rename"),
    );
  }
  actions.append(h("button", { type: "button", class: "access", onclick: () => accessLog(session, view, extra) }, "Access log"));
  if (info.role === "owner") {
    actions.append(
      h("button", {
        type: "button",
        class: "danger remove",
        onclick: () => {
          const yes = h("button", { type: "button", class: "danger", id: "remove-confirm" }, "Remove camera and its events");
          yes.addEventListener(
            "click",
            busy(yes, async () => {
              try {
                await session.api.del(`/v1/cameras/${info.camera_id}`);
                rerender("cameras");
              } catch (e) {
                extra.append(h("p", { class: "error", role: "alert" }, errorText(e)));
              }
            }),
          );
          fill(extra, h("p", {}, "Removing the camera deletes its stored events and ends every share of it. The camera will need a new claim code to pair again."), h("div", { class: "row" }, yes, h("button", { type: "button", onclick: () => fill(extra) }, "Cancel")));
          yes.focus();
        },
      }, "Remove"),
    );
  }
  fill(
    card,
    h("strong", { class: "camera-name" }, cameraName(view)),
    view.error ? h("p", { class: "error" }, view.error) : null,
    h("span", { class: info.online ? "status-online" : "status-offline" }, info.online ? "Online" : "Offline"),
    h("span", { class: "meta" }, "Last event: ", fmtDateTime(info.last_event_at)),
    h("span", { class: "meta" }, info.role === "owner" ? "You own this camera" : `Shared with you (${info.role})`),
    actions,
    extra,
  );
  return card;
}

async function accessLog(session, view, area) {
  fill(area, h("p", {}, "Loading the access log…"));
  try {
    const entries = await session.api.get(`/v1/cameras/${view.info.camera_id}/access-log`, { limit: 200 });
    fill(
      area,
      h("h4", {}, "Who read this camera's data"),
      entries.length
        ? h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              { class: "access-log" },
              h("thead", {}, h("tr", {}, ["When", "Who", "What", "From"].map((t) => h("th", { scope: "col" }, t)))),
              h("tbody", {}, entries.map((e) => h("tr", {}, h("td", {}, fmtDateTime(e.at)), h("td", {}, e.email ?? e.user_id), h("td", {}, e.object, e.event_id ? ` ${e.event_id.slice(-8)}` : ""), h("td", {}, e.ip)))),
            ),
          )
        : h("p", { class: "muted" }, "Nobody has read anything yet."),
    );
  } catch (e) {
    fill(area, h("p", { class: "error", role: "alert" }, errorText(e)));
  }
}

// ---------------------------------------------------------------------------- sharing

const REVOKE_MEANS =
  "Revoking ends their access now and moves the camera to a new key: events recorded from now on are unreadable to them. What they already saw or saved cannot be recalled.";

async function sharingView(section) {
  const session = app.session;
  await refreshCameras();
  const invitations = await session.api.get("/v1/invitations");
  const inbox = h(
    "div",
    { class: "panel", id: "invitations" },
    h("h3", {}, "Invitations for you"),
    invitations.length
      ? invitations.map((inv) => {
          const accept = h("button", { type: "button", class: "primary accept" }, "Accept");
          const note = h("p", { role: "alert" });
          accept.addEventListener(
            "click",
            busy(accept, async () => {
              try {
                await client.acceptInvitation(session, inv);
                await refreshCameras();
                rerender("sharing");
              } catch (e) {
                note.textContent = errorText(e);
              }
            }),
          );
          return h(
            "div",
            { class: "invitation", dataset: { cameraId: inv.camera_id } },
            h("p", {}, inv.inviter.email, " invites you to a camera as ", inv.role, "."),
            h("p", {}, "Verification phrase (compare it with them in person or on a call): ", h("span", { class: "phrase" }, client.phraseWith(session, inv.inviter))),
            accept,
            note,
          );
        })
      : h("p", { class: "muted" }, "None."),
  );
  const owned = app.cameras.filter((v) => v.cert && (v.info.role === "owner" || v.info.role === "admin"));
  const shared = app.cameras.filter((v) => v.info.role !== "owner");
  fill(
    section,
    h("h2", { id: "view-title" }, "Sharing"),
    inbox,
    owned.map((v) => shareBlock(session, v)),
    h("div", { class: "panel" }, h("h3", {}, "Shared with you"), shared.length ? h("ul", {}, shared.map((v) => h("li", {}, cameraName(v), ` (${v.info.role})`))) : h("p", { class: "muted" }, "Nothing.")),
  );
}

function shareBlock(session, view) {
  const camera = view.info.camera_id;
  const members = h("div", { class: "members" });
  const email = h("input", { type: "email", id: `invite-email-${camera}`, class: "invite-email", required: true });
  const role = h("select", { id: `invite-role-${camera}` }, h("option", { value: "viewer" }, "viewer"), h("option", { value: "admin" }, "admin"));
  const history = h("input", { type: "checkbox", id: `invite-history-${camera}` });
  const lookup = h("button", { type: "submit", class: "primary invite-lookup" }, "Invite");
  const step = h("div", { class: "invite-step" });
  const form = h(
    "form",
    { class: "invite-form" },
    h("label", { for: email.id }, "Email of the person to invite"),
    h("div", { class: "row" }, email, h("label", { for: role.id, class: "visually-hidden" }, "Role"), role),
    h("div", { class: "row" }, history, h("label", { for: history.id }, "Also share past events")),
    lookup,
    step,
  );
  form.addEventListener(
    "submit",
    busy(lookup, async () => {
      try {
        const user = await session.api.get("/v1/users/lookup", { email: email.value.trim() });
        const confirm = h("button", { type: "button", class: "primary invite-confirm" }, "Send invitation");
        confirm.addEventListener(
          "click",
          busy(confirm, async () => {
            try {
              await client.invite(session, camera, user, role.value, history.checked);
              fill(step, h("p", { class: "ok", role: "status" }, "Invitation sent to ", user.email, "."));
              await renderMembers(session, view, members);
            } catch (e) {
              step.append(h("p", { class: "error", role: "alert" }, errorText(e)));
            }
          }),
        );
        fill(
          step,
          h("p", {}, "Compare this verification phrase with ", user.email, " (in person or on a call) before you trust the share:"),
          h("p", { class: "phrase invite-phrase" }, client.phraseWith(session, user)),
          confirm,
        );
      } catch (e) {
        fill(step, h("p", { class: "error", role: "alert" }, e instanceof ApiError && e.code === "not_found" ? "No account has that email." : errorText(e)));
      }
    }),
  );
  const block = h("section", { class: "panel share-block", dataset: { cameraId: camera } }, h("h3", {}, cameraName(view)), members, form);
  renderMembers(session, view, members);
  return block;
}

async function renderMembers(session, view, area) {
  const camera = view.info.camera_id;
  try {
    const shares = await session.api.get(`/v1/cameras/${camera}/shares`);
    fill(
      area,
      shares.length
        ? h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              {},
              h("thead", {}, h("tr", {}, ["Person", "Role", "Status", "Verification phrase", ""].map((t) => h("th", { scope: "col" }, t)))),
              h(
                "tbody",
                {},
                shares.map((s) => {
                  if (s.user.user_id === session.userId) {
                    return h("tr", { class: "member" }, h("td", {}, s.user.email, " (you)"), h("td", {}, s.role), h("td", {}, s.status), h("td", {}), h("td", {}));
                  }
                  const revoke = h("button", { type: "button", class: "danger revoke" }, "Revoke");
                  revoke.addEventListener(
                    "click",
                    busy(revoke, async () => {
                      if (!revoke.dataset.armed) {
                        revoke.dataset.armed = "1";
                        revoke.textContent = `Confirm: revoke ${s.user.email}`;
                        revoke.setAttribute("aria-describedby", `revoke-note-${camera}`);
                        return;
                      }
                      try {
                        await client.revoke(session, camera, s.user.user_id);
                        announce(`${s.user.email} no longer has access`);
                        await renderMembers(session, view, area);
                      } catch (e) {
                        area.append(h("p", { class: "error", role: "alert" }, errorText(e)));
                      }
                    }),
                  );
                  return h("tr", { class: "member" }, h("td", {}, s.user.email), h("td", {}, s.role), h("td", {}, s.status), h("td", { class: "phrase" }, client.phraseWith(session, s.user)), h("td", {}, revoke));
                }),
              ),
            ),
          )
        : h("p", { class: "muted" }, "Not shared with anyone."),
      h("p", { class: "muted", id: `revoke-note-${camera}` }, REVOKE_MEANS),
    );
  } catch (e) {
    fill(area, h("p", { class: "error", role: "alert" }, errorText(e)));
  }
}

// ---------------------------------------------------------------------------- account

async function accountView(section) {
  const session = app.session;
  const [sessions, security] = await Promise.all([session.api.get("/v1/sessions"), session.api.get("/v1/me/security")]);
  const stepUp = h("input", { type: "checkbox", id: "require-step-up", checked: security.require_step_up });
  stepUp.addEventListener("change", async () => {
    try {
      await session.api.put("/v1/me/security", { require_step_up: stepUp.checked });
      announce(stepUp.checked ? "Video now plays only after verifying again" : "Video plays without verifying again");
    } catch (e) {
      stepUp.checked = !stepUp.checked;
      section.append(h("p", { class: "error", role: "alert" }, errorText(e)));
    }
  });
  const logout = h("button", { type: "button", id: "logout" }, "Log out");
  const everywhere = h("button", { type: "button", class: "danger", id: "logout-everywhere" }, "Log out everywhere");
  const out = (path) => async () => {
    await session.api.del(path).catch(() => {});
    signedOut("You are logged out.");
  };
  logout.addEventListener("click", busy(logout, out("/v1/sessions/current")));
  everywhere.addEventListener("click", busy(everywhere, out("/v1/sessions")));
  fill(
    section,
    h("h2", { id: "view-title" }, "Account"),
    h(
      "div",
      { class: "panel" },
      h("p", {}, "Signed in as ", h("strong", { id: "account-email" }, session.email)),
      h("p", {}, "Your key fingerprint: ", h("span", { class: "code" }, fingerprint(session.keys.signingPublic))),
      h("div", { class: "row" }, stepUp, h("label", { for: "require-step-up" }, "Ask for my password or a code again before video plays")),
      h("p", { class: "muted" }, "Two-factor login: ", security.totp_enabled ? "on" : "off (turn it on with closedcircuit account 2fa enable)"),
      h("div", { class: "row" }, logout, everywhere),
    ),
    h(
      "div",
      { class: "panel" },
      h("h3", {}, "Sessions"),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { id: "sessions" },
          h("thead", {}, h("tr", {}, ["Client", "From", "Started", "Last seen", ""].map((t) => h("th", { scope: "col" }, t)))),
          h(
            "tbody",
            {},
            sessions.map((s) => {
              const end = s.current
                ? h("span", { class: "muted" }, "this session")
                : h("button", {
                    type: "button",
                    onclick: async () => {
                      await session.api.del(`/v1/sessions/${s.session_id}`).catch(() => {});
                      rerender("account");
                    },
                  }, "End");
              return h("tr", {}, h("td", {}, s.client), h("td", {}, s.ip), h("td", {}, fmtDateTime(s.created_at)), h("td", {}, fmtDateTime(s.last_seen_at)), h("td", {}, end));
            }),
          ),
        ),
      ),
    ),
  );
}

start();

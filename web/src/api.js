// The HTTP API (`/v1`), same origin only. Errors are RFC 9457 problem JSON; their stable
// `code` is what the app reacts to (second_factor_required, step_up_required, ...).

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `request failed (${status})`);
    this.status = status;
    this.code = problem?.code || "http_error";
  }
}

export class Api {
  constructor() {
    this.token = null;
    this.onEnded = null;
  }

  headers(extra = {}) {
    const h = { ...extra };
    if (this.token) h.Authorization = `Bearer ${this.token}`;
    return h;
  }

  /** The ApiError of a failed response; `onEnded()` when the server no longer knows `token`. */
  async failed(response, token) {
    const e = await failure(response);
    if (e.code === "unauthenticated" && token && token === this.token) this.onEnded?.();
    return e;
  }

  async send(method, path, { body, query, raw } = {}) {
    const token = this.token;
    let url = path;
    if (query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") params.set(k, v);
      const qs = params.toString();
      if (qs) url += `?${qs}`;
    }
    const init = { method, headers: this.headers(body !== undefined ? { "Content-Type": "application/json" } : {}), cache: "no-store" };
    if (body !== undefined) init.body = JSON.stringify(body);
    let response;
    try {
      response = await fetch(url, init);
    } catch {
      throw new ApiError(0, { code: "network", title: "The server cannot be reached" });
    }
    if (!response.ok) throw await this.failed(response, token);
    if (raw) return new Uint8Array(await response.arrayBuffer());
    if (response.status === 204) return null;
    const type = response.headers.get("content-type") || "";
    return type.includes("json") ? response.json() : null;
  }

  get = (path, query) => this.send("GET", path, { query });
  post = (path, body) => this.send("POST", path, { body: body ?? {} });
  put = (path, body) => this.send("PUT", path, { body });
  patch = (path, body) => this.send("PATCH", path, { body });
  del = (path) => this.send("DELETE", path);
  bytes = (path) => this.send("GET", path, { raw: true });

  /**
   * Reads the Server-Sent Events at `path` with the bearer token, which EventSource cannot
   * send: `onOpen()` once it is open, then `dispatch(event, data)` per message, until it
   * ends or `signal` aborts. Errors before it opens are ApiErrors, as for `send`.
   */
  async stream(path, signal, onOpen, dispatch) {
    const token = this.token;
    let response;
    try {
      response = await fetch(path, { headers: this.headers({ Accept: "text/event-stream" }), signal, cache: "no-store" });
    } catch (e) {
      if (signal.aborted) throw e;
      throw new ApiError(0, { code: "network", title: "The server cannot be reached" });
    }
    if (!response.ok || !response.body) throw await this.failed(response, token);
    onOpen();
    await readSse(response.body, dispatch);
  }

  /**
   * Follows `/v1/events/stream`. Calls `onEvent(info)` per event; reconnects with backoff
   * until `stop()` is called or the session ends. `onState(text)` reports the connection.
   */
  follow(onEvent, onState) {
    let stopped = false;
    let controller = null;
    let delay = 500;
    const run = async () => {
      while (!stopped) {
        controller = new AbortController();
        try {
          await this.stream(
            "/v1/events/stream",
            controller.signal,
            () => {
              onState("live");
              delay = 500;
            },
            (event, data) => {
              if (event === "event") {
                try {
                  onEvent(JSON.parse(data));
                } catch {
                  onState("malformed");
                }
              } else if (event === "lagged") {
                onState("lagged");
              }
            },
          );
        } catch (e) {
          if (stopped) return;
          if (e.status === 401) return;
        }
        if (stopped) return;
        onState("reconnecting");
        await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random())));
        delay = Math.min(delay * 2, 30000);
      }
    };
    run();
    return {
      stop() {
        stopped = true;
        controller?.abort();
      },
    };
  }
}

/** The ApiError of a failed response, from its problem JSON when it has one. */
async function failure(response) {
  let problem = null;
  try {
    problem = await response.json();
  } catch {
    problem = null;
  }
  return new ApiError(response.status, problem);
}

/** Reads an SSE body, calling `dispatch(event, data)` per message (the standard's rules). */
async function readSse(body, dispatch) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = "";
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    if (buffer.length > 1 << 20) throw new Error("stream line too long");
    let at;
    while ((at = buffer.search(/\r\n|\r|\n/)) >= 0) {
      if (buffer[at] === "\r" && at === buffer.length - 1) break;
      const line = buffer.slice(0, at);
      buffer = buffer.slice(at + (buffer.startsWith("\r\n", at) ? 2 : 1));
      if (line === "") {
        if (data.length) dispatch(event || "message", data.join("\n"));
        event = "";
        data = [];
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? "" : line.slice(colon + 1);
        if (val.startsWith(" ")) val = val.slice(1);
        if (field === "event") event = val;
        else if (field === "data") data.push(val);
      }
    }
  }
}

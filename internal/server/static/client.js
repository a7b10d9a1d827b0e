// Switchyard live updates: a small, dependency-free browser client for the
// hub's topics. Served by every Switchyard server at GET /v1/client.js.
//
//   <script type="module">
//     import {connect} from "/v1/client.js";
//     const live = connect({token: "<subscription token or API key>"});
//     live.subscribe("job.42", (msg) => console.log(msg.event, msg.data));
//   </script>
//
// Loading the module also sets the global Switchyard = {connect}.
//
// It speaks WebSocket (GET /v1/ws) and falls back to Server-Sent Events
// (GET /v1/stream) where WebSocket is missing or does not connect. It keeps
// each topic's last position and, after a disconnect, reconnects with
// exponential backoff and full jitter and resumes every topic from there,
// so that no message is lost or repeated. When the server cannot resume a
// topic (its history no longer reaches back, or another node answered), it
// says so: options.onGap(topic, info) is called, and the application
// should reload that topic's state (fetch the job, say), then carry on
// with the live messages.

const DEFAULT_BACKOFF = { base: 500, max: 30000 };
// After this many WebSocket attempts in a row that never opened, use SSE.
const WS_FAILURES_BEFORE_SSE = 2;

/**
 * connect opens a live connection.
 *
 * options:
 *   url        the Switchyard server's base URL (default: where this module
 *              was loaded from)
 *   token      a subscription token (POST /v1/tokens), an access token or an
 *              API key; or a function returning one (or a promise of one),
 *              called before every (re)connection so that short-lived
 *              tokens can be renewed
 *   tenant     the tenant to act in, for credentials of several tenants
 *   transport  "auto" (default), "websocket" or "sse"
 *   backoff    {base, max} in milliseconds (default {base: 500, max: 30000})
 *   onGap(topic, {since, position})   messages of topic were missed
 *   onStatus(status, detail)          "connecting", "open", "reconnecting"
 *                                     ({delay, code, reason}), "closed"
 *   onError(error)                    an error object from the server
 *                                     ({code, message, topic}) or an Error
 *   WebSocket, EventSource, fetch     implementations to use instead of the
 *                                     globals
 */
export function connect(options = {}) {
  return new Connection(options);
}

class Connection {
  constructor(options) {
    this.opts = options;
    this.base = baseURL(options.url);
    this.backoff = { ...DEFAULT_BACKOFF, ...(options.backoff || {}) };
    this.WS = pick(options, "WebSocket");
    this.ES = pick(options, "EventSource");
    this.fetch = pick(options, "fetch");
    this.topics = new Map(); // topic -> {handlers, position, since, ready, resolve}
    this.acks = new Map(); // request id -> {resolve, reject}
    this.subscribing = new Map(); // subscribe request id -> topics
    this.seq = 0;
    this.attempt = 0;
    this.wsFailures = 0;
    this.closed = false;
    this.ws = null;
    this.es = null;
    this.timer = null;
    this.gen = 0;
    this.transport = this.chooseTransport();
    this.open();
  }

  /** subscribe calls handler with every message of topic; since resumes
   * from a position ({offset, epoch}) saved earlier. It returns
   * {ready, unsubscribe}: ready resolves with the server's "subscribed"
   * answer, or with null if the server refused the topic (onError says
   * why, and the topic is dropped). */
  subscribe(topic, handler, { since } = {}) {
    let t = this.topics.get(topic);
    const fresh = !t;
    if (fresh) {
      t = { handlers: new Set(), position: since || null };
      this.newReady(t);
      this.topics.set(topic, t);
    }
    t.handlers.add(handler);
    if (fresh) this.topicsChanged([topic], []);
    return {
      ready: t.ready,
      unsubscribe: () => {
        t.handlers.delete(handler);
        if (t.handlers.size === 0 && this.topics.get(topic) === t) {
          this.topics.delete(topic);
          this.topicsChanged([], [topic]);
        }
      },
    };
  }

  /** position returns topic's last position ({offset, epoch}), to resume
   * from later with subscribe(topic, handler, {since}). */
  position(topic) {
    const t = this.topics.get(topic);
    return t && t.position ? { ...t.position } : null;
  }

  /** publish sends a message to a user topic (operators only); it resolves
   * once the server has published it. */
  publish(topic, event, data) {
    if (this.transport === "websocket" && this.ws && this.ws.readyState === 1) {
      const id = this.nextID();
      return new Promise((resolve, reject) => {
        this.acks.set(id, { resolve, reject });
        this.send({ type: "publish", id, topic, event, data });
      });
    }
    return this.token().then((token) =>
      this.fetch(this.base + "/v1/topics/" + encodeURIComponent(topic) + "/publish", {
        method: "POST",
        headers: this.headers(token),
        body: JSON.stringify({ event, data }),
      }).then(async (res) => {
        if (!res.ok) {
          const body = await res.json().catch(() => ({}));
          throw serverError(body.error || { code: "unavailable", message: res.statusText });
        }
      }),
    );
  }

  /** close ends the connection for good. */
  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.dropWS(1000, "client closed");
    this.dropES();
    for (const { reject } of this.acks.values()) reject(new Error("connection closed"));
    this.acks.clear();
    this.status("closed");
  }

  // Internals.

  chooseTransport() {
    const want = this.opts.transport || "auto";
    if (want === "sse" || (want === "auto" && !this.WS)) return "sse";
    return "websocket";
  }

  newReady(t) {
    t.ready = new Promise((resolve) => (t.resolve = resolve));
  }

  nextID() {
    return "c" + ++this.seq;
  }

  token() {
    const tok = this.opts.token;
    return Promise.resolve(typeof tok === "function" ? tok() : tok);
  }

  headers(token) {
    const h = { "Content-Type": "application/json" };
    if (token) h.Authorization = "Bearer " + token;
    if (this.opts.tenant) h["Switchyard-Tenant"] = this.opts.tenant;
    return h;
  }

  query(token, extra) {
    const q = new URLSearchParams(extra);
    if (token) q.set("token", token);
    if (this.opts.tenant) q.set("tenant", this.opts.tenant);
    return q.toString();
  }

  status(s, detail) {
    if (this.opts.onStatus) this.opts.onStatus(s, detail);
  }

  error(e) {
    if (this.opts.onError) this.opts.onError(e);
  }

  open() {
    if (this.closed) return;
    // A later open (the topics of an event stream changed) supersedes
    // this one while it waits for its token.
    const gen = ++this.gen;
    this.status("connecting");
    this.token().then(
      (token) => {
        if (this.closed || gen !== this.gen) return;
        if (this.transport === "websocket") this.openWS(token);
        else this.openES(token);
      },
      (err) => {
        if (this.closed || gen !== this.gen) return;
        this.error(err);
        this.retry({ reason: "no token" });
      },
    );
  }

  // retry schedules the next attempt: exponential backoff, full jitter.
  retry(detail = {}) {
    if (this.closed) return;
    clearTimeout(this.timer);
    const cap = Math.min(this.backoff.max, this.backoff.base * 2 ** this.attempt);
    const delay = Math.floor(Math.random() * cap);
    this.attempt++;
    this.status("reconnecting", { delay, ...detail });
    this.timer = setTimeout(() => this.open(), delay);
  }

  since() {
    const since = {};
    for (const [topic, t] of this.topics) if (t.position) since[topic] = t.position;
    return since;
  }

  topicsChanged(added, removed) {
    if (this.transport === "websocket") {
      if (!this.ws || this.ws.readyState !== 1) return; // sent on open
      if (added.length) this.subscribeWS(added);
      if (removed.length) this.send({ type: "unsubscribe", id: this.nextID(), topics: removed });
      return;
    }
    // An event stream's topics are fixed: open another.
    this.dropES();
    clearTimeout(this.timer);
    this.open();
  }

  // WebSocket.

  openWS(token) {
    const url = this.base.replace(/^http/, "ws") + "/v1/ws?" + this.query(token);
    let ws;
    try {
      ws = new this.WS(url);
    } catch (err) {
      this.wsFailed(err);
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.attempt = 0;
      this.wsFailures = 0;
      this.status("open", { transport: "websocket" });
      if (this.topics.size) this.subscribeWS([...this.topics.keys()]);
    };
    ws.onmessage = (ev) => {
      for (const line of String(ev.data).split("\n")) {
        if (line) this.dispatch(JSON.parse(line));
      }
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.subscribing.clear();
      for (const { reject } of this.acks.values()) reject(new Error("connection lost"));
      this.acks.clear();
      if (this.closed) return;
      if (!opened) {
        this.wsFailed(new Error("WebSocket did not connect"));
        return;
      }
      this.retry({ code: ev.code, reason: ev.reason });
    };
    ws.onerror = () => {}; // onclose follows
  }

  wsFailed(err) {
    this.wsFailures++;
    if ((this.opts.transport || "auto") === "auto" && this.ES && this.wsFailures >= WS_FAILURES_BEFORE_SSE) {
      this.transport = "sse";
      this.attempt = 0;
      this.open();
      return;
    }
    this.retry({ reason: err.message });
  }

  subscribeWS(topics) {
    const since = {};
    for (const topic of topics) {
      const p = this.topics.get(topic).position;
      if (p) since[topic] = p;
    }
    const id = this.nextID();
    this.subscribing.set(id, topics);
    this.send({ type: "subscribe", id, topics, since });
  }

  send(obj) {
    if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(obj));
  }

  dropWS(code, reason) {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      try {
        ws.close(code, reason);
      } catch (_) {
        // already closing
      }
    }
  }

  // Server-Sent Events.

  openES(token) {
    if (!this.ES) {
      this.error(new Error("neither WebSocket nor EventSource is available"));
      return;
    }
    if (this.topics.size === 0) return; // opened when there is something to read
    const extra = { topics: [...this.topics.keys()].join(",") };
    const since = this.since();
    if (Object.keys(since).length) extra.since = JSON.stringify(since);
    const es = new this.ES(this.base + "/v1/stream?" + this.query(token, extra));
    this.es = es;
    let closing = null;
    const handle = (ev) => {
      if (this.es !== es) return;
      const obj = JSON.parse(ev.data);
      if (obj.type === "close") closing = obj;
      else this.dispatch(obj);
    };
    for (const type of ["message", "subscribed", "gap", "close"]) es.addEventListener(type, handle);
    es.onopen = () => {
      this.attempt = 0;
      this.status("open", { transport: "sse" });
    };
    // The stream ended or failed: reconnect ourselves, resuming from our
    // positions (and with a fresh token), rather than EventSource's way.
    es.onerror = () => {
      if (this.es !== es) return;
      this.dropES();
      this.retry(closing ? { code: closing.code, reason: closing.reason } : {});
    };
  }

  dropES() {
    const es = this.es;
    this.es = null;
    if (es) es.close();
  }

  // dispatch takes one object from the server.
  dispatch(obj) {
    switch (obj.type) {
      case "message": {
        const t = this.topics.get(obj.topic);
        if (!t) return;
        const p = t.position;
        if (p && p.epoch === obj.epoch && obj.offset <= p.offset) return; // had it
        t.position = { offset: obj.offset, epoch: obj.epoch };
        for (const h of [...t.handlers]) h(obj);
        return;
      }
      case "subscribed": {
        this.subscribing.delete(obj.id);
        const t = this.topics.get(obj.topic);
        if (!t) return;
        if (!t.position || obj.gap) t.position = obj.position;
        t.resolve(obj);
        return;
      }
      case "gap":
        if (this.opts.onGap) this.opts.onGap(obj.topic, { since: obj.since || null, position: obj.position });
        return;
      case "ack": {
        const a = this.acks.get(obj.id);
        if (a) {
          this.acks.delete(obj.id);
          a.resolve();
        }
        return;
      }
      case "error": {
        const a = this.acks.get(obj.id);
        if (a) {
          this.acks.delete(obj.id);
          a.reject(serverError(obj));
          return;
        }
        const refused = this.subscribing.get(obj.id);
        if (refused) {
          // A refused subscription is dropped, not asked for again.
          this.subscribing.delete(obj.id);
          for (const topic of refused) {
            const t = this.topics.get(topic);
            if (t) {
              this.topics.delete(topic);
              t.resolve(null);
            }
          }
        }
        this.error(serverError(obj));
        return;
      }
      default: // pong, unsubscribed: nothing to do
    }
  }
}

function serverError(e) {
  const err = new Error(e.message);
  err.code = e.code;
  if (e.topic) err.topic = e.topic;
  return err;
}

function pick(options, name) {
  if (name in options) return options[name] || null;
  const v = globalThis[name];
  return typeof v === "function" ? (name === "fetch" ? v.bind(globalThis) : v) : null;
}

function baseURL(url) {
  const u = url ? new URL(url, globalThis.location ? globalThis.location.href : undefined) : new URL("/", import.meta.url);
  return u.origin + u.pathname.replace(/\/+$/, "").replace(/\/v1\/client\.js$/, "");
}

globalThis.Switchyard = { connect };

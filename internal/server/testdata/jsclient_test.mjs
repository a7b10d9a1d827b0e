// Drives the browser client (client.mjs, as GET /v1/client.js served it)
// against a real server under Node. Node 20 has neither WebSocket nor
// EventSource, so minimal ones are given to the client, as a browser's
// would be: MiniWebSocket speaks RFC 6455 over node:http, MiniEventSource
// reads text/event-stream with fetch. Each can cut its connection, as a
// network would.
//
// Environment: SY_URL (the server), SY_KEY (an operator API key, used to
// publish and, with POST /v1/tokens, to make subscription tokens).
// Prints "ok" and exits 0 when every check passed.

import http from "node:http";
import crypto from "node:crypto";
import assert from "node:assert/strict";
import { connect } from "./client.mjs";

const base = process.env.SY_URL;
const key = process.env.SY_KEY;
const timer = setTimeout(() => {
  console.error("timed out");
  process.exit(1);
}, 60000);

class MiniWebSocket {
  static live = new Set();
  constructor(url) {
    this.readyState = 0;
    const u = new URL(url);
    const req = http.request({
      host: u.hostname,
      port: u.port,
      path: u.pathname + u.search,
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": crypto.randomBytes(16).toString("base64"),
      },
    });
    req.on("upgrade", (res, socket, head) => {
      this.socket = socket;
      this.buf = head;
      this.readyState = 1;
      MiniWebSocket.live.add(this);
      socket.on("data", (d) => {
        this.buf = Buffer.concat([this.buf, d]);
        this.parse();
      });
      socket.on("close", () => this.closed(1006, ""));
      socket.on("error", () => {});
      this.onopen && this.onopen();
      this.parse();
    });
    req.on("response", () => this.closed(1006, "refused"));
    req.on("error", () => this.closed(1006, "error"));
    req.end();
  }
  parse() {
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      const op = b[0] & 0x0f;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      if (b.length < off + len) return;
      const payload = b.subarray(off, off + len);
      this.buf = b.subarray(off + len);
      if (op === 1) this.onmessage && this.onmessage({ data: payload.toString("utf8") });
      else if (op === 9) this.frame(10, payload);
      else if (op === 8) {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        this.frame(8, payload.subarray(0, 2));
        this.socket.end();
        this.closed(code, payload.subarray(2).toString("utf8"));
        return;
      }
    }
  }
  frame(op, payload) {
    if (this.readyState !== 1) return;
    const mask = crypto.randomBytes(4);
    const len = payload.length;
    const head = len < 126 ? Buffer.from([0x80 | op, 0x80 | len]) : Buffer.from([0x80 | op, 0x80 | 126, len >> 8, len & 0xff]);
    const body = Buffer.from(payload);
    for (let i = 0; i < body.length; i++) body[i] ^= mask[i % 4];
    this.socket.write(Buffer.concat([head, mask, body]));
  }
  send(text) {
    this.frame(1, Buffer.from(text, "utf8"));
  }
  close(code = 1000) {
    const p = Buffer.alloc(2);
    p.writeUInt16BE(code);
    this.frame(8, p);
    this.readyState = 2;
    this.socket && this.socket.end();
  }
  cut() {
    this.socket.destroy();
  }
  closed(code, reason) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    MiniWebSocket.live.delete(this);
    this.onclose && this.onclose({ code, reason });
  }
}

class MiniEventSource {
  static live = new Set();
  constructor(url) {
    this.url = url;
    this.listeners = {};
    this.ctrl = new AbortController();
    MiniEventSource.live.add(this);
    fetch(url, { signal: this.ctrl.signal, headers: { Accept: "text/event-stream" } })
      .then(async (res) => {
        if (!res.ok) throw new Error("status " + res.status);
        this.onopen && this.onopen();
        const dec = new TextDecoder();
        let text = "";
        for await (const chunk of res.body) {
          text += dec.decode(chunk, { stream: true });
          let i;
          while ((i = text.indexOf("\n\n")) >= 0) {
            const block = text.slice(0, i);
            text = text.slice(i + 2);
            let type = "message";
            let data = null;
            for (const line of block.split("\n")) {
              if (line.startsWith("event: ")) type = line.slice(7);
              else if (line.startsWith("data: ")) data = line.slice(6);
            }
            if (data !== null) for (const fn of this.listeners[type] || []) fn({ data });
          }
        }
        throw new Error("stream ended");
      })
      .catch(() => {
        if (this.ctrl.signal.aborted && !this.cutting) return;
        MiniEventSource.live.delete(this);
        this.onerror && this.onerror();
      });
  }
  addEventListener(type, fn) {
    (this.listeners[type] ||= []).push(fn);
  }
  close() {
    MiniEventSource.live.delete(this);
    this.ctrl.abort();
  }
  cut() {
    this.cutting = true;
    this.ctrl.abort();
  }
}

// A WebSocket that never connects: the client must fall back to SSE.
class BrokenWebSocket {
  constructor() {
    this.readyState = 0;
    setTimeout(() => {
      this.readyState = 3;
      this.onclose && this.onclose({ code: 1006, reason: "" });
    }, 1);
  }
  send() {}
  close() {}
}

async function api(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: "Bearer " + key, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(method + " " + path + ": " + res.status + " " + text);
  return text ? JSON.parse(text) : null;
}

const publish = (topic, n) => api("POST", "/v1/topics/" + topic + "/publish", { event: "n", data: { n } });

// waitFor resolves once cond() holds, checking whenever the client calls
// back (the checks below call poke()).
let pokes = [];
const poke = () => {
  const p = pokes;
  pokes = [];
  for (const f of p) f();
};
function waitFor(cond, what) {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (cond()) resolve();
      else pokes.push(check);
    };
    check();
    setTimeout(() => reject(new Error("waiting for " + what)), 30000).unref();
  });
}

// Receives topic's messages on conn into got, checking order.
function collect(conn, topic, got) {
  return conn.subscribe(topic, (msg) => {
    assert.equal(msg.topic, topic);
    if (got.length) assert.equal(msg.offset, got[got.length - 1].offset + 1, "no message lost or repeated");
    got.push(msg);
    poke();
  });
}

async function resumeOver(transport) {
  const topic = "room." + transport;
  const { token } = await api("POST", "/v1/tokens", { topics: ["room.*"] });
  const statuses = [];
  const gaps = [];
  const opts = {
    url: base,
    token: () => token,
    backoff: { base: 5, max: 50 },
    onStatus: (s, d) => {
      statuses.push(s);
      poke();
    },
    onGap: (t, info) => {
      gaps.push([t, info]);
      poke();
    },
    onError: (e) => console.error("client error", e),
    WebSocket: MiniWebSocket,
    EventSource: MiniEventSource,
  };
  if (transport === "sse") opts.WebSocket = null;
  if (transport === "fallback") opts.WebSocket = BrokenWebSocket;
  const conn = connect(opts);
  const got = [];
  const sub = collect(conn, topic, got);
  await sub.ready;
  for (let n = 1; n <= 3; n++) await publish(topic, n);
  await waitFor(() => got.length === 3, transport + ": 3 messages");

  // The network drops; messages are published meanwhile; the client
  // reconnects by itself and resumes.
  const live = transport === "websocket" ? MiniWebSocket.live : MiniEventSource.live;
  assert.equal(live.size, 1, transport + ": one connection");
  const opened = statuses.filter((s) => s === "open").length;
  for (const c of live) c.cut();
  for (let n = 4; n <= 6; n++) await publish(topic, n);
  await waitFor(() => statuses.filter((s) => s === "open").length > opened, transport + ": reconnected");
  await waitFor(() => got.length === 6, transport + ": 6 messages");
  await publish(topic, 7);
  await waitFor(() => got.length === 7, transport + ": 7 messages");
  assert.deepEqual(got.map((m) => m.data.n), [1, 2, 3, 4, 5, 6, 7]);
  assert.ok(statuses.includes("reconnecting"), transport + ": it reconnected");
  assert.deepEqual(conn.position(topic), { offset: got[6].offset, epoch: got[6].epoch });

  // A position the server cannot resume from: the application is told.
  const other = [];
  const sub2 = conn.subscribe("room.gap", (m) => other.push(m), { since: { offset: 9, epoch: "elsewhere" } });
  await sub2.ready;
  await waitFor(() => gaps.length === 1, transport + ": a gap");
  assert.equal(gaps[0][0], "room.gap");
  assert.deepEqual(gaps[0][1].since, { offset: 9, epoch: "elsewhere" });
  conn.close();
  assert.equal(statuses[statuses.length - 1], "closed");
}

async function publishOverSocket() {
  const conn = connect({ url: base, token: key, WebSocket: MiniWebSocket, EventSource: null });
  const got = [];
  await collect(conn, "chat.1", got).ready;
  await conn.publish("chat.1", "message", { text: "hi" });
  await waitFor(() => got.length === 1, "own message");
  assert.deepEqual(got[0].data, { text: "hi" });
  await assert.rejects(conn.publish("jobs", "message", {}), (e) => e.code === "permission_denied");
  conn.close();

  // A topic the token does not grant is refused: ready says null, onError
  // says why, and the topic is not asked for again.
  const { token } = await api("POST", "/v1/tokens", { topics: ["room.*"] });
  const errors = [];
  const scoped = connect({ url: base, token, WebSocket: MiniWebSocket, EventSource: null, onError: (e) => errors.push(e) });
  assert.equal(await scoped.subscribe("jobs", () => {}).ready, null);
  assert.equal(errors[0].code, "permission_denied");
  assert.equal(scoped.position("jobs"), null);
  assert.notEqual(await scoped.subscribe("room.ok", () => {}).ready, null);
  scoped.close();
}

try {
  await resumeOver("websocket");
  await resumeOver("sse");
  await resumeOver("fallback");
  await publishOverSocket();
  assert.equal(typeof globalThis.Switchyard.connect, "function");
  console.log("ok");
  clearTimeout(timer);
  process.exit(0);
} catch (e) {
  console.error(e);
  process.exit(1);
}

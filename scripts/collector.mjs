// A real Segment-spec collector for the demo and the delivery tests.
//
// POST /v1/batch  {"batch": [...], "sentAt": ISO}, authenticated by `Authorization: Basic
//                 base64(writeKey + ":")` — or, for sendBeacon (which cannot set headers), by a
//                 `writeKey` field in the body. JSON or text/plain bodies. Every accepted event
//                 is appended to a JSONL file (when `log` is set) and kept in memory.
// GET  /collector/events   {events, requests, duplicates, maxActive} for tests and the demo.
// POST /collector/faults   switches for fault tests, merged into the current ones:
//                 {"status": 500, "count": K}        answer 500 to the next K batch requests
//                 {"status": 429, "count": K, "retryAfter": 1}  429 with Retry-After (seconds)
//                 {"hang": true}                     hold every request unanswered until
//                                                    switched off, then handle those still
//                                                    connected (a client that gave up is not
//                                                    recorded)
//                 {"delay": ms}                      wait before handling each request; a
//                                                    request aborted meanwhile is not recorded
// POST /collector/reset    forgets events, requests and faults.
//
// `node scripts/collector.mjs [--port 9100] [--log out/collector.jsonl] [--write-key demo-key]`
// runs it alone; scripts/serve.mjs mounts it next to the demo shop.
import { appendFileSync, mkdirSync } from "node:fs";
import { createServer } from "node:http";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

const NO_FAULTS = () => ({ status: 0, count: 0, retryAfter: 1, hang: false, delay: 0 });

export class Collector {
  constructor({ writeKey = "demo-key", log } = {}) {
    this.writeKey = writeKey;
    this.log = log;
    this.reset();
    if (log) mkdirSync(dirname(log), { recursive: true });
  }

  handles(url) {
    return url.pathname === "/v1/batch" || url.pathname.startsWith("/collector/");
  }

  reset() {
    this.events = [];
    this.requests = [];
    this.faults = NO_FAULTS();
    this.held = [];
    this.active = 0;
    this.maxActive = 0;
  }

  /** Events received more than once (by messageId): the count of extra copies. */
  duplicates() {
    const seen = new Set();
    let dup = 0;
    for (const e of this.events) {
      if (seen.has(e.messageId)) dup++;
      else seen.add(e.messageId);
    }
    return dup;
  }

  /** Merges fault switches; switching `hang` off releases the held requests. */
  setFaults(f) {
    Object.assign(this.faults, f);
    if (!this.faults.hang) for (const go of this.held.splice(0)) go();
  }

  handle(req, res, url) {
    const cors = {
      "access-control-allow-origin": req.headers.origin || "*",
      "access-control-allow-headers": "authorization, content-type",
      "access-control-allow-methods": "POST, GET, OPTIONS",
      "access-control-expose-headers": "retry-after",
    };
    if (req.method === "OPTIONS") {
      res.writeHead(204, cors);
      return res.end();
    }
    if (url.pathname === "/collector/events") {
      res.writeHead(200, { ...cors, "content-type": "application/json", "cache-control": "no-store" });
      const { events, requests, maxActive } = this;
      return res.end(JSON.stringify({ events, requests, duplicates: this.duplicates(), maxActive }));
    }
    if (url.pathname === "/collector/reset") {
      this.reset();
      res.writeHead(204, cors);
      return res.end();
    }
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      if (url.pathname === "/collector/faults") {
        try {
          this.setFaults(JSON.parse(raw.toString() || "{}"));
        } catch {}
        res.writeHead(204, cors);
        return res.end();
      }
      if (url.pathname !== "/v1/batch" || req.method !== "POST") {
        res.writeHead(404, cors);
        return res.end();
      }
      const record = { at: Date.now(), type: req.headers["content-type"] || "", bytes: raw.length, status: 0, auth: "", count: 0 };
      this.requests.push(record);
      let aborted = false;
      res.on("close", () => {
        if (!res.writableEnded) aborted = true;
      });
      this.active++;
      this.maxActive = Math.max(this.maxActive, this.active);
      const answer = (status, headers = {}, text = "") => {
        this.active--;
        record.status = status;
        record.answeredAt = Date.now();
        if (aborted) return;
        res.writeHead(status, { ...cors, ...headers });
        res.end(text);
      };
      const go = () => {
        if (aborted) {
          this.active--;
          record.status = "aborted";
          return;
        }
        if (this.faults.hang) {
          record.status = "held";
          return this.held.push(go);
        }
        if (this.faults.count > 0 && this.faults.status) {
          this.faults.count--;
          const h = this.faults.status === 429 ? { "retry-after": String(this.faults.retryAfter) } : {};
          return answer(this.faults.status, h);
        }
        let payload;
        try {
          payload = JSON.parse(raw.toString("utf8"));
        } catch {
          return answer(400, {}, "invalid JSON");
        }
        const auth = req.headers.authorization || "";
        const expected = "Basic " + Buffer.from(this.writeKey + ":").toString("base64");
        record.auth = auth === expected ? "header" : payload && payload.writeKey === this.writeKey ? "body" : "";
        if (!record.auth) return answer(401, {}, "bad write key");
        if (!payload || !Array.isArray(payload.batch) || !payload.batch.every((e) => e && typeof e.type === "string")) {
          return answer(400, {}, "missing batch");
        }
        record.count = payload.batch.length;
        record.sentAt = payload.sentAt;
        for (const e of payload.batch) {
          this.events.push(e);
          if (this.log) appendFileSync(this.log, JSON.stringify(e) + "\n");
        }
        answer(200, { "content-type": "application/json" }, '{"success":true}');
      };
      if (this.faults.delay > 0) setTimeout(go, this.faults.delay);
      else go();
    });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : dflt;
  };
  const collector = new Collector({ writeKey: arg("--write-key", "demo-key"), log: arg("--log", "out/collector.jsonl") });
  const port = Number(arg("--port", 9100));
  createServer((req, res) => {
    const url = new URL(req.url, "http://localhost");
    if (collector.handles(url)) return collector.handle(req, res, url);
    res.writeHead(404);
    res.end();
  }).listen(port, "127.0.0.1", () => {
    console.log(`collector: http://localhost:${port}/v1/batch (write key "${collector.writeKey}"; events in ${collector.log})`);
  });
}

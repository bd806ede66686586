// A real Segment-spec collector for the demo and the delivery tests: accepts POST /v1/batch
// ({batch: [...], sentAt}) with `Authorization: Basic base64(writeKey + ":")`, appends every
// event to a JSONL file, and keeps them in memory for tests (GET /collector/events).
// Fault switches (POST /collector/faults): answer 500 or 429 (with Retry-After) for the next
// K requests, or hang. Also accepts text/plain bodies (sendBeacon).
import { appendFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";

export class Collector {
  constructor({ writeKey = "demo-key", log } = {}) {
    this.writeKey = writeKey;
    this.log = log;
    this.events = [];
    this.requests = [];
    this.faults = { status: 0, count: 0, retryAfter: 1, hang: false };
    if (log) mkdirSync(dirname(log), { recursive: true });
  }

  handles(url) {
    return url.pathname === "/v1/batch" || url.pathname.startsWith("/collector/");
  }

  reset() {
    this.events = [];
    this.requests = [];
    this.faults = { status: 0, count: 0, retryAfter: 1, hang: false };
  }

  handle(req, res, url) {
    const cors = { "access-control-allow-origin": req.headers.origin || "*", "access-control-allow-headers": "authorization, content-type", "access-control-allow-methods": "POST, GET, OPTIONS" };
    if (req.method === "OPTIONS") {
      res.writeHead(204, cors);
      return res.end();
    }
    if (url.pathname === "/collector/events") {
      res.writeHead(200, { ...cors, "content-type": "application/json" });
      return res.end(JSON.stringify({ events: this.events, requests: this.requests.length }));
    }
    if (url.pathname === "/collector/reset") {
      this.reset();
      res.writeHead(204, cors);
      return res.end();
    }
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      if (url.pathname === "/collector/faults") {
        try {
          Object.assign(this.faults, JSON.parse(body || "{}"));
        } catch {}
        res.writeHead(204, cors);
        return res.end();
      }
      this.requests.push({ at: Date.now(), type: req.headers["content-type"] || "", bytes: body.length });
      if (this.faults.hang) return; // never answers
      if (this.faults.count > 0 && this.faults.status) {
        this.faults.count--;
        const h = { ...cors };
        if (this.faults.status === 429) h["retry-after"] = String(this.faults.retryAfter);
        res.writeHead(this.faults.status, h);
        return res.end();
      }
      const auth = req.headers.authorization || "";
      const expected = "Basic " + Buffer.from(this.writeKey + ":").toString("base64");
      // sendBeacon cannot set headers: beacon bodies carry the write key in the payload.
      let payload;
      try {
        payload = JSON.parse(body);
      } catch {
        res.writeHead(400, cors);
        return res.end("invalid JSON");
      }
      if (auth !== expected && payload.writeKey !== this.writeKey) {
        res.writeHead(401, cors);
        return res.end("bad write key");
      }
      if (!payload || !Array.isArray(payload.batch)) {
        res.writeHead(400, cors);
        return res.end("missing batch");
      }
      for (const e of payload.batch) {
        this.events.push(e);
        if (this.log) appendFileSync(this.log, JSON.stringify(e) + "\n");
      }
      res.writeHead(200, { ...cors, "content-type": "application/json" });
      res.end('{"success":true}');
    });
  }
}

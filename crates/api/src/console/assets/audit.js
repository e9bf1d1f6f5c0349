// Steward console: the audit page verifies what it shows, in the browser, with WebCrypto.
// For every event row: leaf = SHA-256(0x00 || canonical bytes) (RFC 6962), the inclusion proof
// from the server folded up to the signed checkpoint's root, the checkpoint's signature checked
// with the log's public key (Ed25519, or ECDSA P-256 from a DER SubjectPublicKeyInfo), and the
// row's shown fields compared with the bytes. The server's HTML is not trusted; the key is.
"use strict";
(function () {
  const subtle = window.crypto && window.crypto.subtle;
  const hex = (s) => Uint8Array.from(s.match(/../g) || [], (b) => parseInt(b, 16));
  const toHex = (a) => Array.from(new Uint8Array(a), (b) => b.toString(16).padStart(2, "0")).join("");
  const cat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  };
  const sha256 = async (bytes) => new Uint8Array(await subtle.digest("SHA-256", bytes));
  const leafHash = (bytes) => sha256(cat(Uint8Array.of(0), bytes));
  const nodeHash = (l, r) => sha256(cat(Uint8Array.of(1), l, r));
  const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

  // RFC 9162 section 2.1.3.2: the root an inclusion proof leads to, or null.
  async function rootFromProof(leaf, index, size, proof) {
    if (index >= size) return null;
    let fn = index, sn = size - 1, r = leaf;
    for (const p of proof) {
      if (sn === 0) return null;
      if ((fn & 1) === 1 || fn === sn) {
        r = await nodeHash(p, r);
        if ((fn & 1) === 0) { while ((fn & 1) === 0 && fn !== 0) { fn >>= 1; sn >>= 1; } }
      } else {
        r = await nodeHash(r, p);
      }
      fn >>= 1; sn >>= 1;
    }
    return sn === 0 ? r : null;
  }

  // A DER ECDSA-Sig-Value as the 64-byte r || s WebCrypto verifies.
  function derToRaw(der) {
    let at = 2;
    const int = () => {
      if (der[at] !== 2) throw new Error("not a DER integer");
      const len = der[at + 1];
      let v = der.slice(at + 2, at + 2 + len);
      at += 2 + len;
      while (v.length > 32 && v[0] === 0) v = v.slice(1);
      return cat(new Uint8Array(32 - v.length), v);
    };
    return cat(int(), int());
  }

  // Whether the checkpoint's signature verifies; null when the browser lacks the algorithm.
  async function signatureHolds(cp) {
    const key = hex(cp.public_key);
    const message = new TextEncoder().encode(
      `steward-audit-checkpoint/v1\n${cp.size}\n${cp.root}\n${cp.time}\n`);
    const keyId = toHex((await sha256(key)).slice(0, 8));
    if (keyId !== cp.key_id) return false;
    try {
      if (key.length === 32) {
        const k = await subtle.importKey("raw", key, { name: "Ed25519" }, false, ["verify"]);
        return await subtle.verify({ name: "Ed25519" }, k, hex(cp.signature), message);
      }
      const k = await subtle.importKey("spki", key, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
      return await subtle.verify({ name: "ECDSA", hash: "SHA-256" }, k, derToRaw(hex(cp.signature)), message);
    } catch (e) {
      if (e && e.name === "NotSupportedError") return null;
      return false;
    }
  }

  async function json(path) {
    const r = await fetch(path, { credentials: "same-origin" });
    if (!r.ok) throw new Error(`${path}: ${r.status}`);
    return r.json();
  }

  async function verify() {
    const out = document.getElementById("audit-verification");
    const report = (status, text) => { out.dataset.status = status; out.textContent = text; };
    try {
      if (!subtle) return report("failed", "This browser has no WebCrypto: nothing could be verified.");
      const cp = await json("/console/audit/checkpoint");
      const signed = await signatureHolds(cp);
      if (signed === false) return report("failed", "The checkpoint's signature does not verify with the log's key.");
      const root = hex(cp.root);
      const rows = Array.from(document.querySelectorAll("tr[data-seq]"));
      let checked = 0;
      for (const row of rows) {
        const seq = Number(row.dataset.seq);
        const bytes = hex(row.dataset.event);
        const event = JSON.parse(new TextDecoder().decode(bytes));
        const shown = (c) => row.querySelector(c).textContent;
        if (event.seq !== seq || event.action !== shown(".action") || event.actor !== shown(".actor") || event.time !== shown(".time")) {
          return report("failed", `Event ${seq}: the row does not show what its bytes say.`);
        }
        const leaf = await leafHash(bytes);
        if (toHex(leaf) !== shown(".leaf")) return report("failed", `Event ${seq}: the leaf hash shown is not the bytes' hash.`);
        if (seq > cp.size) continue; // after the latest checkpoint: verified by the next one
        const proof = await json(`/console/audit/proofs/${seq}`);
        const top = await rootFromProof(leaf, seq - 1, cp.size, proof.hashes.map(hex));
        if (!top || !equal(top, root)) return report("failed", `Event ${seq}: its inclusion proof does not lead to the checkpoint's root.`);
        checked += 1;
      }
      const how = signed ? "signature verified" : "signature not checked: this browser lacks the key's algorithm";
      report("verified", `Verified in your browser: ${checked} events are in the log of ${cp.size} events with root ${cp.root.slice(0, 16)}…, checkpoint ${how}.`);
    } catch (e) {
      report("failed", `Verification failed: ${e.message}`);
    }
  }

  window.stewardAudit = { verify };
  verify();
})();

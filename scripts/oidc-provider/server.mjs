// A real OpenID Connect provider for Steward's tests: the certified `oidc-provider` package on
// 127.0.0.1, configured entirely from the JSON in the environment variable OIDC_CONFIG:
//
//   {"port": 0,                      // 0: a free port
//    "clients": [{...}],             // oidc-provider client metadata, as given
//    "accounts": {"alice": {"email": "...", "name": "...", "groups": ["..."]}},
//    "id_token_ttl": 3600,           // optional, seconds
//    "claims": {"groups": ["groups"]}}  // optional: scope -> claims, replaces the default map
//
// The issuer is http://127.0.0.1:<port>. On start it prints exactly one line to stdout,
// `oidc-provider listening on http://127.0.0.1:<port>`, then serves until SIGTERM, SIGINT or
// until its standard input closes (so it dies with the test process that spawned it).
//
// What differs from a production provider, on purpose:
// - PKCE (S256) is required for every authorization code request, confidential clients too.
// - Requested scopes are granted without a consent screen (first-party auto-grant in
//   loadExistingGrant; a consent prompt that still comes up is granted when it is shown).
// - Login is a one-form interaction at /interaction/<uid>: the field `login` is the account id
//   from OIDC_CONFIG.accounts, `password` is ignored. An unknown account gets 401 and the form.
// - Claims of the granted scopes go into the ID token itself (conformIdTokenClaims: false).
// - Signing keys are generated at start: one RSA (RS256, the clients' default) and one P-256
//   (ES256) key; the JWKS publishes both.
// - Dynamic Client Registration (POST /reg, RFC 7591) is open to anyone and honours the
//   client_id and client_secret in the request.
//
// TEST-ONLY HOOKS, which exist only in this harness (no real provider has them), under /__test/:
// - POST /__test/sign {"claims": {...}, "header"?: {...}, "key"?: "current"|"unknown"|<kid>}
//   -> {"token": "<compact JWS>", "kid": "..."}. The algorithm is header.alg (default RS256;
//   ES256 and "none" too). "current" signs with the provider's current key for that algorithm,
//   "unknown" with a fresh key that is in no JWKS (same kid format), a kid with any key this
//   provider ever had. Claims default to iss = the issuer, iat = now, exp = now + 300; the header
//   to {alg, kid, typ: "JWT"}; a null value removes a default.
// - POST /__test/rotate {"drop_previous"?: bool} -> {"kid": <new RS256 kid>, "kids": {alg: kid},
//   "jwks": {...}}: a new RSA and a new EC key become current, the provider signs its own ID
//   tokens with them from now on, and the JWKS publishes them (and, unless drop_previous, the
//   older keys too).
//
// oidc-provider has no API to change keys at runtime; rotate swaps the contents of its keystore
// and published JWKS through its internal instance state (lib/helpers/weak_cache.js). That is
// tied to the exact version pinned in package.json, checked at start, and the Rust harness's
// tests prove that an ID token issued after a rotation carries the new kid.

import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';
import instance from 'oidc-provider/lib/helpers/weak_cache.js';
import * as jose from 'jose';

const config = JSON.parse(process.env.OIDC_CONFIG ?? 'null');
if (!config || typeof config !== 'object') {
  console.error('oidc-provider: OIDC_CONFIG must be a JSON object (see the header of server.mjs)');
  process.exit(2);
}
const accounts = config.accounts ?? {};
const clients = config.clients ?? [];

// The claims each scope releases; `openid` always gives sub.
const claims = config.claims ?? {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  profile: ['name', 'given_name', 'family_name', 'preferred_username', 'picture'],
  groups: ['groups'],
};

// --- keys -----------------------------------------------------------------------------------

const PUBLIC_MEMBERS = ['kty', 'use', 'kid', 'alg', 'crv', 'e', 'n', 'x', 'y'];
const publicJwk = (jwk) => Object.fromEntries(
  PUBLIC_MEMBERS.filter((m) => jwk[m] !== undefined).map((m) => [m, jwk[m]]),
);

// A private JWK with kid = its RFC 7638 thumbprint, the format oidc-provider itself uses.
async function generateKey(alg) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  jwk.kid = await jose.calculateJwkThumbprint(publicJwk(jwk));
  jwk.alg = alg;
  jwk.use = 'sig';
  return jwk;
}

const ALGS = ['RS256', 'ES256'];
const everKey = new Map(); // kid -> private JWK, every key this provider had (for /__test/sign)
const published = []; // kids in the JWKS, current ones first
const current = {}; // alg -> kid

async function addCurrentKeys(dropPrevious) {
  const fresh = await Promise.all(ALGS.map(generateKey));
  if (dropPrevious) published.length = 0;
  for (const jwk of fresh.reverse()) {
    everKey.set(jwk.kid, jwk);
    current[jwk.alg] = jwk.kid;
    published.unshift(jwk.kid);
  }
}

await addCurrentKeys(false);

// --- the provider ---------------------------------------------------------------------------

const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(config.port ?? 0), '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: published.map((kid) => structuredClone(everKey.get(kid))) },
  async findAccount(_ctx, id) {
    if (!Object.hasOwn(accounts, id)) return undefined;
    return { accountId: id, claims: async () => ({ ...accounts[id], sub: id }) };
  },
  claims,
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    // Dynamic Client Registration (RFC 7591), open: for clients whose redirect URI is known only
    // after the provider started (a server on port 0). The client_id and client_secret are the
    // ones asked for, so tests can name them; a configured client's id cannot be taken.
    registration: {
      enabled: true,
      idFactory(ctx) {
        const id = ctx.oidc.body.client_id;
        if (id === undefined) return randomBytes(16).toString('base64url');
        if (typeof id !== 'string' || !id || clients.some((c) => c.client_id === id)) {
          throw new errors.InvalidClientMetadata(`client_id ${JSON.stringify(id)} is taken or invalid`);
        }
        return id;
      },
      secretFactory: (ctx) => ctx.oidc.body.client_secret ?? randomBytes(32).toString('base64url'),
    },
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  // Auto-grant: every requested scope, without a consent screen (a test provider's clients are
  // all first-party).
  async loadExistingGrant(ctx) {
    const { Grant } = ctx.oidc.provider;
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    const existing = grantId && await Grant.find(grantId);
    if (existing) return existing;
    const grant = new Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope(ctx.oidc.params.scope ?? 'openid');
    await grant.save();
    return grant;
  },
  // Refresh tokens for every client allowed the grant, without offline_access and its consent.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  ttl: { IdToken: Number(config.id_token_ttl ?? 3600) },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  async renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
});

// oidc-provider checks configured clients only when one is first used; a test whose client
// metadata is wrong should fail at start, saying which client and why.
for (const client of clients) {
  try {
    await provider.Client.validate(client);
  } catch (e) {
    console.error(`oidc-provider: client ${JSON.stringify(client.client_id)}: ${e.message}`
      + `${e.error_description ? ` (${e.error_description})` : ''}`);
    process.exit(2);
  }
}

const internals = instance(provider);
if (!internals?.keystore || !Array.isArray(internals.jwks?.keys)) {
  console.error('oidc-provider: its internal keystore is not where this harness expects it; '
    + 'the pinned oidc-provider version changed: fix POST /__test/rotate in server.mjs');
  process.exit(2);
}

// Current keys first: for each algorithm oidc-provider signs with the first matching key.
function installPublishedKeys() {
  internals.keystore.clear();
  for (const kid of published) internals.keystore.add(structuredClone(everKey.get(kid)));
  internals.jwks = { keys: published.map((kid) => publicJwk(everKey.get(kid))) };
}

provider.on('server_error', (_ctx, err) => console.error('oidc-provider: server_error', err));

// --- plain HTTP helpers ---------------------------------------------------------------------

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res, status, type, body, headers = {}) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers });
  res.end(body);
}
const sendJson = (res, status, value) => send(res, status, 'application/json', JSON.stringify(value));

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// --- interactions: one login form; consent granted as it comes ------------------------------

function loginForm(uid, error) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Sign in</title></head><body>
${error ? `<p id="error">${escapeHtml(error)}</p>` : ''}<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<input type="text" name="login" autofocus required>
<input type="password" name="password">
<button type="submit">Sign in</button>
</form></body></html>`;
}

async function finish(req, res, result) {
  const returnTo = await provider.interactionResult(req, res, result, { mergeWithLastSubmission: true });
  send(res, 303, 'text/plain', '', { location: returnTo });
}

async function grantConsent(req, res, details) {
  const { prompt, grantId, session, params } = details;
  const grant = (grantId && await provider.Grant.find(grantId))
    || new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scope] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scope.join(' '));
  }
  await finish(req, res, { consent: { grantId: await grant.save() } });
}

async function interaction(req, res, path) {
  const [, uid, action] = path.match(/^\/interaction\/([^/]+)(?:\/(login))?$/) ?? [];
  if (!uid) return send(res, 404, 'text/plain', 'not found');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, 'text/plain', 'interaction mismatch');
  if (details.prompt.name === 'consent') return grantConsent(req, res, details);
  if (details.prompt.name !== 'login') return send(res, 501, 'text/plain', `prompt ${details.prompt.name}`);
  if (req.method === 'GET' && !action) return send(res, 200, 'text/html', loginForm(uid));
  if (req.method !== 'POST' || action !== 'login') return send(res, 405, 'text/plain', 'method not allowed');
  const login = new URLSearchParams(await readBody(req)).get('login') ?? '';
  if (!Object.hasOwn(accounts, login)) {
    return send(res, 401, 'text/html', loginForm(uid, `unknown account ${JSON.stringify(login)}`));
  }
  return finish(req, res, { login: { accountId: login } });
}

// --- test-only hooks ------------------------------------------------------------------------

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
const withoutNulls = (o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null));

async function sign(body) {
  const header = body.header ?? {};
  const alg = header.alg ?? everKey.get(body.key)?.alg ?? 'RS256';
  const now = Math.floor(Date.now() / 1000);
  const payload = withoutNulls({ iss: issuer, iat: now, exp: now + 300, ...body.claims });
  if (alg === 'none') {
    const h = withoutNulls({ alg: 'none', typ: 'JWT', ...header });
    return { token: `${b64(h)}.${b64(payload)}.`, kid: h.kid ?? null };
  }
  const key = body.key ?? 'current';
  let jwk;
  if (key === 'current') jwk = everKey.get(current[alg]);
  else if (key === 'unknown') jwk = await generateKey(alg);
  else jwk = everKey.get(key);
  if (!jwk) throw new RangeError(`no key ${JSON.stringify(key)} for ${alg}`);
  const h = withoutNulls({ alg, kid: jwk.kid, typ: 'JWT', ...header });
  const token = await new jose.CompactSign(Buffer.from(JSON.stringify(payload)))
    .setProtectedHeader(h)
    .sign(await jose.importJWK(jwk, jwk.alg));
  return { token, kid: jwk.kid };
}

async function testHook(req, res, path) {
  if (req.method !== 'POST') return send(res, 405, 'text/plain', 'POST only');
  let body;
  try {
    body = JSON.parse((await readBody(req)) || '{}');
  } catch (e) {
    return sendJson(res, 400, { error: `body is not JSON: ${e.message}` });
  }
  try {
    switch (path) {
      case '/__test/sign':
        return sendJson(res, 200, await sign(body));
      case '/__test/rotate':
        await addCurrentKeys(Boolean(body.drop_previous));
        installPublishedKeys();
        return sendJson(res, 200, { kid: current.RS256, kids: { ...current }, jwks: internals.jwks });
      default:
        return send(res, 404, 'text/plain', 'not found');
    }
  } catch (e) {
    return sendJson(res, 400, { error: e.message });
  }
}

// --- serve ----------------------------------------------------------------------------------

const providerHandler = provider.callback();
server.on('request', (req, res) => {
  const path = new URL(req.url, issuer).pathname;
  let handled;
  if (path.startsWith('/__test/')) handled = testHook(req, res, path);
  else if (path.startsWith('/interaction/')) handled = interaction(req, res, path);
  else return providerHandler(req, res);
  return handled.catch((e) => {
    console.error('oidc-provider:', path, e);
    if (!res.headersSent) sendJson(res, 400, { error: e.name, error_description: e.message });
  });
});

const stop = () => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('close', stop);
process.stdin.on('end', stop);
process.stdin.resume();

process.stdout.write(`oidc-provider listening on ${issuer}\n`);

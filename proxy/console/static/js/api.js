// The admin JSON API, as the console calls it. The token lives in
// sessionStorage (this tab only, gone when it closes) and travels only in the
// Authorization header: never in a URL, a cookie or the page.

const KEY = 'paygate.admin.token';

/** An answer other than 2xx; status 0 is a network failure. */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

// signOuts counts the sign-outs (session.clear): an answer to a read made
// before one is not handed to the page, which a sign-out emptied of all it
// had read with the token.
let signOuts = 0;

export const session = {
  token() { return sessionStorage.getItem(KEY) || ''; },
  save(token) { sessionStorage.setItem(KEY, token); },
  clear() { sessionStorage.removeItem(KEY); signOuts++; },
};

/** signedOut is the error of a call whose session ended while it was on its way. */
function signedOut() { return new ApiError(401, 'signed out', null); }

let unauthorized = () => {};

/**
 * headerBytes is s's UTF-8 bytes, one character each, as a header value.
 * fetch sends each character of a header as one byte and refuses any above
 * U+00FF, while paygate compares the token's UTF-8 (as curl sends it): a
 * token with an "ü" was refused, one with Cyrillic or Chinese never sent.
 */
function headerBytes(s) {
  return String.fromCharCode(...new TextEncoder().encode(s));
}

/**
 * f runs, with the error, when the stored token is refused (rotated, or never
 * valid) or the admin API is off (paygate restarted without a token).
 */
export function onUnauthorized(f) { unauthorized = f; }

/**
 * api calls an admin endpoint and returns its JSON. State-changing methods
 * carry the CSRF header the admin listener requires; body, when given, is
 * sent as JSON.
 */
export async function api(path, { method = 'GET', token = session.token(), body } = {}) {
  const headers = { Accept: 'application/json', Authorization: 'Bearer ' + headerBytes(token) };
  if (method !== 'GET' && method !== 'HEAD') headers['X-Paygate-CSRF'] = '1';
  const init = { method, headers, credentials: 'omit', cache: 'no-store', redirect: 'error' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const session0 = signOuts;
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (session0 !== signOuts) throw signedOut();
    throw new ApiError(0, 'paygate did not answer (' + e.message + ')', null);
  }
  let answer = null;
  try { answer = await res.json(); } catch { /* not JSON: the status says enough */ }
  // Signed out while it was on its way: what it read (orders, OpenIDs)
  // stays out of the page, and its refusal signs nobody out again. A
  // decision sent before the sign-out was made all the same; the next
  // sign-in shows it.
  if (session0 !== signOuts) throw signedOut();
  if (!res.ok) {
    const e = answer && answer.error;
    const msg = (typeof e === 'string' ? e : e && e.message) || ('HTTP ' + res.status);
    const err = new ApiError(res.status, msg, answer);
    const refused = res.status === 401 || adminDisabled(err);
    if (refused && token && token === session.token()) unauthorized(err);
    throw err;
  }
  return answer;
}

/** The code of the admin API's answer while paygate has no admin token. */
export const ADMIN_DISABLED = 'admin_disabled';

/** adminDisabled reports an answer that says the admin API is off. */
export function adminDisabled(err) {
  return err instanceof ApiError && err.body !== null && typeof err.body === 'object' && err.body.code === ADMIN_DISABLED;
}

/** qs builds a query string from the non-empty values of params. */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  }
  const s = u.toString();
  return s ? '?' + s : '';
}

/**
 * allPages reads every page of a paged admin list (path, with params, the
 * list under key), following next_before until it is null, and returns the
 * whole list: a list is capped per page, and the last pages hold its oldest
 * entries (the held orders nearest their deadline).
 */
export async function allPages(path, params, key) {
  let all = [];
  let before = '';
  for (;;) {
    const page = await api(path + qs({ ...params, before }));
    all = all.concat(page[key]);
    if (!page.next_before) return all;
    before = page.next_before;
  }
}

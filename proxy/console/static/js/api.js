// The admin JSON API, as the console calls it. The token lives in
// sessionStorage (this tab only, gone when it closes) and travels only in the
// Authorization header: never in a URL, a cookie or the page.

const KEY = 'paygate.admin.token';

/**
 * An answer other than 2xx; status 0 is a network failure, or no answer
 * within the call's bound (timedOut: paygate may still be working on it).
 * paygate is true when paygate itself gave the answer (fromPaygate), not a
 * proxy or ingress in front of it.
 */
export class ApiError extends Error {
  constructor(status, message, body, timedOut = false) {
    super(message);
    this.status = status;
    this.body = body;
    this.timedOut = timedOut;
    this.paygate = false;
  }
}

/** The X-Request-Id paygate sets on every admin API answer: req_ and 24 hex digits. */
const PAYGATE_REQUEST_ID = /^req_[0-9a-f]{24}$/;

/**
 * fromPaygate reports whether a non-2xx answer (res, its JSON or null) is
 * paygate's own: its request id (X-Request-Id, of paygate's form) and its
 * JSON error ({"error": …}). A 502 or 504 of an ingress in front of the
 * admin listener (in HTML, or JSON with an id of the ingress's own) is not:
 * paygate never saw that request.
 */
function fromPaygate(res, answer) {
  return PAYGATE_REQUEST_ID.test(res.headers.get('X-Request-Id') || '') &&
    answer !== null && typeof answer === 'object' && answer.error !== undefined;
}

/**
 * timeouts bound each call, in milliseconds, from its start to its whole
 * answer read: a read (GET), and a change (approve, reject, resolve,
 * resend), which may wait for WeChat Pay (three attempts of 5 s). fetch
 * has none of its own: an answer that never came (a hung admin listener
 * behind a proxy, a connection half-open after a phone changed networks)
 * left the page on "Loading…", or a decision on its way, for ever.
 * Tests shorten them.
 */
export const timeouts = { read: 30000, change: 60000 };

// signOuts counts the sign-outs (session.clear): an answer to a read made
// before one is not handed to the page, which a sign-out emptied of all it
// had read with the token.
let signOuts = 0;

export const session = {
  token() { return sessionStorage.getItem(KEY) || ''; },
  save(token) { sessionStorage.setItem(KEY, token); },
  clear() { sessionStorage.removeItem(KEY); signOuts++; },
};

const OPERATOR_KEY = 'paygate.console.operator';

/** The admin API's bound on an operator's name, in characters (code points). */
export const OPERATOR_MAX = 128;

/**
 * operatorName is s as the admin API takes an operator's name: one line
 * (control characters, which it refuses, and runs of white space made one
 * space), trimmed, at most OPERATOR_MAX characters.
 */
export function operatorName(s) {
  const one = String(s ?? '').replace(/[\u0000-\u001f\u007f-\u009f\s]+/g, ' ').trim();
  return Array.from(one).slice(0, OPERATOR_MAX).join('').trim();
}

/**
 * operator is the name of whoever decides from this browser. The admin
 * token is one for the shop, so the audit chain tells its managers apart
 * only by the name each decision carries (the request's remote address is
 * a TLS proxy's behind one). It is kept in the browser's local storage:
 * asked once, kept across tabs, sign-outs and restarts of the browser,
 * shown in the bar and changed there. It is no secret, and "" is no name.
 */
export const operator = {
  name() {
    try { return operatorName(localStorage.getItem(OPERATOR_KEY)); } catch { return ''; }
  },
  save(name) {
    const n = operatorName(name);
    try {
      if (n) localStorage.setItem(OPERATOR_KEY, n);
      else localStorage.removeItem(OPERATOR_KEY);
    } catch { /* storage refused (a private window's quota): the name is not kept */ }
    return n;
  },
  key: OPERATOR_KEY,
};

/**
 * audited is body (an object, or undefined) with the operator's name (name,
 * by default the one kept), as every call the audit chain records carries
 * it (approve, reject, resolve, resend, resume): undefined when there is
 * neither.
 */
export function audited(body, name = operator.name()) {
  if (!name) return body;
  return { ...(body || {}), operator: name };
}

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
  // The bound covers the body too: headers that came and a body that
  // stalls (a connection cut mid-answer) hang res.json() as well.
  const limit = method === 'GET' || method === 'HEAD' ? timeouts.read : timeouts.change;
  const abort = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; abort.abort(); }, limit);
  init.signal = abort.signal;
  const noAnswer = (e) => (timedOut
    ? new ApiError(0, `paygate did not answer within ${Math.max(1, Math.round(limit / 1000))} s`, null, true)
    : new ApiError(0, 'paygate did not answer (' + e.message + ')', null));
  let res;
  let answer = null;
  try {
    try {
      res = await fetch(path, init);
    } catch (e) {
      if (session0 !== signOuts) throw signedOut();
      throw noAnswer(e);
    }
    try {
      answer = await res.json();
    } catch (e) {
      // Not JSON (a SyntaxError): the status says enough. A body not all
      // read within the bound, or cut short (a TypeError: the connection
      // dropped after the headers), is no answer: read as "not JSON", a
      // 200 handed the page null, and a decision paygate made said
      // "Could not reject …: Cannot read properties of null".
      if (timedOut || !(e instanceof SyntaxError)) {
        if (session0 !== signOuts) throw signedOut();
        if (timedOut || (e && e.name === 'AbortError')) throw noAnswer(e);
        throw new ApiError(0, "paygate's answer was cut short (" + e.message + ')', null);
      }
    }
  } finally {
    clearTimeout(timer);
  }
  // Signed out while it was on its way: what it read (orders, OpenIDs)
  // stays out of the page, and its refusal signs nobody out again. A
  // decision sent before the sign-out was made all the same; the next
  // sign-in shows it.
  if (session0 !== signOuts) throw signedOut();
  if (!res.ok) {
    const e = answer && answer.error;
    const msg = (typeof e === 'string' ? e : e && e.message) || ('HTTP ' + res.status);
    const err = new ApiError(res.status, msg, answer);
    err.paygate = fromPaygate(res, answer);
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

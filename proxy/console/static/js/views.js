// The console's panels. Each render(panel, ctx) loads what it shows from the
// admin API and draws it; ctx.notice(text, kind) reports an outcome and
// ctx.changed() refreshes the summary after a decision.

import { api, qs, allPages, ApiError, operator, operatorName, audited } from './api.js';
import { h, clear, money, llmCost, when, whenCell, status, short, table, card, empty } from './dom.js';
import { lineChart } from './chart.js';

const STATUSES = ['approval_required', 'needs_review', 'creating', 'awaiting_payment', 'paid', 'refunding',
  'partially_refunded', 'refunded', 'rejected', 'closed', 'expired'];

const item = (o) => `${o.sku} × ${o.quantity}`;
const loading = (panel) => clear(panel).append(empty('Loading…'));

// failed says in panel why its read failed; one that got no answer (the
// connection failed, or nothing came within the read's bound) says that
// Refresh asks again.
function failed(panel, err) {
  if (err instanceof ApiError && err.status === 401) return; // signed out already
  const again = err instanceof ApiError && err.status === 0 ? '; Refresh asks again.' : '';
  clear(panel).append(h('p', { class: 'error', text: 'Could not load: ' + err.message + again }));
}

// askName is the field in which a decision (an approval, a rejection, a
// resolution, a resend, a webhook resume) asks for the name of whoever
// decides, shown while none is kept in this browser (operator); key names
// what it is for (data-operator-for). The audit tells the shop's managers
// apart by that name alone. The bar shows and hides every such field as
// the name is kept, changed or cleared (main.js's showOperator).
function askName(key) {
  return h('input', { type: 'text', class: 'ask-name', placeholder: 'your name (audited)', maxlength: 128, size: 20, hidden: operator.name() !== '',
    autocomplete: 'name', spellcheck: 'false', 'aria-label': 'Your name, recorded with the decision', dataset: { operatorFor: key } });
}

// keepName keeps the name typed in who (askName's field), while it asks,
// as the bar's form does: one line, cut to 128 characters; the field is
// emptied (a name changed in the bar later is not undone by it). It
// returns the name the decision is sent with: the one typed, even where
// the browser refuses to keep it, else the one kept.
function keepName(who, ctx) {
  const typed = who.hidden ? '' : operatorName(who.value);
  if (!typed) return operator.name();
  operator.save(typed);
  who.value = '';
  ctx.named();
  return typed;
}

// ---------------------------------------------------------------- approvals

// approvals draws the queue: list when given (a fresh read of every page),
// else read here.
//
// The panel is aria-busy while its read is on its way: a screen reader
// waits for the queue instead of reading "Loading…", and whatever drives
// the page (a test, an extension) can tell a queue drawn from one coming.
export async function approvals(panel, ctx, list) {
  if (!list) {
    loading(panel);
    panel.setAttribute('aria-busy', 'true');
    try {
      // Every page: the oldest held orders, the nearest their deadline, come last.
      list = await allPages('/admin/api/approvals', { limit: 1000 }, 'approvals');
    } catch (e) { return failed(panel, e); } finally { panel.removeAttribute('aria-busy'); }
  }
  clear(panel).append(
    h('h2', { text: 'Waiting for a manager' }),
    h('p', { class: 'hint', text: 'Orders above the approval threshold wait here. Approving opens the WeChat Pay order at once; the user gets the payment on their next message. Rejecting closes it.' }));
  if (list.length === 0) {
    panel.append(empty('Nothing waits for approval.'));
    return;
  }
  const cols = [
    { th: 'Order', td: (o) => h('span', { class: 'mono', text: o.order_no }) },
    { th: 'User', td: (o) => o.user },
    { th: 'Client', td: (o) => o.client },
    { th: 'Item', td: (o) => h('span', {}, item(o), h('br'), h('small', { class: 'hint', text: o.description })) },
    { th: 'Amount', class: 'num', td: (o) => h('strong', { text: money(o.amount_fen, o.currency) }) },
    { th: 'Created', class: 'time', td: (o) => whenCell(o.created_at) },
    // Past its deadline (payments.rules.approval_ttl) the order expires
    // and can no longer be approved: the manager needs to see it coming.
    { th: 'Deadline', class: 'time', td: (o) => h('span', { dataset: { deadline: o.expires_at || '' } }, whenCell(o.expires_at)) },
    { th: '', td: (o) => h('span', { class: 'actions' },
      h('button', { type: 'button', class: 'small', dataset: { action: 'approve', orderNo: o.order_no }, onclick: (ev) => ask(ev, o, true) }, 'Approve'),
      h('button', { type: 'button', class: 'small danger', dataset: { action: 'reject', orderNo: o.order_no }, onclick: (ev) => ask(ev, o, false) }, 'Reject')) },
  ];
  const t = table(cols, list, (o) => ({ dataset: { orderNo: o.order_no } }));
  panel.append(t);
  markLapsed(panel);
  clearInterval(lapseTimer);
  lapseTimer = setInterval(() => markLapsed(panel), 1000);

  // ask shows a confirmation row under the order; a decision takes two clicks.
  // A rejection asks for an optional reason, which the audit chain records
  // with the decision, and with the name of whoever decides (operator), which
  // the row says; with no name kept in this browser, the row asks for it.
  function ask(ev, o, approve) {
    const tr = ev.target.closest('tr');
    t.querySelectorAll('tr.confirm').forEach((r) => r.remove());
    const verb = approve ? 'Approve' : 'Reject';
    const reason = approve ? null : h('input', { type: 'text', class: 'reason', placeholder: 'reason (optional, audited)', maxlength: 1000, size: 32,
      'aria-label': 'Reason for the rejection', dataset: { reasonFor: o.order_no } });
    const named = operator.name();
    const who = askName(o.order_no);
    const row = h('tr', { class: 'confirm', dataset: { confirmFor: o.order_no } },
      h('td', { colspan: cols.length },
        // The user id (a bot's, text from outside) is isolated: a right-to-left
        // mark in it turned the rest of the sentence around.
        h('span', {}, `${verb} ${o.order_no} for ${money(o.amount_fen, o.currency)} (`, h('bdi', { text: o.user }), ')? ',
          approve ? 'WeChat Pay opens the order now. ' : 'The order is closed for good. ',
          h('span', { class: 'named-as', hidden: !named }, 'Recorded as ', h('bdi', { text: named }), '\'s decision. ')),
        who, ' ',
        reason, reason ? ' ' : null,
        h('span', { class: 'actions' },
          h('button', { type: 'button', class: 'small' + (approve ? '' : ' danger'), dataset: { action: 'confirm', orderNo: o.order_no },
            onclick: (e) => decide(e, o, approve, reason ? reason.value.trim() : '', keepName(who, ctx)) },
          `Confirm ${verb.toLowerCase()}`),
          h('button', { type: 'button', class: 'small ghost', dataset: { action: 'cancel' }, onclick: () => row.remove() }, 'Cancel'))));
    tr.after(row);
    if (!who.hidden) who.focus();
    else if (reason) reason.focus();
  }

  async function decide(ev, o, approve, reason, name) {
    t.querySelectorAll('button').forEach((b) => { b.disabled = true; });
    const verb = approve ? 'approve' : 'reject';
    // An approval waits for WeChat Pay to open the order, seconds on a bad
    // day: the page said nothing meanwhile, its buttons greyed out as if
    // it had stopped. The confirmation says it waits.
    ev.currentTarget.textContent = `${approve ? 'Approving' : 'Rejecting'}: waiting for paygate${approve ? ' and WeChat Pay' : ''}…`;
    const body = audited(reason ? { reason } : undefined, name);
    try {
      const d = await api(`/admin/api/approvals/${encodeURIComponent(o.order_no)}/${verb}`, { method: 'POST', body });
      const by = body && body.operator ? [' The audit records it as ', h('bdi', { text: body.operator }), '\'s decision.'] : [];
      ctx.notice([`${approve ? 'Approved' : 'Rejected'} ${o.order_no}: the order is now ${d.order.status.replace(/_/g, ' ')}.`, ...by], 'ok');
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
      if (e instanceof ApiError && e.status === 0) {
        const text = await unanswered(o, approve, e);
        if (text === null) return; // signed out meanwhile
        ctx.notice(text, 'bad');
      } else {
        const [text, kind] = decisionFound(o, approve, e);
        ctx.notice(text, kind);
      }
    }
    ctx.changed();
    await approvals(panel, ctx);
  }
}

const words = (st) => String(st || '').replace(/_/g, ' ');

let lapseTimer = null;

// markLapsed marks the held orders in panel whose approval deadline has
// passed, by this browser's clock, now and (called every second) as each
// passes while the queue is open: such an order stays in the queue until
// the sweep expires it, looking like any other until a click was refused.
// The buttons stay: paygate decides, and a decision on it expires it at
// once, which a clock behind or ahead of paygate's cannot get wrong.
function markLapsed(panel) {
  for (const el of panel.querySelectorAll('[data-deadline]:not(.lapsed)')) {
    const at = Date.parse(el.dataset.deadline);
    if (Number.isFinite(at) && Date.now() >= at) {
      el.classList.add('lapsed');
      el.append(h('div', { class: 'review', text: 'Passed: it can no longer be approved.' }));
    }
  }
}

// decisionFound says, in a manager's words, what a refused or half-done
// decision on o found, and how to show it ([text, notice kind]). A page
// open for a while goes stale: another manager, tab or replica decides,
// or the approval deadline passes. The API then answers 409 with the order
// as it stands, and its own words ("order is not awaiting approval: PG… is
// awaiting_payment") left the manager to work out whether the order is now
// payable. A held order leaves the queue only by an approval (creating,
// awaiting payment, and on from there), a rejection, its expiry (at its
// deadline, or before it when another order of the same purchase took its
// place), or review (WeChat Pay reported money on it). A 502
// with the order is an approval made whose WeChat Pay order did not open
// (yet), or that WeChat Pay refused and whose close paygate could not
// record (still creating, until the reconciler closes it: no payment comes
// by waiting; a 503 when the store lost its data, which refuses the
// reconciler too until the replicas restart: its advice is told instead),
// and a 5xx with the order whose error begins "approved, but " one
// whose WeChat Pay answer was not recorded: approved, not "could not
// approve".
function decisionFound(o, approve, e) {
  const verb = approve ? 'approve' : 'reject';
  const no = o.order_no;
  const now = e instanceof ApiError && e.body && e.body.order ? e.body.order : null;
  if (now && e.status === 409) {
    const by = '(by another manager, another console or an earlier click)';
    const done = approve ? 'approved' : 'rejected';
    if (now.status === 'expired' && Date.parse(now.updated_at) < Date.parse(now.expires_at)) {
      // Expired before its deadline: another ask of the same purchase
      // took its place (payments' "superseded"), not the deadline.
      return [`${no} expired before anyone decided: another order of the same purchase took its place, so it can no longer be ${done}; nothing changed.`, 'bad'];
    }
    if (now.status === 'expired') {
      return [`${no} expired before anyone decided: its approval deadline, ${when(now.expires_at)}, passed, so it can no longer be ${done}; the user is told it expired.`, 'bad'];
    }
    if (now.status === 'needs_review') {
      return [`${no} is in review now${now.review_reason ? ` (${now.review_reason})` : ''}, so it can no longer be ${done}: nothing changed; resolve it from its order.`, 'bad'];
    }
    if (now.status === 'rejected') {
      return [`${no} was already rejected ${by}: nothing changed; no WeChat Pay order was opened for it.`, approve ? 'bad' : 'ok'];
    }
    if (now.status !== 'approval_required') {
      return [`${no} was already approved ${by}: it is ${words(now.status)} now; nothing changed.`, approve ? 'ok' : 'bad'];
    }
  }
  const refused = /^approved, but WeChat Pay refused the order, and its close was not recorded(?: \(([^)]*)\))?: /;
  const r = now && approve && now.status === 'creating' && (e.status === 502 || e.status === 503) ? refused.exec(e.message) : null;
  if (r) {
    // Refused for good; the order is creating only because its close was
    // not recorded: no payment opens by waiting for it. A store that lost
    // its data (its advice in parentheses) refuses the reconciler too.
    return [`Approved ${no}, but WeChat Pay refused its order (${e.message.slice(r[0].length)}), and paygate could not record it closed; it is ${words(now.status)} now: `
      + (r[1] ? `${r[1]}.` : "paygate's reconciler asks WeChat Pay again, and closes it if WeChat Pay refuses it again."), 'bad'];
  }
  if (now && e.status === 502 && approve) {
    const why = e.message.replace(/^approved, but WeChat Pay did not open the order: /, '');
    return [`Approved ${no}, but WeChat Pay did not open its order (${why}); it is ${words(now.status)} now: `
      + (now.status === 'creating' ? 'paygate keeps asking WeChat Pay, and the user gets the payment once it opens.' : 'the user cannot pay it.'), 'bad'];
  }
  if (now && approve && e.status >= 500 && e.message.startsWith('approved, but ')) {
    // Approved, and WeChat Pay asked, but its answer not recorded (the store failed).
    return [`Approved ${no}, but ${e.message.slice('approved, but '.length)}; it is ${words(now.status)} now, and the user gets the payment once paygate has recorded it.`, 'bad'];
  }
  if (e instanceof ApiError && e.status === 404) return [`${no} is not an order paygate knows (any more): nothing was ${verb}d.`, 'bad'];
  return [`Could not ${verb} ${no}: ${e.message}.`, 'bad'];
}

// unanswered says what became of a decision on o whose answer never came
// (the connection dropped, a proxy in front of paygate gave up): paygate
// may have made it all the same. It said "Could not reject PG…: paygate
// did not answer", of an order then gone from the queue because it was
// rejected. It asks paygate for the order as it now stands; null when the
// session ended meanwhile.
async function unanswered(o, approve, e) {
  const no = o.order_no;
  const noun = approve ? 'approval' : 'rejection';
  let now;
  try {
    now = (await api('/admin/api/orders/' + encodeURIComponent(no))).order;
  } catch (e2) {
    if (e2 instanceof ApiError && e2.status === 401) return null;
    return `No answer came to the ${noun} of ${no} (${e.message}): it may have been made or not; Refresh shows the queue as paygate has it.`;
  }
  const is = `${no} is ${words(now.status)} now`;
  if (now.status === 'approval_required' && e.timedOut) {
    // The console stopped waiting; paygate may still be at it (an
    // approval waits for WeChat Pay), or the call may be stuck in front
    // of it: "nothing was decided" could be belied a moment later.
    return `No answer came to the ${noun} of ${no} (${e.message}), and ${is}, still waiting for a decision: paygate may still make it, or it may never have arrived; Refresh shows the queue as paygate has it.`;
  }
  if (now.status === 'approval_required') return `No answer came to the ${noun} of ${no} (${e.message}), and ${is}, still waiting for a decision: nothing was decided.`;
  const made = approve ? !['rejected', 'expired', 'needs_review'].includes(now.status) : now.status === 'rejected';
  return made
    ? `No answer came to the ${noun} of ${no} (${e.message}), but it was made: ${is}.`
    : `No answer came to the ${noun} of ${no} (${e.message}); ${is}.`;
}

// approvalsUpdate redraws the queue shown in panel with list, the summary's
// periodic read of it, when the orders differ: another manager, console or
// replica decided, an order expired, a new one came in. Without it a page
// left open kept a decided order's buttons and never showed a new order
// until Refresh, while the badge counted it. Nothing is redrawn while the
// manager is in the middle of a decision (a confirmation open, a decision
// on its way); the next refresh catches up.
export function approvalsUpdate(panel, ctx, list) {
  if (panel.hidden || panel.querySelector('tr.confirm, button:disabled')) return;
  const shown = [...panel.querySelectorAll('tbody tr[data-order-no]')].map((r) => r.dataset.orderNo).join();
  if (shown === list.map((o) => o.order_no).join()) return;
  approvals(panel, ctx, list);
}

// ------------------------------------------------------------------- orders

const orderFilter = { status: '', user: '', search: '' };

export async function orders(panel, ctx) {
  const st = h('select', { id: 'orders-status', 'aria-label': 'Status' },
    h('option', { value: '', text: 'every status' }),
    STATUSES.map((s) => h('option', { value: s, text: s.replace(/_/g, ' '), selected: s === orderFilter.status })));
  const user = h('input', { id: 'orders-user', placeholder: 'OpenID', value: orderFilter.user, size: 18 });
  const search = h('input', { id: 'orders-search', type: 'search', placeholder: 'PG…', value: orderFilter.search, size: 26 });
  const list = h('div');
  const detail = h('div', { class: 'detail', hidden: true });
  const apply = (e) => {
    if (e) e.preventDefault();
    Object.assign(orderFilter, { status: st.value, user: user.value.trim(), search: search.value.trim() });
    load();
  };
  st.addEventListener('change', apply);
  clear(panel).append(
    h('h2', { text: 'Orders' }),
    h('form', { class: 'tools', onsubmit: apply },
      // Every field has a label a screen reader announces: a placeholder
      // is not one (it is gone once the field has text).
      h('label', { for: 'orders-status', text: 'Status' }), st,
      h('label', { for: 'orders-user', text: 'User' }), user,
      h('label', { for: 'orders-search', text: 'Order number' }), search,
      h('button', { type: 'submit', id: 'orders-apply' }, 'Show')),
    list, detail);

  let rows = [];
  let before = '';
  // asked numbers the loads: only the answer to the latest is drawn. On a
  // slow link an answer for the filter before the current one came last
  // and was appended to the current one's orders, and a double click on
  // "Load older" appended the same page twice.
  let asked = 0;
  async function load(more = false) {
    const mine = ++asked;
    if (!more) { rows = []; before = ''; loading(list); }
    // An order number as the search: that order, asked for by its number
    // whatever its age. The list holds the newest 500 at first, and a
    // customer's older order was "not matched" by its own number. Part of
    // a number (a 404) filters the loaded orders, as before.
    const q = orderFilter.search;
    if (!more && q) {
      try {
        const d = await api('/admin/api/orders/' + encodeURIComponent(q));
        if (mine !== asked) return;
        rows = [d.order];
        draw(false);
        return;
      } catch (e) {
        if (mine !== asked) return;
        if (!(e instanceof ApiError && e.status === 404)) return failed(list, e);
      }
    }
    let page;
    try {
      page = await api('/admin/api/orders' + qs({ status: orderFilter.status, user: orderFilter.user, limit: 500, before }));
    } catch (e) {
      if (mine !== asked) return undefined;
      // An older page that failed (a network blip) leaves the orders
      // loaded and the button to try again: the list was replaced by the
      // error, and only Refresh, back at the first page, got them back.
      if (more && !(e instanceof ApiError && e.status === 401)) return draw(true, e);
      return failed(list, e);
    }
    if (mine !== asked) return;
    rows = rows.concat(page.orders);
    // The API's own cursor: created_at is to the second, and paging by it
    // would skip the orders of that second that did not fit on this page.
    before = page.next_before || '';
    draw(before !== '');
  }

  function draw(hasMore, olderFailed) {
    const q = orderFilter.search.toLowerCase();
    const shown = q ? rows.filter((o) => o.order_no.toLowerCase().includes(q)) : rows;
    clear(list);
    const review = rows.filter((o) => o.status === 'needs_review').length;
    if (review > 0) list.append(h('p', { class: 'notice bad', text: `${review} order${review === 1 ? '' : 's'} need${review === 1 ? 's' : ''} review (highlighted): money and order state disagree; see the reason and the history.` }));
    if (shown.length === 0) {
      list.append(empty(q ? `No order has the number "${orderFilter.search}", and no loaded order's number contains it.` : 'No orders.'));
    } else {
      list.append(table([
        // The order number is a button, so Tab reaches each order and Enter
        // opens it (its click reaches the row's handler): a row alone
        // answers the mouse only.
        { th: 'Order', td: (o) => h('button', { type: 'button', class: 'link mono', title: 'Show this order', text: o.order_no }) },
        { th: 'Status', td: (o) => h('span', {}, status(o.status), o.review_reason ? h('div', { class: 'review', text: o.review_reason }) : null) },
        { th: 'User', td: (o) => o.user },
        { th: 'Client', td: (o) => o.client },
        { th: 'Item', td: item },
        { th: 'Amount', class: 'num', td: (o) => money(o.amount_fen, o.currency) },
        { th: 'Refunded', class: 'num', td: (o) => (o.refunded_fen ? money(o.refunded_fen, o.currency) : '') },
        { th: 'Created', class: 'time', td: (o) => whenCell(o.created_at) },
        { th: 'Updated', class: 'time', td: (o) => whenCell(o.updated_at) },
      ], shown, (o) => ({
        class: 'clickable' + (o.status === 'needs_review' ? ' needs-review' : ''),
        dataset: { orderNo: o.order_no, status: o.status },
        onclick: (ev) => {
          list.querySelectorAll('tr.selected').forEach((r) => r.classList.remove('selected'));
          ev.currentTarget.classList.add('selected');
          showOrder(detail, o, ctx, () => load());
        },
      })));
    }
    if (olderFailed) list.append(h('p', { class: 'error', role: 'alert', text: 'Could not load older orders: ' + olderFailed.message }));
    if (hasMore) list.append(h('p', {}, h('button', { type: 'button', class: 'ghost', id: 'orders-older', onclick: () => load(true) }, 'Load older orders')));
  }
  await load();
}

// showOrder draws o's detail (ctx as a panel's); resolved, when given, is
// called once the order was taken out of review here, so the list shows its
// new state.
async function showOrder(detail, o, ctx, resolved) {
  detail.hidden = false;
  const hist = h('div', { id: 'order-history' }, empty('Reading the audit chain…'));
  clear(detail).append(
    h('h3', {}, 'Order ', h('span', { class: 'mono', text: o.order_no })),
    h('dl', { class: 'kv' },
      kv('Status', h('span', {}, status(o.status), o.review_reason ? h('span', { class: 'review', text: ' — ' + o.review_reason }) : null)),
      kv('Item', `${item(o)} — ${o.description || ''}`),
      kv('Amount', money(o.amount_fen, o.currency)),
      kv('Refunded', money(o.refunded_fen || 0, o.currency)),
      kv('User', o.user), kv('Client', o.client), kv('App id', o.app_id || '—'),
      kv('Pay method', o.pay_method || '—'),
      kv('WeChat Pay transaction', o.transaction_id || '—'),
      kv('Created', when(o.created_at)), kv('Expires', when(o.expires_at)), kv('Paid', when(o.paid_at)),
      kv('Updated', when(o.updated_at))),
    o.status === 'needs_review' ? resolveControl(detail, o, ctx, resolved) : null,
    resendControl(o, ctx),
    h('h3', { text: 'History (audit chain)' }), hist);
  try {
    const { records, scanned, complete } = await orderHistory(o.order_no);
    clear(hist);
    if (records.length === 0) hist.append(empty('No audit record names this order yet (the audit worker may still be appending).'));
    else hist.append(auditTable(records));
    hist.append(h('p', { class: 'legend', text: complete
      ? `Searched the whole chain (${scanned} records).`
      : `Searched the latest ${scanned} records; older ones were not read.` }));
  } catch (e) { failed(hist, e); }
}

function kv(k, v) { return [h('dt', { text: k }), h('dd', {}, v)]; }

// resolveControl takes an order out of review, which nothing but a person
// does: settled as paid (the merchant hears order.paid and delivers) or
// closed (nothing to deliver; refund any money on the merchant platform
// first). The reason is required and audited. paygate refuses what would
// move money wrongly (409 with the reason shown here); on success the
// detail is drawn again with the order as it now is.
function resolveControl(detail, o, ctx, resolved) {
  const result = h('span', { id: 'resolve-result', class: 'legend' });
  const to = h('select', { id: 'resolve-status', 'aria-label': 'Resolve as' },
    h('option', { value: 'closed', text: 'closed: nothing to deliver' }),
    h('option', { value: 'paid', text: 'paid: the merchant delivers' }));
  const reason = h('input', { id: 'resolve-reason', type: 'text', placeholder: 'reason (required, audited)', maxlength: 1000, size: 32,
    'aria-label': 'Reason for the resolution' });
  const who = askName('resolve ' + o.order_no);
  const button = h('button', { type: 'button', class: 'small danger', dataset: { action: 'resolve', orderNo: o.order_no } }, 'Resolve');
  button.onclick = async () => {
    if (!reason.value.trim()) {
      result.textContent = 'Say why: the audit records the reason.';
      reason.focus();
      return;
    }
    const name = keepName(who, ctx);
    button.disabled = true;
    result.textContent = 'Resolving…';
    try {
      const d = await api(`/admin/api/orders/${encodeURIComponent(o.order_no)}/resolve`,
        { method: 'POST', body: audited({ status: to.value, reason: reason.value.trim() }, name) });
      showOrder(detail, d.order, ctx, resolved);
      detail.querySelector('h3').after(h('p', { id: 'resolve-done', class: 'notice ok', text: `Resolved: the order is now ${d.order.status.replace(/_/g, ' ')}.` }));
      if (resolved) resolved();
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
      if (e instanceof ApiError && e.status === 0) {
        // No answer came (the connection dropped): paygate may have
        // resolved it all the same, which "Not resolved: paygate did not
        // answer" denied. Ask for the order as it stands.
        let now = null;
        try {
          now = (await api('/admin/api/orders/' + encodeURIComponent(o.order_no))).order;
        } catch (e2) {
          if (e2 instanceof ApiError && e2.status === 401) return;
        }
        if (now && now.status !== 'needs_review') {
          showOrder(detail, now, ctx, resolved);
          detail.querySelector('h3').after(h('p', { id: 'resolve-done', class: 'notice ok',
            text: `No answer came to the resolution of ${o.order_no} (${e.message}), but it is out of review: it is ${words(now.status)} now.` }));
          if (resolved) resolved();
          return;
        }
        if (now && e.timedOut) {
          // The console stopped waiting; paygate may still resolve it.
          result.textContent = `No answer came (${e.message}), and the order is still in review: paygate may still resolve it, or the resolution may never have arrived; open the order again to see.`;
        } else {
          result.textContent = now
            ? `Not resolved: no answer came (${e.message}), and the order is still in review; nothing changed.`
            : `No answer came (${e.message}): it may have been resolved or not; open the order again to see.`;
        }
        button.disabled = false;
        return;
      }
      const now = e instanceof ApiError && e.body && e.body.order;
      if (e.status === 409 && now && now.status !== 'needs_review') {
        // Resolved meanwhile (another operator, console or click): say so
        // and show the order as it now is, not as still in review with a
        // Resolve button (the API's "order is not in review: PG… is
        // closed" left the operator to guess whose resolution stood).
        showOrder(detail, now, ctx, resolved);
        detail.querySelector('h3').after(h('p', { id: 'resolve-done', class: 'notice bad',
          text: `${o.order_no} was already taken out of review (by another operator, another console or an earlier click): it is ${words(now.status)} now; nothing changed.` }));
        if (resolved) resolved();
        return;
      }
      const st = now ? ` (the order is ${words(now.status)})` : '';
      result.textContent = `Not resolved: ${e.message}${st}`;
      button.disabled = false;
    }
  };
  return h('p', { class: 'actions' }, 'Resolve as ', to, ' ', who, ' ', reason, ' ', button, ' ', result);
}

// resendControl sends the order's current state to the merchant's webhook
// endpoint again, for an event given up after the retry window. It moves no
// money, but a merchant deduplicating by event id processes a new id again
// (order.paid: delivers the goods again), so paygate refuses when nothing
// was lost (409, with the reason shown here) and only then does the control
// offer to send it anyway as a new event (force=true), for a merchant that
// lost its records. Clicking again while a resend waits queues nothing:
// paygate names the event already queued. The result names every event the
// call queued (resendSaid).
function resendControl(o, ctx) {
  const result = h('span', { id: 'resend-result', class: 'legend' });
  const button = h('button', { type: 'button', class: 'small', dataset: { action: 'resend', orderNo: o.order_no } },
    'Send to the merchant again');
  const force = h('button', { type: 'button', class: 'small ghost', hidden: true, dataset: { action: 'resend-force', orderNo: o.order_no },
    title: 'The merchant processes it as a new event: for a merchant that lost its records' }, 'Send anyway, as a new event');
  const who = askName('resend ' + o.order_no);
  const send = async (forced) => {
    const name = keepName(who, ctx);
    button.disabled = force.disabled = true;
    force.hidden = true;
    result.textContent = 'Sending…';
    try {
      const d = await api(`/admin/api/orders/${encodeURIComponent(o.order_no)}/webhook${forced ? '?force=true' : ''}`, { method: 'POST', body: audited(undefined, name) });
      result.textContent = resendSaid(d);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
      if (e instanceof ApiError && e.status === 0) {
        // No answer: paygate may have queued it all the same. A resend of
        // the same state queues nothing twice, so asking again is safe; a
        // forced one queues a new event every time, so it is not offered.
        result.textContent = forced
          ? `No answer came (${e.message}): the new event may have been queued or not; the Webhooks tab shows what waits for delivery.`
          : `No answer came (${e.message}): it may have been queued or not; sending again queues nothing twice, and the Webhooks tab shows what waits.`;
        return;
      }
      result.textContent = `Not sent: ${e.message}`;
      force.hidden = forced || !(e instanceof ApiError && e.body && e.body.can_force);
    } finally {
      button.disabled = force.disabled = false;
    }
  };
  button.onclick = () => send(false);
  force.onclick = () => send(true);
  return h('p', { class: 'actions' }, who, ' ', button, ' ', force, ' ', result);
}

// resendSaid is what a resend's 2xx answer did, in words: the events it
// queued (queued, in the order they leave) and the one it names (event_id),
// which already_pending says was waiting before. A 200 may still have
// queued given-up events (a refunded order's earlier refunds, its
// order.paid) and set the waiting one back behind them: "already queued"
// alone told the operator nothing went out when the merchant was about to
// get them.
function resendSaid(d) {
  const name = (e) => `${e.type} as ${e.event_id}`;
  const queued = Array.isArray(d.queued) ? d.queued : (d.already_pending ? [] : [d]);
  const others = queued.filter((e) => e.event_id !== d.event_id);
  const list = (es) => es.map(name).join(', then ');
  if (!d.already_pending) {
    return `Queued ${list(queued)}; ${queued.length === 1 ? 'it leaves' : 'they leave'} after the order's pending events.`;
  }
  if (others.length === 0) return `Already queued: ${name(d)} waits for delivery; not queued twice.`;
  if (others.length < queued.length) {
    return `Queued ${list(others)}; ${name(d)}, which was waiting for delivery, now leaves after ${others.length === 1 ? 'it' : 'them'} (not queued twice).`;
  }
  return `Queued ${list(others)}; ${name(d)} was already waiting for delivery (not queued twice).`;
}

// orderHistory walks the chain backwards from its head, a page at a time, and
// keeps the records that name the order.
async function orderHistory(orderNo, maxPages = 10) {
  const found = new Map();
  let from;
  let limit = 1000;
  let scanned = 0;
  for (let i = 0; i < maxPages; i++) {
    const page = await api('/admin/api/audit' + qs({ limit, from }));
    for (const r of page.records) {
      scanned++;
      const b = body(r);
      if (b.order_no === orderNo) found.set(r.seq, { ...r, b });
    }
    if (!page.prev_from || page.records.length === 0 || page.records[0].seq <= 1) {
      return { records: [...found.values()].sort((a, b) => a.seq - b.seq), scanned, complete: true };
    }
    // The older page ends just before this one (prev_limit), so no
    // record is read twice.
    from = page.prev_from;
    limit = page.prev_limit;
  }
  return { records: [...found.values()].sort((a, b) => a.seq - b.seq), scanned, complete: false };
}

function body(r) {
  return typeof r.body === 'object' && r.body !== null ? r.body : {};
}

function actor(r) {
  const a = body(r).actor;
  return typeof a === 'object' && a !== null ? a : {};
}

function auditTable(records) {
  return table([
    { th: 'Seq', class: 'num', td: (r) => String(r.seq) },
    { th: 'Time', class: 'time', td: (r) => whenCell(body(r).time || body(r).appended_at) },
    { th: 'Action', td: (r) => h('code', { text: body(r).action || '?' }) },
    { th: 'Order', td: (r) => h('span', { class: 'mono', text: body(r).order_no || '' }) },
    { th: 'Status', td: (r) => (body(r).status_before ? `${body(r).status_before} → ${body(r).status || ''}` : body(r).status || '') },
    // Reasons are text from outside (a model's, an operator's), each
    // isolated: a right-to-left mark in one turned the next around.
    { th: 'Cause', td: (r) => [body(r).cause || '', body(r).reason ? [' (', h('bdi', { text: String(body(r).reason) }), ')'] : '',
      actor(r).reason ? [' — ', h('bdi', { text: String(actor(r).reason) })] : ''] },
    // An operator's decision names the operator, when named (text from
    // outside, isolated as a reason is), and the admin request; a turn's
    // action, the provider and model.
    { th: 'By', td: (r) => (actor(r).kind
      ? [String(actor(r).kind), actor(r).operator ? [' ', h('bdi', { text: String(actor(r).operator) })] : null,
        actor(r).request_id ? [actor(r).operator ? h('br') : ' ', h('small', { class: 'mono', text: String(actor(r).request_id) })] : null]
      : [body(r).provider, body(r).model].filter(Boolean).join(' / ')) },
    { th: 'Hash', td: (r) => h('span', { class: 'mono', title: r.hash, text: short(r.hash) }) },
  ], records, (r) => ({ dataset: { seq: r.seq } }));
}

// ------------------------------------------------------------------ refunds

export async function refunds(panel) {
  loading(panel);
  let rows = [];
  let before = '';
  let asked = 0; // as in orders: only the latest load's answer is drawn
  // load reads the next page (newest first); a refund still in flight
  // behind newer finished ones is on a later page, behind "Load older".
  async function load() {
    const mine = ++asked;
    let page;
    try {
      page = await api('/admin/api/refunds' + qs({ limit: 200, before }));
    } catch (e) {
      if (mine !== asked) return undefined;
      // As for the orders: an older page that failed keeps those loaded.
      if (before !== '' && !(e instanceof ApiError && e.status === 401)) return draw(e);
      return failed(panel, e);
    }
    if (mine !== asked) return;
    rows = rows.concat(page.refunds);
    before = page.next_before || '';
    draw();
  }
  function draw(olderFailed) {
    clear(panel).append(h('h2', { text: 'Refunds' }),
      h('p', { class: 'hint', text: 'Orders with a refund, and the refund in flight (confirmed by the user, not yet settled by WeChat Pay).' }));
    if (rows.length === 0) panel.append(empty('No refunds.'));
    else {
      panel.append(table([
        { th: 'Order', td: (e) => h('span', { class: 'mono', text: e.order.order_no }) },
        { th: 'Status', td: (e) => status(e.order.status) },
        { th: 'User', td: (e) => e.order.user },
        { th: 'Paid', class: 'num', td: (e) => money(e.order.amount_fen, e.order.currency) },
        { th: 'Refunded', class: 'num', td: (e) => money(e.order.refunded_fen || 0, e.order.currency) },
        { th: 'In flight', td: (e) => (e.in_flight
          ? h('span', {}, h('strong', { text: money(e.in_flight.amount_fen, e.order.currency) }), ' ',
            h('span', { class: 'mono', text: e.in_flight.out_refund_no || e.in_flight.refund_id }),
            e.in_flight.reason ? [' — ', h('bdi', { text: e.in_flight.reason })] : '', h('br'),
            h('small', { class: 'hint', text: 'confirmed ' + when(e.in_flight.confirmed_at) }))
          : '—') },
        { th: 'Updated', class: 'time', td: (e) => whenCell(e.order.updated_at) },
      ], rows, (e) => ({ dataset: { orderNo: e.order.order_no }, class: e.order.status === 'needs_review' ? 'needs-review' : '' })));
    }
    if (olderFailed) panel.append(h('p', { class: 'error', role: 'alert', text: 'Could not load older refunds: ' + olderFailed.message }));
    if (before !== '') panel.append(h('p', {}, h('button', { type: 'button', class: 'ghost', id: 'refunds-older', onclick: () => load() }, 'Load older refunds')));
  }
  await load();
}

// ----------------------------------------------------------------- webhooks

export async function webhooks(panel, ctx) {
  loading(panel);
  let st;
  try {
    st = await api('/admin/api/webhooks');
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      return clear(panel).append(h('h2', { text: 'Webhooks' }), empty('This paygate does not report webhook delivery.'));
    }
    return failed(panel, e);
  }
  clear(panel).append(h('h2', { text: 'Merchant webhooks' }));
  if (!st.enabled) return panel.append(empty('Merchant webhooks are off (webhooks.url is empty).'));
  panel.append(
    h('p', {}, 'Delivering to ', h('code', { text: st.url }), `; retries from ${st.first_retry} up to ${st.max_delay} apart, for ${st.retry_for} or ${st.max_attempts} attempts.`),
    h('div', { class: 'summary' },
      card('Delivered', String(st.delivered)),
      card('Failed attempts', String(st.failed), { attn: st.failed > 0 }),
      card('Given up', String(st.given_up), { attn: st.given_up > 0 }),
      card('Orders pending', String(st.pending_orders), { attn: st.pending_orders > 0 }),
      card('Retrying', String(st.retrying), { attn: st.retrying > 0 }),
      card('Outbox events', String(st.outbox_pending_events))),
    h('p', { class: 'legend', text: `Last delivered ${when(st.last_delivered_at)}; oldest pending since ${when(st.oldest_pending_at)}. Delivered and failed count this process's attempts since it started; given up counts the dead letters the store keeps.` }));
  // The merchant's endpoint answered a 429 or 503 with a Retry-After: this
  // paygate sends it nothing until then, which the heads' "Next try" shows
  // one by one; said once here, as the reason.
  if (st.paused_until && Date.parse(st.paused_until) > Date.now()) {
    panel.append(h('p', { id: 'webhooks-paused', class: 'notice bad' },
      h('span', { text: `The merchant's endpoint asked paygate to wait (${st.paused_by || 'Retry-After'}): nothing is sent to it until ${when(st.paused_until)}; then each order's events go out again, in order.` }),
      ' ', resumeControl(panel, ctx)));
  }
  deadLetters(panel, ctx, st.dead_letters || []);
  const heads = st.heads || [];
  panel.append(h('h3', { text: 'Next undelivered webhook per order' }));
  if (heads.length === 0) return panel.append(empty('Nothing waits for delivery.'));
  panel.append(table([
    { th: 'Order', td: (x) => h('span', { class: 'mono', text: x.order_no }) },
    { th: 'Event', td: (x) => h('code', { text: x.type }) },
    { th: 'Attempts', class: 'num', td: (x) => String(x.attempts) },
    { th: 'Created', class: 'time', td: (x) => whenCell(x.created_at) },
    { th: 'Next try', class: 'time', td: (x) => whenCell(x.next_at) },
    { th: 'Last error', td: (x) => (x.last_error ? h('span', { class: 'error', text: x.last_error }) : '') },
  ], heads, (x) => ({ dataset: { orderNo: x.order_no } })));
}

// resumeControl ends the merchant endpoint's pause now (POST
// /admin/api/webhooks/resume), for a wait the operator knows to be wrong: a
// CDN's or a maintenance page's Retry-After: 3600 sent during a blip held
// every order's events for an hour. It takes two clicks, as a decision
// does: the merchant gets every held event at once, before the time it
// named. It ends this paygate's pause (each replica keeps its own); the
// answer says how many held events are due now, and the tab is read again.
function resumeControl(panel, ctx) {
  const result = h('span', { id: 'webhooks-resume-result' });
  const button = h('button', { type: 'button', class: 'small', dataset: { action: 'resume' } }, 'Send now');
  const yes = h('button', { type: 'button', class: 'small', dataset: { action: 'resume-confirm' } }, 'Confirm send now');
  const no = h('button', { type: 'button', class: 'small ghost', dataset: { action: 'resume-cancel' } }, 'Cancel');
  const who = askName('resume');
  const confirm = h('span', { class: 'actions', hidden: true, dataset: { confirm: 'resume' } },
    'Send the held events to the merchant now, before the time it asked for? ', who, ' ', yes, ' ', no);
  button.onclick = () => {
    button.hidden = true; confirm.hidden = false; result.textContent = '';
    (who.hidden ? yes : who).focus();
  };
  no.onclick = () => { confirm.hidden = true; button.hidden = false; button.focus(); };
  yes.onclick = async () => {
    const name = keepName(who, ctx);
    yes.disabled = no.disabled = true;
    yes.textContent = 'Sending: waiting for paygate…';
    try {
      const d = await api('/admin/api/webhooks/resume', { method: 'POST', body: audited(undefined, name) });
      const n = Number(d.released) || 0;
      await webhooks(panel, ctx);
      if (ctx) ctx.notice(`The wait ended: ${n === 1 ? '1 held event goes' : `${n} held events go`} to the merchant now.`, 'ok');
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
      result.textContent = e instanceof ApiError && e.status === 0
        ? ` No answer came (${e.message}): the wait may have ended or not; Refresh shows it, and sending again is harmless.`
        : ` Not sent: ${e.message}`;
      yes.textContent = 'Confirm send now';
      yes.disabled = no.disabled = false;
    }
  };
  return h('span', {}, button, confirm, result);
}

// deadLetters lists the webhooks given up after the retry window: the store
// keeps them until the order is sent again, because a lost order.paid means
// goods never delivered. Each row has the order's resend button, which
// queues the order's current state (once, however often it is clicked) and
// clears its rows.
function deadLetters(panel, ctx, dead) {
  if (dead.length === 0) return;
  panel.append(
    h('h3', { text: 'Given up: the merchant never acknowledged these' }),
    h('p', { class: 'hint', text: 'Once the merchant\'s endpoint is back, send the order again; its rows are gone the next time this tab is opened.' }),
    table([
      { th: 'Order', td: (x) => h('span', { class: 'mono', text: x.order_no }) },
      { th: 'Event', td: (x) => h('span', {}, h('code', { text: x.type }), ' ', h('span', { class: 'mono', text: x.event_id })) },
      { th: 'Attempts', class: 'num', td: (x) => String(x.attempts) },
      // In a table, a time shows itself in UTC on hover, as README says:
      // these did not, the merchant's logs (in UTC, say) left to guess.
      { th: 'Created', class: 'time', td: (x) => whenCell(x.created_at) },
      { th: 'Given up', class: 'time', td: (x) => whenCell(x.given_up_at) },
      { th: 'Last error', td: (x) => (x.last_error ? h('span', { class: 'error', text: x.last_error }) : '') },
      { th: '', td: (x) => resendInRow(x.order_no, ctx) },
    ], dead, (x) => ({ dataset: { orderNo: x.order_no, eventId: x.event_id }, class: 'needs-review' })));
}

// resendInRow is the Orders view's resend control for one table row; its
// result span loses the id that view looks it up by, as a table has several.
function resendInRow(orderNo, ctx) {
  const c = resendControl({ order_no: orderNo }, ctx);
  c.querySelector('#resend-result')?.removeAttribute('id');
  return c;
}

// -------------------------------------------------------------------- audit

// audit shows a page of the chain: the latest, or limit records (default 50)
// from record from on. Older asks for the page the API names as ending just
// before this one (prev_from, prev_limit), Newer for the next 50.
export async function audit(panel, ctx, from, limit = 50) {
  loading(panel);
  let head;
  let page;
  try {
    head = await api('/admin/api/audit/head');
    page = await api('/admin/api/audit' + qs({ limit, from }));
  } catch (e) { return failed(panel, e); }
  const recs = page.records || [];
  let broken = null;
  for (let i = 1; i < recs.length; i++) {
    if (recs[i].prev_hash !== recs[i - 1].hash) { broken = recs[i].seq; break; }
  }
  clear(panel).append(
    h('h2', { text: 'Audit chain' }),
    h('dl', { class: 'kv', id: 'audit-head' },
      kv('Records', h('strong', { id: 'audit-seq', text: String(head.seq) })),
      kv('Head hash', h('code', { id: 'audit-hash', text: head.hash || '—' })),
      kv('Head', h('code', { text: head.head })),
      kv('Verify', h('span', {}, 'Keep the head somewhere else; later, ', h('code', { text: `paygate audit verify --head ${head.head}` }),
        ' proves no record before it was changed.'))),
    h('h3', { text: recs.length ? `Records ${recs[0].seq}–${recs[recs.length - 1].seq}` : 'Records' }));
  if (recs.length === 0) return panel.append(empty('The chain is empty.'));
  panel.append(h('p', { class: broken ? 'notice bad' : 'legend', text: broken
    ? `Record ${broken} does not link to the one before it: run paygate audit verify.`
    : `The ${recs.length} records shown link up (each names the previous one's hash).` }));
  panel.append(auditTable(recs.slice().reverse()));
  const nav = h('p', { class: 'tools' });
  if (page.prev_from) nav.append(h('button', { type: 'button', class: 'ghost', onclick: () => audit(panel, ctx, page.prev_from, page.prev_limit) }, 'Older'));
  if (page.next_from) nav.append(h('button', { type: 'button', class: 'ghost', onclick: () => audit(panel, ctx, page.next_from) }, 'Newer'));
  panel.append(nav);
}

// --------------------------------------------------------------------- cost

export async function fetchStats() {
  try {
    return await api('/admin/api/stats');
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

const HOUR = 3600 * 1000;

// hourly puts back, as gaps (y null), the hours the stats series leaves
// out: it lists only hours with activity, so the chart drew one line
// straight across an hour without a paid order, which the legend says is a
// gap. points are in time order, on the hour.
function hourly(points) {
  const out = [];
  for (const p of points) {
    const prev = out[out.length - 1];
    if (prev) {
      for (let t = prev.t.getTime() + HOUR; t < p.t.getTime(); t += HOUR) out.push({ t: new Date(t), y: null, tip: '' });
    }
    out.push(p);
  }
  return out;
}

export async function cost(panel) {
  loading(panel);
  let st;
  try {
    st = await fetchStats();
  } catch (e) { return failed(panel, e); }
  clear(panel).append(h('h2', { text: 'Cost per completed transaction' }));
  if (!st) return panel.append(empty('No data yet: this paygate does not report cost (GET /admin/api/stats is not available).'));
  // Amounts show at six places (llmCost); the exact figure is the hover's.
  const amount = (label, v) => card(label, llmCost(v), { title: v ?? undefined });
  panel.append(h('div', { class: 'summary' },
    card('Turns', String(st.turns)),
    card('Paid orders', String(st.paid_orders)),
    amount('LLM cost', st.llm_cost),
    amount('LLM cost of paying turns', st.transaction_llm_cost),
    amount('Cost per transaction', st.cost_per_transaction)));
  const series = hourly((st.series || []).map((p) => ({
    t: new Date(p.hour),
    y: p.cost_per_transaction === null || p.cost_per_transaction === undefined ? null : Number(p.cost_per_transaction),
    tip: `${p.hour}: ${p.cost_per_transaction == null ? 'no paid order' : llmCost(p.cost_per_transaction)} per transaction, ${llmCost(p.llm_cost)} LLM cost, ${p.paid_orders} paid`,
  })));
  const svg = lineChart(series, { label: 'cost per completed transaction by hour' });
  const box = h('div', { id: 'cost-chart' });
  if (svg) {
    const hours = series.filter((p) => p.y !== null).length;
    box.append(svg, h('p', { class: 'legend', text: `Per hour, in the providers' billing currency: the LLM cost of the turns behind paid orders divided by the orders paid that hour (${hours} hour${hours === 1 ? '' : 's'} with a paid order; gaps are hours without one).` }));
  } else {
    box.append(empty('No data yet: no order has been paid in the hours the ledger keeps.'));
  }
  panel.append(box);
  const models = st.by_model || [];
  panel.append(h('h3', { text: 'By provider and model' }));
  if (models.length === 0) return panel.append(empty('No upstream round recorded yet.'));
  panel.append(table([
    { th: 'Provider', td: (m) => m.provider },
    { th: 'Model', td: (m) => h('code', { text: m.model }) },
    { th: 'Prompt tokens', class: 'num', td: (m) => String(m.prompt_tokens) },
    { th: 'Of them cached', class: 'num', td: (m) => String(m.cached_prompt_tokens ?? 0) },
    { th: 'Completion tokens', class: 'num', td: (m) => String(m.completion_tokens) },
    { th: 'LLM cost', class: 'num', td: (m) => h('span', { text: llmCost(m.llm_cost), title: m.llm_cost }) },
  ], models));
}

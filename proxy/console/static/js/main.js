// The console shell: sign in and out, tabs, the summary and the chain head.

import { api, allPages, session, operator, onUnauthorized, ApiError, adminDisabled } from './api.js';
import { h, clear, card, short, zoneName, llmCost } from './dom.js';
import * as views from './views.js';

const $ = (id) => document.getElementById(id);
const TABS = ['approvals', 'orders', 'refunds', 'webhooks', 'audit', 'cost'];
let tab = 'approvals';
let timer = null;
// summaries numbers the summary's reads, and only the latest one's answer
// is drawn: on a slow link a periodic read of the queue taken before a
// decision (which starts a summary of its own) answered after it, and put
// the decided order back in the queue, buttons and badge, until the next
// refresh. summarizing says the latest is in flight: the periodic refresh
// starts none while it is, so that on a link slower than its period reads
// do not pile up, each superseded before it answers; but only for
// patience periods (skipped counts them): a read on a connection that died
// under it (a phone's network changed) answers only when its bound
// (api.js's timeouts) runs out, and waiting for it stopped every refresh,
// a new order waiting for approval never shown, until the manager clicked
// something.
let summaries = 0;
let summarizing = false;
let skipped = 0;
const patience = 2;

const ctx = {
  // text is a string, or strings and nodes (a name from outside isolated in
  // a <bdi>), each put into the page as it is: a string as text.
  notice(text, kind = '') {
    const n = $('notice');
    n.className = 'notice ' + kind;
    n.replaceChildren(...[text].flat());
    n.hidden = false;
  },
  changed() { summary(); },
  named() { showOperator(); },
};

// showOperator shows in the bar who decides from this browser (operator in
// api.js), or that nobody is named, with the button that changes it.
function showOperator() {
  const name = operator.name();
  $('operator').classList.toggle('attn', !name);
  $('operator-label').textContent = name ? 'deciding as' : 'no name set';
  $('operator-name').textContent = name;
  $('operator-name').title = name;
  $('operator-change').textContent = name ? 'Change' : 'Set your name';
  $('operator-change').title = 'The name sent with each decision, which the audit chain records';
  // A decision's field that asks for the name (views.js's askName) shows
  // while none is kept: cleared here, an open form asks again; an open
  // approval's confirmation names whose decision it records as it now is.
  for (const f of document.querySelectorAll('input.ask-name')) f.hidden = name !== '';
  for (const s of document.querySelectorAll('.named-as')) {
    s.hidden = name === '';
    s.querySelector('bdi').textContent = name;
  }
}

// editOperator opens the form that names whoever decides from this
// browser; saveOperator keeps what it holds (as the API takes it: one
// line, 128 characters) and closes it.
function editOperator() {
  $('operator-form').hidden = false;
  $('operator-input').value = operator.name();
  $('operator-input').focus();
}

function saveOperator(ev) {
  ev.preventDefault();
  const name = operator.save($('operator-input').value);
  $('operator-form').hidden = true;
  showOperator();
  // The name is isolated: a right-to-left mark in it turned the rest of
  // the sentence around.
  ctx.notice(name ? ['Your decisions from this browser are recorded as ', h('bdi', { text: name }), '\'s.']
    : 'No name is sent with your decisions now: the audit records only the request.', name ? 'ok' : 'bad');
}

function showSignin(message = '') {
  clearInterval(timer);
  timer = null;
  $('app').hidden = true;
  $('signout').hidden = true;
  $('operator').hidden = true;
  $('operator-form').hidden = true;
  $('chain').hidden = true;
  $('zone').hidden = true;
  // Nothing read with the old token stays in the page.
  TABS.forEach((t) => clear($('panel-' + t)));
  clear($('summary'));
  $('notice').hidden = true;
  $('approvals-count').textContent = '';
  $('signin').hidden = false;
  $('signin-error').textContent = message;
  $('token').value = '';
  // The name kept in this browser, to be kept or changed by whoever signs in.
  $('signin-operator').value = operator.name();
  $('token').focus();
}

// showDisabled says, in the API's words, that the admin API is off
// (paygate has no admin token), so no token typed here can work, and how to
// turn it on.
function showDisabled(err) {
  $('signin-error').textContent = err.message.charAt(0).toUpperCase() + err.message.slice(1) + '.';
  $('token').disabled = true;
  $('signin-submit').disabled = true;
}

function showApp() {
  $('signin').hidden = true;
  $('app').hidden = false;
  $('signout').hidden = false;
  showOperator();
  $('operator').hidden = false;
  // Every time shown is in this browser's zone: say which.
  $('zone').textContent = 'times in ' + zoneName();
  $('zone').title = 'Times are shown in this browser\'s time zone, at this offset now; a time at another offset (across a summer-time change) names its own. Hover over a time in a table for it in UTC.';
  $('zone').hidden = false;
  select(tab);
  summary();
  clearInterval(timer);
  timer = setInterval(() => {
    if (document.hidden) return;
    if (summarizing && skipped < patience) { skipped++; return; }
    skipped = 0;
    summary();
  }, 20000);
}

function select(name) {
  tab = name;
  for (const b of document.querySelectorAll('#tabs [data-tab]')) b.setAttribute('aria-selected', String(b.dataset.tab === name));
  for (const t of TABS) $('panel-' + t).hidden = t !== name;
  $('notice').hidden = true;
  views[name]($('panel-' + name), ctx);
}

// summary refreshes the cards above the tabs and the chain head in the bar.
async function summary() {
  const settle = (p) => p.then((v) => ({ v }), (e) => ({ e }));
  const mine = ++summaries;
  summarizing = true;
  // aria-busy while the latest read is on its way, as the panels are.
  $('summary').setAttribute('aria-busy', 'true');
  let ap, rev, head, stats;
  try {
    [ap, rev, head, stats] = await Promise.all([
      // Every page: a count that stopped at the first would say "1000" of more.
      settle(allPages('/admin/api/approvals', { limit: 1000 }, 'approvals')),
      settle(allPages('/admin/api/orders', { status: 'needs_review', limit: 1000 }, 'orders')),
      settle(api('/admin/api/audit/head')),
      settle(views.fetchStats()),
    ]);
  } finally {
    if (mine === summaries) {
      summarizing = false;
      $('summary').removeAttribute('aria-busy');
    }
  }
  if (!session.token() || mine !== summaries) return;
  const n = ap.v ? ap.v.length : null;
  const r = rev.v ? rev.v.length : null;
  $('approvals-count').textContent = n ? String(n) : '';
  if (tab === 'approvals' && ap.v) views.approvalsUpdate($('panel-approvals'), ctx, ap.v);
  const cpt = stats.v ? llmCost(stats.v.cost_per_transaction) : 'no data yet';
  // Six places (llmCost), "< 0.000001" for a cheap model's: the exact figure
  // is the hover's, as on the cost tab.
  const exact = stats.v ? (stats.v.cost_per_transaction ?? undefined) : undefined;
  clear($('summary')).append(
    card('Pending approvals', n === null ? '?' : String(n), { attn: n > 0, id: 'sum-approvals' }),
    card('Needs review', r === null ? '?' : String(r), { attn: r > 0, id: 'sum-review' }),
    card('Audit records', head.v ? String(head.v.seq) : '?', { id: 'sum-audit' }),
    card('Cost per transaction', stats.e ? '?' : cpt, { id: 'sum-cost', title: exact }));
  const c = $('chain');
  if (head.v) {
    c.textContent = `audit #${head.v.seq} · ${head.v.hash ? short(head.v.hash, 10) : 'empty'}`;
    c.title = 'audit chain head ' + head.v.head;
    c.hidden = false;
  }
}

async function signin(ev) {
  ev.preventDefault();
  const input = $('token');
  const token = input.value.trim();
  input.value = ''; // the token is never kept in the page
  const btn = $('signin-submit');
  btn.disabled = true;
  $('signin-error').textContent = '';
  try {
    await api('/admin/api/audit/head', { token });
  } catch (e) {
    btn.disabled = false;
    if (adminDisabled(e)) {
      showDisabled(e);
      return;
    }
    if (e instanceof ApiError && e.status === 401) {
      $('signin-error').textContent = 'That token was refused.';
      input.focus();
      return;
    }
    if (!(e instanceof ApiError) || e.status === 0) {
      $('signin-error').textContent = e.message;
      return;
    }
    if (!e.paygate) {
      // A proxy or ingress in front of paygate answered (a 502 while
      // paygate restarts): the token was never checked, so it is not kept.
      $('signin-error').textContent = `paygate's admin API could not be reached (HTTP ${e.status} from what stands in front of it): the token was not checked; try again.`;
      return;
    }
    // Any other answer of paygate's got past the token check: the token is good.
  }
  btn.disabled = false;
  operator.save($('signin-operator').value);
  session.save(token);
  showApp();
}

function start() {
  onUnauthorized((e) => {
    session.clear();
    if (adminDisabled(e)) {
      // paygate restarted without a token: the tab's token opens nothing.
      showSignin();
      showDisabled(e);
      return;
    }
    showSignin('The admin token was refused (it may have been changed); sign in again.');
  });
  $('signin-form').addEventListener('submit', signin);
  $('signout').addEventListener('click', () => { session.clear(); showSignin(); });
  $('operator-change').addEventListener('click', editOperator);
  $('operator-form').addEventListener('submit', saveOperator);
  $('operator-cancel').addEventListener('click', () => { $('operator-form').hidden = true; });
  // Changed in another tab: this one's bar says so (each decision reads
  // the name as it is when sent).
  window.addEventListener('storage', (e) => {
    if (e.key === operator.key || e.key === null) {
      showOperator();
      if ($('signin').hidden === false) $('signin-operator').value = operator.name();
    }
  });
  $('refresh').addEventListener('click', () => { select(tab); summary(); });
  for (const b of document.querySelectorAll('#tabs [data-tab]')) b.addEventListener('click', () => select(b.dataset.tab));
  // Back in view (a phone's browser brought to the front, a tab switched
  // to), the page catches up at once: a hidden page skips its periodic
  // refresh, and a phone's browser suspends it.
  document.addEventListener('visibilitychange', () => { if (!document.hidden && timer !== null) summary(); });
  if (session.token()) showApp();
  else {
    showSignin();
    // Asked without a token, the API tells a refusal (401) from "off".
    api('/admin/api/audit/head', { token: '' }).catch((e) => { if (adminDisabled(e)) showDisabled(e); });
  }
}

start();

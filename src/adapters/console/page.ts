/**
 * The console page: one HTML file, no build step. It renders the neutral message model
 * (src/adapters/messages.ts) with DOM calls only (text is never parsed as HTML), keeps one card per
 * run with its thread, and updates messages in place by key, as Slack's chat.update would.
 * Who acts comes from the server (`/console/api/me`): the signed-in person, or, only in the lab on
 * loopback, the person picked here. The page never holds a token: the sign-in form posts it once
 * and the server answers with an HttpOnly session cookie.
 */
export const CONSOLE_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>runbook console</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  :root { --bg:#f6f7f9; --card:#fff; --line:#dde1e6; --ink:#1d2329; --muted:#69737d; --ok:#1a7f37; --warn:#9a6700; --danger:#cf222e; --info:#0969da; }
  * { box-sizing: border-box; }
  body { margin:0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--ink); background:var(--bg); }
  header { display:flex; gap:12px; align-items:center; padding:10px 16px; background:#24292f; color:#fff; }
  header h1 { font-size:15px; margin:0; font-weight:600; }
  header .channel { color:#adbac7; }
  header #who { margin-left:auto; font-size:13px; display:flex; gap:8px; align-items:center; }
  header #who button { padding:2px 8px; }
  #mode { max-width:980px; margin:12px auto 0; padding:6px 16px; font-size:13px; color:var(--warn); }
  #signin { max-width:520px; margin:48px auto; background:var(--card); border:1px solid var(--line); border-radius:6px; padding:16px 20px; }
  #signin form { display:flex; gap:8px; margin-top:8px; }
  #signin input { flex:1; padding:6px 8px; border:1px solid var(--line); border-radius:6px; }
  [hidden] { display:none !important; }
  select, input, button { font: inherit; }
  main { max-width: 980px; margin: 0 auto; padding: 16px 16px 120px; }
  .run { background:var(--card); border:1px solid var(--line); border-left:4px solid var(--info); border-radius:6px; margin:0 0 16px; }
  .run.ok { border-left-color:var(--ok); } .run.warn { border-left-color:var(--warn); } .run.danger { border-left-color:var(--danger); }
  .msg { padding:10px 14px; }
  .thread { border-top:1px solid var(--line); background:#fbfbfc; padding:4px 0 4px 22px; }
  .thread .msg { border-left:3px solid var(--line); margin:6px 12px 6px 0; padding:6px 10px; background:#fff; border-radius:4px; }
  .thread .msg.ok { border-left-color:var(--ok); } .thread .msg.warn { border-left-color:var(--warn); background:#fff8e6; } .thread .msg.danger { border-left-color:var(--danger); }
  h2 { font-size:15px; margin:0 0 6px; }
  .fields { display:grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap:4px 16px; margin:6px 0; }
  .fields b { display:block; font-size:12px; color:var(--muted); font-weight:500; }
  ul { margin:6px 0; padding-left:0; list-style:none; }
  li.warn { color:var(--warn); }
  pre { background:#f0f2f4; border-radius:4px; padding:6px 8px; margin:6px 0; overflow:auto; max-height:320px; font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; white-space:pre-wrap; }
  code { background:#eef0f3; border-radius:3px; padding:0 3px; font: 12.5px ui-monospace, SFMono-Regular, Menlo, monospace; }
  .context { color:var(--muted); font-size:12.5px; margin:4px 0; }
  table { border-collapse:collapse; margin:6px 0; font-size:12.5px; }
  td, th { border:1px solid var(--line); padding:2px 6px; text-align:left; }
  .buttons { display:flex; gap:8px; margin-top:8px; }
  button { border:1px solid var(--line); background:#f6f8fa; border-radius:6px; padding:4px 12px; cursor:pointer; }
  button.primary { background:var(--ok); border-color:var(--ok); color:#fff; }
  button.danger { background:#fff; border-color:var(--danger); color:var(--danger); }
  .file { font-size:12.5px; }
  footer { position:fixed; bottom:0; left:0; right:0; background:#fff; border-top:1px solid var(--line); padding:10px 16px; }
  footer form { max-width:980px; margin:0 auto; display:flex; gap:8px; }
  footer input { flex:1; padding:8px 10px; border:1px solid var(--line); border-radius:6px; }
  #ephemeral { max-width:980px; margin:0 auto 6px; color:var(--muted); white-space:pre-wrap; font-size:13px; }
  #ephemeral.error { color:var(--danger); }
</style>
</head>
<body>
<header><h1>runbook</h1><span class="channel"># incident</span>
  <span id="who"></span>
</header>
<p id="mode" hidden></p>
<section id="signin" hidden>
  <h2>Sign in</h2>
  <div>Give your personal token. An admin makes one with <code>runbook token create &lt;you&gt;</code>; it is shown once.</div>
  <form id="signin-form"><input id="token" type="password" autocomplete="off" placeholder="rbk_…" aria-label="personal token"><button type="submit" class="primary">Sign in</button></form>
  <div id="signin-error" class="context"></div>
</section>
<main id="runs" aria-live="polite"></main>
<footer id="composer-bar" hidden>
  <div id="ephemeral" role="status"></div>
  <form id="composer"><input id="command" autocomplete="off" placeholder="/ovs flush node-3   ·   /ovs help   ·   /nova inspect-disk instance-0000274a" aria-label="command"><button type="submit" class="primary">Send</button></form>
</footer>
<script>
(() => {
  const headers = { 'content-type': 'application/json' };
  const runsEl = document.getElementById('runs');
  const whoEl = document.getElementById('who');
  const ephemeralEl = document.getElementById('ephemeral');
  const runs = new Map();
  /** Who this page acts as: set from /console/api/me. \`picker\` only in the lab on loopback. */
  let me = { canAct: false };
  let picker = null;

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v; else if (k.startsWith('on')) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
    }
    for (const c of children) if (c != null) e.append(c);
    return e;
  }

  /** **bold** and \`code\`, everything else as text. */
  function inline(text) {
    const out = document.createDocumentFragment();
    const re = /(\\*\\*[^*]+\\*\\*|\`[^\`]+\`)/g;
    let last = 0, m;
    while ((m = re.exec(text))) {
      out.append(text.slice(last, m.index));
      const t = m[0];
      out.append(t.startsWith('**') ? el('b', {}, t.slice(2, -2)) : el('code', {}, t.slice(1, -1)));
      last = m.index + t.length;
    }
    out.append(text.slice(last));
    return out;
  }

  function say(text, error) {
    ephemeralEl.textContent = text;
    ephemeralEl.className = error ? 'error' : '';
  }

  async function post(path, data) {
    const r = await fetch(path, { method: 'POST', headers, body: JSON.stringify(data) });
    const j = await r.json();
    if (!r.ok) throw new Error(j.error || r.statusText);
    return j;
  }

  /** In the lab the request names who acts; signed in, the server knows. */
  function acting(data) {
    return picker ? { ...data, person: picker.value } : data;
  }

  async function decide(b) {
    let reason;
    if (b.needsReason) {
      reason = prompt('Why reject? (shown in the thread)');
      if (reason === null) return;
    }
    try {
      const r = await post('/console/api/decide', acting({ runId: b.runId, gateId: b.gateId, decision: b.action, reason }));
      say(r.text, r.text.startsWith('Not allowed') || r.text.startsWith('already'));
    } catch (e) { say(e.message, true); }
  }

  function block(b) {
    switch (b.type) {
      case 'heading': return el('h2', {}, b.text);
      case 'text': return el('div', {}, inline(b.text));
      case 'context': return el('div', { class: 'context' }, inline(b.text));
      case 'code': return el('pre', {}, b.text);
      case 'fields': return el('div', { class: 'fields' }, ...b.fields.map((f) => el('div', {}, el('b', {}, f.label), inline(f.value))));
      case 'list': return el('ul', {}, ...b.items.map((i) => el('li', { class: i.tone || '', style: 'padding-left:' + (i.indent || 0) * 18 + 'px' }, inline(i.text))));
      case 'table': return el('div', {}, el('table', {}, el('tr', {}, ...b.columns.map((c) => el('th', {}, c))), ...b.rows.map((r) => el('tr', {}, ...r.map((c) => el('td', {}, c))))), b.note ? el('div', { class: 'context' }, b.note) : null);
      case 'buttons': return me.canAct ? el('div', { class: 'buttons' }, ...b.buttons.map((x) => el('button', { class: x.style, 'data-action': x.action, onclick: () => decide(x) }, x.label))) : null;
      default: return null;
    }
  }

  function render(m) {
    const node = el('div', { class: 'msg ' + m.tone, 'data-key': m.key }, ...m.blocks.map(block));
    if (m.file) {
      // Output kept as text comes with the message; a file a step fetched stays on the server until asked for.
      const url = m.file.stored
        ? '/console/api/runs/' + encodeURIComponent(m.file.stored.runId) + '/files/' + encodeURIComponent(m.file.stored.id)
        : URL.createObjectURL(new Blob([m.file.content], { type: 'text/plain' }));
      node.append(el('div', { class: 'file' }, '📎 ', el('a', { href: url, download: m.file.name }, m.file.name)));
    }
    return node;
  }

  function runCard(runId) {
    let r = runs.get(runId);
    if (!r) {
      const plan = el('div', { class: 'plan' });
      const thread = el('div', { class: 'thread' });
      const card = el('section', { class: 'run', 'data-run': runId }, plan, thread);
      runsEl.append(card);
      r = { card, plan, thread, keys: new Map() };
      runs.set(runId, r);
    }
    return r;
  }

  function upsert({ runId, message }) {
    const r = runCard(runId);
    const node = render(message);
    if (message.place === 'channel') {
      r.plan.replaceChildren(node);
      r.card.className = 'run ' + message.tone;
    } else {
      const old = r.keys.get(message.key);
      if (old) old.replaceWith(node); else r.thread.append(node);
    }
    r.keys.set(message.key, node);
    node.scrollIntoView({ block: 'nearest' });
  }

  async function signOut() {
    await fetch('/console/api/session', { method: 'DELETE' });
    location.reload();
  }

  /** Says who acts here: the lab's picker on loopback, else the signed-in person (or a viewer). */
  function showWho() {
    const mode = document.getElementById('mode');
    if (me.auth === 'loopback') {
      picker = el('select', { id: 'person', 'aria-label': 'acting as' }, ...me.people.map((p) => el('option', { value: p.id }, p.id + ' (' + p.roles.join(', ') + ')')));
      whoEl.append(el('label', {}, 'acting as ', picker));
      mode.textContent = 'Lab mode: on loopback you choose who you act as. Beyond loopback everyone signs in and acts only as themselves.';
      mode.hidden = false;
    } else if (me.auth === 'viewer') {
      whoEl.append('viewing only', el('button', { onclick: signOut }, 'Sign out'));
    } else {
      whoEl.append('signed in as ', el('b', { id: 'me' }, me.person.id), ' (' + me.person.roles.join(', ') + ')');
      if (me.auth === 'token') whoEl.append(el('button', { onclick: signOut }, 'Sign out'));
    }
    document.getElementById('composer-bar').hidden = !me.canAct;
  }

  async function start() {
    const r = await fetch('/console/api/me');
    if (r.status === 401) {
      document.getElementById('signin').hidden = false;
      document.body.dataset.ready = 'signin';
      return;
    }
    if (!r.ok) throw new Error((await r.json()).error || r.statusText);
    me = await r.json();
    showWho();
    for (const m of await (await fetch('/console/api/history')).json()) upsert(m);
    const events = new EventSource('/console/api/events');
    events.onmessage = (e) => upsert(JSON.parse(e.data));
    document.body.dataset.ready = 'true';
  }

  document.getElementById('signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = document.getElementById('token');
    try {
      await post('/console/api/session', { token: input.value });
      location.reload();
    } catch (err) {
      input.value = '';
      document.getElementById('signin-error').textContent = err.message;
    }
  });

  document.getElementById('composer').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = document.getElementById('command');
    const text = input.value.trim();
    if (!text) return;
    try {
      const r = await post('/console/api/command', acting({ text }));
      say(r.text, !r.runId && !text.includes('help'));
      if (r.runId) input.value = '';
    } catch (err) { say(err.message, true); }
  });

  start().catch((e) => say('cannot reach the bot: ' + e.message, true));
})();
</script>
</body>
</html>
`;

// One group: its live state against its limits, charts of the last minutes, its definition (editable; the node's
// own validation errors are shown by field), and pause, resume and purge.

import { get, post, patch, enc, ApiError } from './api.js';
import { poll } from './live.js';
import { el, count, rate, age, time } from './format.js';
import { lineChart } from './chart.js';

const STATS_MS = 2000;
const HISTORY_MS = 5000;

// The fields the form edits: [API field, label, read from the group, is a number].
const FIELDS = [
  ['ratePerSecond', 'Rate per second', (g) => g.ratePerSecond, true],
  ['burst', 'Burst', (g) => g.burst, true],
  ['maxConcurrency', 'Concurrency', (g) => g.maxConcurrency, true],
  ['target.url', 'Target URL', (g) => g.target.url, false],
  ['handlerTimeoutSeconds', 'Handler timeout (s)', (g) => g.handlerTimeoutSeconds, true],
  ['maxAttempts', 'Max attempts', (g) => g.maxAttempts, true],
  ['retryBackoff.initialSeconds', 'Backoff initial (s)', (g) => g.retryBackoff.initialSeconds, true],
  ['retryBackoff.maxSeconds', 'Backoff max (s)', (g) => g.retryBackoff.maxSeconds, true],
  ['maxPayloadBytes', 'Max payload (bytes)', (g) => g.maxPayloadBytes, true],
  ['maxSteps', 'Max steps', (g) => g.maxSteps, true],
];

export function groupPage(container, id) {
  const path = `/v1/groups/${enc(id)}`;
  const title = el('h1', {}, id, ' ', el('span', { id: 'group-state', class: 'badge' }));
  const stats = el('dl', { class: 'kv', id: 'stats' });
  const notice = el('p', { id: 'notice', class: 'notice', hidden: true, role: 'status' });
  const pause = el('button', { type: 'button', id: 'pause' }, 'Pause');
  const resume = el('button', { type: 'button', id: 'resume', hidden: true }, 'Resume');
  const confirm = el('input', { id: 'purge-confirm', placeholder: `type ${id} to purge`, 'aria-label': 'Group id, to confirm the purge', autocomplete: 'off' });
  const purge = el('button', { type: 'button', id: 'purge', class: 'danger', disabled: true }, 'Purge backlog');
  const deadLink = el('a', { id: 'dead-link', href: `#/groups/${enc(id)}/dead-letters` }, 'Dead letters');
  const charts = el('div', { class: 'charts', id: 'charts' });
  const form = el('form', { id: 'definition', class: 'panel', novalidate: true });
  container.append(
    el('p', {}, el('a', { href: '#/' }, '← All groups')),
    title,
    notice,
    el('div', { class: 'panel' }, stats),
    el('div', { class: 'panel actions' }, pause, resume, deadLink, el('span', { class: 'actions' }, confirm, purge)),
    el('h2', {}, 'Last minutes'),
    charts,
    el('h2', {}, 'Definition'),
    form,
  );

  const say = (text, bad = false) => {
    notice.textContent = text;
    notice.className = bad ? 'notice bad' : 'notice';
    notice.hidden = false;
  };

  let group = null;
  async function loadStats() {
    const s = await get(`${path}/stats`);
    const limits = group ?? (group = await get(path));
    const throttled = s.pausedUntil && new Date(s.pausedUntil) > new Date();
    const state = document.getElementById('group-state');
    state.textContent = s.paused ? 'paused' : throttled ? 'throttled' : 'running';
    state.className = `badge ${state.textContent}`;
    pause.hidden = s.paused;
    resume.hidden = !s.paused;
    deadLink.textContent = `Dead letters (${count(s.dead)})`;
    const row = (label, value, key) => [el('dt', {}, label), el('dd', { 'data-stat': key }, value)];
    stats.replaceChildren(
      ...row('Backlog', count(s.queued), 'backlog'),
      ...row('In flight', `${count(s.inFlight)} of ${count(limits.maxConcurrency)}`, 'inFlight'),
      ...row('Tokens', `${rate(s.tokens)} of ${count(limits.burst)}`, 'tokens'),
      ...row('Rate', `${rate(s.ratePerSecond)} /s`, 'rate'),
      ...row('Effective rate', `${rate(s.effectiveRatePerSecond ?? s.ratePerSecond)} /s`, 'effectiveRate'),
      ...row('Delivered', count(s.delivered), 'delivered'),
      ...row('Failed attempts', count(s.failed), 'failed'),
      ...row('Throttled', count(s.throttled), 'throttled'),
      ...row('Dead letters', count(s.dead), 'dead'),
      ...row('Paused since', s.paused ? time(s.pausedAt) : '—', 'pausedAt'),
      ...row('Target asked to wait until', throttled ? time(s.pausedUntil) : '—', 'pausedUntil'),
    );
  }

  async function loadHistory() {
    const h = await get(`/v1/dashboard/groups/${enc(id)}/history`);
    const times = h.points.map((p) => new Date(p.at).getTime());
    const series = (label, pick) => ({ label, values: h.points.map(pick) });
    const windowMs = h.windowSeconds * 1000;
    charts.replaceChildren(
      lineChart('chart-delivered', 'Delivered per second against the rate', [series('delivered /s', (p) => p.deliveredPerSecond), series('configured rate', (p) => p.ratePerSecond), series('effective rate', (p) => p.effectiveRatePerSecond)], times, windowMs),
      lineChart('chart-backlog', 'Backlog', [series('backlog', (p) => p.backlog)], times, windowMs),
      lineChart('chart-inflight', 'In flight against the concurrency limit', [series('in flight', (p) => p.inFlight), series('concurrency limit', (p) => p.maxConcurrency)], times, windowMs),
      lineChart('chart-failures', 'Throttled and failed calls per second', [series('throttled /s', (p) => p.throttledPerSecond), series('failed /s', (p) => p.failedPerSecond)], times, windowMs),
    );
  }

  function renderForm(g) {
    form.replaceChildren(
      el('div', { class: 'form-grid' }, FIELDS.map(([field, label, read]) => el('label', {},
        label,
        el('input', { name: field, 'data-field': field, value: String(read(g)), autocomplete: 'off', inputmode: field === 'target.url' ? 'url' : 'decimal' }),
        el('span', { class: 'field-error', 'data-error-for': field })))),
      el('p', { class: 'field-error', 'data-error-for': 'body' }),
      el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary', id: 'save' }, 'Save changes'), el('span', { class: 'muted' }, `Last changed ${time(g.updatedAt)}`)),
    );
  }

  // Only the changed fields go in the PATCH; a value that is not a number is sent as typed, so the node's own
  // validation names it (the page never second-guesses the API).
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = {};
    for (const [field, , read, numeric] of FIELDS) {
      const input = form.querySelector(`[data-field="${field}"]`);
      const raw = input.value.trim();
      if (raw === String(read(group))) {
        continue;
      }
      const value = numeric && raw !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
      const [outer, inner] = field.split('.');
      if (inner) {
        body[outer] = body[outer] ?? (outer === 'retryBackoff' ? { initialSeconds: group.retryBackoff.initialSeconds, maxSeconds: group.retryBackoff.maxSeconds } : {});
        body[outer][inner] = value;
      } else {
        body[outer] = value;
      }
    }
    for (const error of form.querySelectorAll('[data-error-for]')) {
      error.textContent = '';
    }
    for (const input of form.querySelectorAll('input')) {
      input.removeAttribute('aria-invalid');
    }
    if (Object.keys(body).length === 0) {
      say('Nothing changed.');
      return;
    }
    try {
      group = await patch(path, body);
      renderForm(group);
      say('Saved.');
      await loadStats();
    } catch (error) {
      if (error instanceof ApiError && error.status === 400) {
        for (const [field, messages] of Object.entries(error.fields)) {
          const slot = form.querySelector(`[data-error-for="${field}"]`) ?? form.querySelector('[data-error-for="body"]');
          slot.textContent = messages.join(' ');
          form.querySelector(`[data-field="${field}"]`)?.setAttribute('aria-invalid', 'true');
        }
        say('Not saved: see the fields marked below.', true);
      } else {
        say(`Not saved: ${error.message}`, true);
      }
    }
  });

  const act = async (what, request) => {
    try {
      const answer = await request();
      say(what(answer));
      await loadStats();
    } catch (error) {
      say(error.message, true);
    }
  };
  pause.addEventListener('click', () => act(() => 'Paused: nothing new goes to the target; calls in flight finish.', () => post(`${path}/pause`)));
  resume.addEventListener('click', () => act(() => 'Resumed.', () => post(`${path}/resume`)));
  confirm.addEventListener('input', () => {
    purge.disabled = confirm.value !== id;
  });
  purge.addEventListener('click', () => act((answer) => {
    confirm.value = '';
    purge.disabled = true;
    return `Purged ${count(answer.purged)} queued messages.`;
  }, () => post(`${path}/purge?confirm=${enc(confirm.value)}`)));

  const start = async () => {
    try {
      group = await get(path);
      renderForm(group);
    } catch (error) {
      say(error.status === 404 ? `No group '${id}' is defined.` : error.message, true);
      return [];
    }
    return [poll(loadStats, STATS_MS), poll(loadHistory, HISTORY_MS)];
  };
  const pollers = start();
  return { stop: () => pollers.then((list) => list.forEach((p) => p.stop())) };
}

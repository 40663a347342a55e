// A group's dead letters: each with its attempt history and body, redrive or purge by selection, by the time they
// died, or all. A large redrive goes a thousand at a time, so its progress shows and a closed tab stops it cleanly.

import { get, post, enc, ApiError } from './api.js';
import { ok, failed } from './live.js';
import { el, count, time, bytes } from './format.js';

const PAGE = 100;
const BATCH = 1000;

export function deadLetters(container, id) {
  const path = `/v1/groups/${enc(id)}/dead-letters`;
  let stopped = false;
  const notice = el('p', { id: 'notice', class: 'notice', hidden: true, role: 'status' });
  const progress = el('progress', { id: 'progress', class: 'progress', max: 1, value: 0, hidden: true });
  const progressText = el('span', { id: 'progress-text' });
  const all = el('input', { type: 'checkbox', id: 'select-all', 'aria-label': 'Select every dead letter shown' });
  const body = el('tbody');
  const more = el('button', { type: 'button', id: 'more', hidden: true }, 'Show more');
  const after = el('input', { id: 'dead-after', placeholder: 'died after, e.g. 2026-11-22T08:00:00Z', 'aria-label': 'Died after' });
  const before = el('input', { id: 'dead-before', placeholder: 'died before, e.g. 2026-11-22T09:00:00Z', 'aria-label': 'Died before' });
  const confirm = el('input', { id: 'purge-confirm', placeholder: `type ${id} to purge`, 'aria-label': 'Group id, to confirm a purge', autocomplete: 'off' });
  const button = (label, idAttr, cls) => el('button', { type: 'button', id: idAttr, class: cls }, label);
  const redriveSelected = button('Redrive selected', 'redrive-selected', 'primary');
  const purgeSelected = button('Purge selected', 'purge-selected', 'danger');
  const redriveRange = button('Redrive range', 'redrive-range');
  const purgeRange = button('Purge range', 'purge-range', 'danger');
  const redriveAll = button('Redrive all', 'redrive-all', 'primary');
  const purgeAll = button('Purge all', 'purge-all', 'danger');
  const summary = el('p', { id: 'summary', class: 'muted' });

  container.append(
    el('p', {}, el('a', { href: `#/groups/${enc(id)}` }, `← ${id}`)),
    el('h1', {}, `Dead letters of ${id}`),
    notice,
    el('div', { class: 'panel' },
      el('div', { class: 'actions' }, redriveSelected, purgeSelected, el('span', { class: 'muted' }, '·'), redriveAll, purgeAll, confirm),
      el('div', { class: 'actions range-inputs' }, after, before, redriveRange, purgeRange),
      el('div', { class: 'actions' }, progress, progressText)),
    summary,
    el('div', { class: 'scroll' }, el('table', { class: 'grid', id: 'dead-letters' },
      el('thead', {}, el('tr', {}, el('th', {}, all), ['Message', 'Attempts', 'Last error', 'Created', 'Died', 'Size'].map((h) => el('th', { scope: 'col' }, h)))),
      body)),
    more,
  );

  const say = (text, bad = false) => {
    notice.textContent = text;
    notice.className = bad ? 'notice bad' : 'notice';
    notice.hidden = false;
  };
  const selected = () => [...body.querySelectorAll('input[data-message]:checked')].map((box) => box.dataset.message);
  const confirmed = () => {
    if (confirm.value === id) {
      return true;
    }
    say(`Purging deletes for good: type the group id (${id}) in the box first.`, true);
    confirm.focus();
    return false;
  };
  const range = () => {
    const selection = {};
    if (after.value.trim()) {
      selection.deadAfter = after.value.trim();
    }
    if (before.value.trim()) {
      selection.deadBefore = before.value.trim();
    }
    return selection;
  };

  let nextAfter = null;
  let shown = 0;
  async function load(append) {
    const page = await get(`${path}?limit=${PAGE}${append && nextAfter ? `&after=${enc(nextAfter)}` : ''}`);
    ok();
    if (!append) {
      body.replaceChildren();
      shown = 0;
      all.checked = false;
    }
    for (const letter of page.deadLetters) {
      body.append(...rows(letter));
    }
    shown += page.deadLetters.length;
    nextAfter = page.nextAfter;
    more.hidden = !nextAfter;
    summary.textContent = shown === 0 ? 'No dead letters.' : `${count(shown)} shown${nextAfter ? ', more below' : ''}.`;
  }

  function rows(letter) {
    const history = el('tr', { class: 'history-row', hidden: true, 'data-history-for': letter.messageId },
      el('td', { colspan: 7 }, attemptTable(letter.attemptHistory ?? []), el('div', { class: 'body-slot' })));
    const toggle = el('button', { type: 'button', class: 'link', 'data-toggle': letter.messageId }, letter.messageId);
    toggle.addEventListener('click', async () => {
      history.hidden = !history.hidden;
      const slot = history.querySelector('.body-slot');
      if (!history.hidden && !slot.hasChildNodes()) {
        slot.append(await bodyPreview(letter.messageId));
      }
    });
    return [
      el('tr', { 'data-message': letter.messageId },
        el('td', {}, el('input', { type: 'checkbox', 'data-message': letter.messageId, 'aria-label': `Select ${letter.messageId}` })),
        el('td', {}, toggle, ' ', el('a', { href: `#/messages/${enc(letter.messageId)}`, title: 'Message page' }, '↗')),
        el('td', { class: 'num' }, count(letter.attempts)),
        el('td', { class: 'error-text' }, letter.lastError ?? '—'),
        el('td', {}, time(letter.createdAt)),
        el('td', {}, time(letter.deadAt)),
        el('td', { class: 'num' }, bytes(letter.sizeBytes))),
      history,
    ];
  }

  all.addEventListener('change', () => {
    for (const box of body.querySelectorAll('input[data-message]')) {
      box.checked = all.checked;
    }
  });
  more.addEventListener('click', () => load(true).catch((error) => say(error.message, true)));

  // Redrives go in batches of ids with a progress bar; each batch is one ordinary /v1 call.
  async function redriveInBatches(ids, total) {
    let done = 0;
    progress.hidden = false;
    progress.max = Math.max(1, total);
    for (let i = 0; i < ids.length && !stopped; i += BATCH) {
      const answer = await post(`${path}/redrive`, { messageIds: ids.slice(i, i + BATCH) });
      done += answer.redriven;
      progress.value = Math.min(done, total);
      progressText.textContent = `Redriven ${count(done)} of ${count(total)}`;
    }
    return done;
  }

  async function redriveEverything() {
    const stats = await get(`/v1/groups/${enc(id)}/stats`);
    const total = stats.dead;
    let done = 0;
    progress.hidden = false;
    progress.max = Math.max(1, total);
    progressText.textContent = `Redriven 0 of ${count(total)}`;
    // Each round takes the oldest thousand still dead; letters that die again meanwhile are not chased for ever.
    for (let round = 0; round <= Math.ceil(total / BATCH) && !stopped; round++) {
      const page = await get(`${path}?limit=${BATCH}`);
      if (page.deadLetters.length === 0) {
        break;
      }
      const answer = await post(`${path}/redrive`, { messageIds: page.deadLetters.map((d) => d.messageId) });
      done += answer.redriven;
      progress.value = Math.min(done, total);
      progressText.textContent = `Redriven ${count(done)} of ${count(total)}`;
    }
    return done;
  }

  const run = async (request, report) => {
    try {
      say(report(await request()));
      await load(false);
    } catch (error) {
      failed(error);
      say(error instanceof ApiError && error.fields ? Object.values(error.fields).flat().join(' ') || error.message : error.message, true);
    }
  };
  redriveSelected.addEventListener('click', () => {
    const ids = selected();
    if (ids.length === 0) {
      say('Select dead letters first.', true);
      return;
    }
    run(() => redriveInBatches(ids, ids.length), (n) => `Redriven ${count(n)}.`);
  });
  purgeSelected.addEventListener('click', () => {
    const ids = selected();
    if (ids.length === 0) {
      say('Select dead letters first.', true);
    } else if (confirmed()) {
      run(() => post(`${path}/purge?confirm=${enc(id)}`, { messageIds: ids }), (a) => `Purged ${count(a.purged)}.`);
    }
  });
  redriveRange.addEventListener('click', () => run(() => post(`${path}/redrive`, range()), (a) => `Redriven ${count(a.redriven)}.`));
  purgeRange.addEventListener('click', () => {
    if (confirmed()) {
      run(() => post(`${path}/purge?confirm=${enc(id)}`, range()), (a) => `Purged ${count(a.purged)}.`);
    }
  });
  redriveAll.addEventListener('click', () => run(redriveEverything, (n) => `Redriven ${count(n)}.`));
  purgeAll.addEventListener('click', () => {
    if (confirmed()) {
      run(() => post(`${path}/purge?confirm=${enc(id)}`), (a) => `Purged ${count(a.purged)}.`);
    }
  });

  load(false).catch((error) => {
    failed(error);
    say(error.status === 404 ? `No group '${id}' is defined.` : error.message, true);
  });
  return { stop: () => { stopped = true; } };
}

/** A message's failed attempts, oldest first. */
export function attemptTable(attempts) {
  if (attempts.length === 0) {
    return el('p', { class: 'muted' }, 'No attempts recorded.');
  }
  return el('table', { class: 'grid compact attempts' },
    el('thead', {}, el('tr', {}, ['Attempt', 'Step', 'Started', 'Duration', 'Status', 'Outcome', 'Error'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, attempts.map((a) => el('tr', {},
      el('td', { class: 'num' }, a.attempt),
      el('td', { class: 'num' }, a.step),
      el('td', {}, time(a.startedAt)),
      el('td', { class: 'num' }, `${count(a.durationMs)} ms`),
      el('td', { class: 'num', 'data-col': 'status' }, a.status ?? 'no answer'),
      el('td', {}, a.outcome),
      el('td', { 'data-col': 'error' }, a.error)))));
}

/** The first bytes of a stored body, as text or hex. */
export async function bodyPreview(messageId) {
  try {
    const b = await get(`/v1/dashboard/messages/${enc(messageId)}/body`);
    if (b.offloaded) {
      return el('p', { class: 'muted', 'data-body-note': messageId }, `Body of ${bytes(b.sizeBytes)} is in the payload store; not shown here.`);
    }
    if (!b.kept) {
      return el('p', { class: 'muted', 'data-body-note': messageId }, `Body of ${bytes(b.sizeBytes)} is no longer kept by the node (a delivered message drops it).`);
    }
    const note = `${b.contentType ?? 'no content type'}, ${bytes(b.sizeBytes)}${b.truncated ? `, first ${bytes(b.shownBytes)} shown` : ''}${b.text === null ? ', shown as hex' : ''}`;
    return el('div', {}, el('p', { class: 'muted' }, `Body: ${note}`), el('pre', { class: 'body', 'data-body': messageId }, b.text ?? b.hex.replace(/(..)/g, '$1 ').trim()));
  } catch (error) {
    return el('p', { class: 'muted' }, error.status === 404 ? 'The body is no longer kept.' : error.message);
  }
}

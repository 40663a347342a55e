// Message lookup by id: where it is, its attempts and steps, and what the target answered.

import { get, enc } from './api.js';
import { ok, failed } from './live.js';
import { el, count, time } from './format.js';
import { attemptTable, bodyPreview } from './deadletters.js';

export function messagePage(container, id) {
  const slot = el('div', { id: 'message' });
  container.append(el('h1', {}, 'Message ', el('code', {}, id)), slot);
  (async () => {
    try {
      const m = await get(`/v1/messages/${enc(id)}`);
      ok();
      const row = (label, value, key) => [el('dt', {}, label), el('dd', { 'data-field': key }, value)];
      slot.append(
        el('div', { class: 'panel' }, el('dl', { class: 'kv' },
          ...row('Status', m.state, 'state'),
          ...row('Group', el('a', { href: `#/groups/${enc(m.groupId)}` }, m.groupId), 'group'),
          ...row('Attempts', count(m.attempts), 'attempts'),
          ...row('Step', `${m.step}${m.cursor ? ` (cursor ${m.cursor})` : ''}`, 'step'),
          ...row('Last error', m.lastError ?? '—', 'lastError'),
          ...row('Created', time(m.createdAt), 'createdAt'),
          ...row('Due', time(m.visibleAt), 'visibleAt'),
          ...row('Completed', time(m.completedAt), 'completedAt'))),
        el('h2', {}, 'Attempts that did not deliver it'),
        attemptTable(m.attemptHistory ?? []),
        el('h2', {}, 'Finished steps'),
        (m.steps ?? []).length === 0 ? el('p', { class: 'muted' }, 'None.') : el('table', { class: 'grid compact' },
          el('thead', {}, el('tr', {}, ['Step', 'Status', 'Cursor', 'Finished'].map((h) => el('th', {}, h)))),
          el('tbody', {}, m.steps.map((s) => el('tr', {}, el('td', { class: 'num' }, s.step), el('td', { class: 'num' }, s.status), el('td', {}, s.cursor), el('td', {}, time(s.finishedAt)))))),
        el('h2', {}, 'Result'),
        m.result
          ? el('div', { id: 'result' }, el('p', { class: 'muted' }, `${m.result.status} ${m.result.contentType ?? ''}`), el('pre', { class: 'body' }, m.result.body ?? m.result.bodyBase64 ?? ''))
          : el('p', { class: 'muted' }, 'No result kept (only for messages sent with ?wait=).'),
        el('h2', {}, 'Body'),
        await bodyPreview(id),
      );
    } catch (error) {
      failed(error);
      slot.append(el('p', { class: 'notice bad' }, error.status === 404 ? `No message '${id}' is known (delivered messages are forgotten after the retention period).` : error.message));
    }
  })();
  return { stop() {} };
}

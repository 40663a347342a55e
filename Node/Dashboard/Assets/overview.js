// The overview: every group against its limits, one server-sorted page at a time (the node sorts and searches, so
// 100,000 groups cost the page no more than 50), refreshed every two seconds, with the node's totals above.

import { get, enc } from './api.js';
import { poll } from './live.js';
import { el, count, rate, age } from './format.js';

const PAGE = 50;
const REFRESH_MS = 2000;
let firstTableMarked = false;

const COLUMNS = [
  { key: 'id', label: 'Group', cell: (g) => el('a', { href: `#/groups/${enc(g.id)}` }, g.id) },
  { key: 'rate', label: 'Rate /s', title: 'Configured rate (token bucket refill per second)', cell: (g) => rate(g.ratePerSecond) },
  { key: 'burst', label: 'Burst', cell: (g) => count(g.burst) },
  { key: 'concurrency', label: 'Concurrency', title: 'Most calls in flight at once', cell: (g) => count(g.maxConcurrency) },
  { key: 'effectiveRate', label: 'Effective /s', title: 'The rate after adaptive back-pressure (AIMD); — when another node runs the group', cell: (g) => rate(g.effectiveRatePerSecond) },
  { key: 'tokens', label: 'Tokens', title: 'Tokens in the bucket now', cell: (g) => rate(g.tokens) },
  { key: 'backlog', label: 'Backlog', cell: (g) => count(g.backlog) },
  { key: 'oldestAge', label: 'Oldest', title: 'How long the oldest ready message has waited', cell: (g) => age(g.oldestAgeSeconds) },
  { key: 'inFlight', label: 'In flight', cell: (g) => count(g.inFlight) },
  { key: 'delivered', label: 'Delivered /s', cell: (g) => rate(g.deliveredPerSecond) },
  { key: 'failed', label: 'Failed /s', cell: (g) => rate(g.failedPerSecond) },
  { key: 'deadLetters', label: 'Dead', cell: (g) => (g.deadLetters ? el('a', { href: `#/groups/${enc(g.id)}/dead-letters` }, count(g.deadLetters)) : '0') },
  { key: 'paused', label: 'State', cell: state },
];

function state(g) {
  if (g.paused) {
    return el('span', { class: 'badge paused' }, 'paused');
  }
  if (g.throttledUntil) {
    return el('span', { class: 'badge throttled', title: `The target asked to wait until ${g.throttledUntil}` }, 'throttled');
  }
  return g.here ? el('span', { class: 'badge running' }, 'running') : el('span', { class: 'badge elsewhere', title: 'Run by another node of the cluster' }, 'elsewhere');
}

export function overview(container, params) {
  const query = {
    q: params.get('q') || '',
    sort: params.get('sort') || 'id',
    order: params.get('order') || 'asc',
    offset: Math.max(0, Number.parseInt(params.get('offset') || '0', 10) || 0),
  };

  const totals = el('section', { class: 'totals', id: 'totals' });
  const members = el('section', { class: 'members', id: 'members', hidden: true });
  const search = el('input', { type: 'search', id: 'search', placeholder: 'Search group ids', 'aria-label': 'Search group ids', value: query.q, autocomplete: 'off' });
  const range = el('span', { id: 'range', class: 'range' });
  const previous = el('button', { type: 'button', id: 'previous' }, '← Previous');
  const next = el('button', { type: 'button', id: 'next' }, 'Next →');
  const headRow = el('tr');
  const body = el('tbody');
  const table = el('table', { id: 'groups', class: 'grid' }, el('thead', {}, headRow), body);
  container.append(totals, members, el('div', { class: 'toolbar' }, search, el('span', { class: 'pager' }, previous, range, next)), el('div', { class: 'scroll' }, table));

  for (const column of COLUMNS) {
    const th = el('th', { 'data-sort': column.key, title: column.title, scope: 'col' }, el('button', { type: 'button', class: 'sort' }, column.label));
    th.addEventListener('click', () => {
      query.order = query.sort === column.key && query.order === 'asc' ? 'desc' : column.key === 'id' ? 'asc' : query.sort === column.key ? 'asc' : 'desc';
      query.sort = column.key;
      query.offset = 0;
      refresh();
    });
    headRow.append(th);
  }

  let lastPage = null;
  let debounce = null;
  search.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      query.q = search.value.trim();
      query.offset = 0;
      refresh();
    }, 250);
  });
  previous.addEventListener('click', () => {
    query.offset = Math.max(0, query.offset - PAGE);
    refresh();
  });
  next.addEventListener('click', () => {
    if (lastPage && query.offset + PAGE < lastPage.matched) {
      query.offset += PAGE;
      refresh();
    }
  });

  async function load() {
    const url = `/v1/dashboard/groups?limit=${PAGE}&offset=${query.offset}&sort=${enc(query.sort)}&order=${query.order}&q=${enc(query.q)}`;
    const page = await get(url);
    lastPage = page;
    render(page);
  }

  function render(page) {
    renderTotals(totals, members, page.node);
    for (const th of headRow.children) {
      th.dataset.active = th.dataset.sort === page.sort ? page.order : '';
      th.setAttribute('aria-sort', th.dataset.sort === page.sort ? (page.order === 'asc' ? 'ascending' : 'descending') : 'none');
    }
    body.replaceChildren(...page.groups.map((g) => el('tr', { 'data-group': g.id, class: g.paused ? 'is-paused' : '' },
      COLUMNS.map((column) => el('td', { class: column.key === 'id' || column.key === 'paused' ? '' : 'num', 'data-col': column.key }, column.cell(g))))));
    if (page.groups.length === 0) {
      body.append(el('tr', {}, el('td', { colspan: COLUMNS.length, class: 'empty' }, page.total === 0 ? 'No groups yet: define one with PUT /v1/groups/{id}.' : 'No group id contains that text.')));
    }
    const first = page.matched === 0 ? 0 : page.offset + 1;
    range.textContent = `${count(first)}–${count(page.offset + page.groups.length)} of ${count(page.matched)}${page.matched !== page.total ? ` (of ${count(page.total)} groups)` : ''}`;
    previous.disabled = page.offset === 0;
    next.disabled = page.offset + page.groups.length >= page.matched;
    if (!firstTableMarked) {
      firstTableMarked = true;
      performance.mark('cq-first-table');
    }
  }

  let poller = null;
  function refresh() {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value && !(key === 'sort' && value === 'id') && !(key === 'order' && value === 'asc')) {
        params.set(key, value);
      }
    }
    const hash = `#/${params.size ? `?${params}` : ''}`;
    if (location.hash !== hash && !(location.hash === '' && hash === '#/')) {
      history.replaceState(null, '', hash);
    }
    poller?.stop();
    poller = poll(load, REFRESH_MS);
  }

  refresh();
  return { stop: () => { poller?.stop(); clearTimeout(debounce); } };
}

function renderTotals(totals, members, node) {
  const item = (label, value, id) => el('div', { class: 'total', id }, el('span', { class: 'label' }, label), el('span', { class: 'value' }, value));
  totals.replaceChildren(
    item('Node', node.nodeId, 'total-node'),
    item('Groups', count(node.groups), 'total-groups'),
    item('Backlog', count(node.backlog), 'total-backlog'),
    item('In flight', `${count(node.callsInFlight)} / ${count(node.maxCallsInFlight)}`, 'total-inflight'),
    item('Delivered /s', rate(node.deliveredPerSecond), 'total-delivered'),
    item('Failed /s', rate(node.failedPerSecond), 'total-failed'),
    item('Dead letters', count(node.deadLetters), 'total-dead'),
    item('Paused', count(node.pausedGroups), 'total-paused'),
    item('Active groups', count(node.activeActors), 'total-active'),
    item('Ready', node.ready ? 'yes' : 'no', 'total-ready'),
  );
  members.hidden = !node.members;
  if (node.members) {
    members.replaceChildren(el('table', { class: 'grid compact' },
      el('thead', {}, el('tr', {}, ['Member', 'Shards', 'Groups with a backlog', ''].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, node.members.map((m) => el('tr', { 'data-member': m.nodeId },
        el('td', {}, m.nodeId, m.self ? ' (this node)' : ''),
        el('td', { class: 'num' }, count(m.shards)),
        el('td', { class: 'num' }, count(m.activeGroups)),
        el('td', {}, m.leaving ? 'leaving' : '')))),
    ));
  }
}

// The dashboard's shell: a hash router (so every view has a link, and the node serves one page), the token prompt,
// and the message lookup box. Views are functions (container, ...) returning { stop } for their timers.

import { onUnauthorized, setToken, token } from './api.js';
import { overview } from './overview.js';
import { groupPage } from './group.js';
import { deadLetters } from './deadletters.js';
import { messagePage } from './message.js';

const view = document.getElementById('view');
const tokenForm = document.getElementById('token-form');
const forget = document.getElementById('forget-token');
let current = null;
let asking = false;

function route() {
  current?.stop?.();
  current = null;
  view.replaceChildren();
  const hash = location.hash.slice(1) || '/';
  const [path, query] = hash.split('?');
  const params = new URLSearchParams(query || '');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  forget.hidden = !token();
  if (parts[0] === 'groups' && parts[1] && parts[2] === 'dead-letters') {
    current = deadLetters(view, parts[1]);
  } else if (parts[0] === 'groups' && parts[1]) {
    current = groupPage(view, parts[1]);
  } else if (parts[0] === 'messages' && parts[1]) {
    current = messagePage(view, parts[1]);
  } else {
    current = overview(view, params);
  }
}

// A 401: the node has an admin token and this tab has none (or a wrong one). Ask once; the answer is kept for the tab.
onUnauthorized(() => {
  if (asking) {
    return;
  }
  asking = true;
  current?.stop?.();
  current = null;
  view.replaceChildren();
  const hadToken = Boolean(token());
  setToken(null);
  tokenForm.querySelector('.token-error').textContent = hadToken ? 'The node refused that token.' : '';
  tokenForm.hidden = false;
  tokenForm.querySelector('input').focus();
});

tokenForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const input = tokenForm.querySelector('input');
  setToken(input.value.trim());
  input.value = '';
  tokenForm.hidden = true;
  asking = false;
  route();
});

forget.addEventListener('click', () => {
  setToken(null);
  route();
});

document.getElementById('lookup').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = event.target.querySelector('input');
  const id = input.value.trim();
  if (id) {
    location.hash = `#/messages/${encodeURIComponent(id)}`;
  }
});

window.addEventListener('hashchange', route);
route();

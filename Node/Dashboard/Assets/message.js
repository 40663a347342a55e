import { el } from './format.js';

export function messagePage(container, id) {
  container.append(el('p', {}, id));
  return { stop() {} };
}

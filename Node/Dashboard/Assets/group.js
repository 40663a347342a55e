import { el } from './format.js';

export function groupPage(container, id) {
  container.append(el('p', {}, id));
  return { stop() {} };
}

import { el } from './format.js';

export function deadLetters(container, id) {
  container.append(el('p', {}, id));
  return { stop() {} };
}

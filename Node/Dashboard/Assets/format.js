// Numbers as an operator reads them: few digits, thousands separated, durations in the largest useful units.

const whole = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const short = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

export function count(value) {
  return value === null || value === undefined ? '—' : whole.format(value);
}

export function rate(value) {
  if (value === null || value === undefined) {
    return '—';
  }
  return value >= 100 ? whole.format(value) : short.format(value);
}

export function age(seconds) {
  if (!seconds) {
    return '—';
  }
  if (seconds < 60) {
    return `${short.format(seconds < 10 ? seconds : Math.round(seconds))} s`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return `${minutes}m ${Math.round(seconds % 60)}s`;
  }
  const hours = Math.floor(minutes / 60);
  return hours < 48 ? `${hours}h ${minutes % 60}m` : `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

export function time(iso) {
  return iso ? new Date(iso).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '—';
}

export function bytes(value) {
  if (value < 1024) {
    return `${value} B`;
  }
  return value < 1024 * 1024 ? `${short.format(value / 1024)} KiB` : `${short.format(value / 1024 / 1024)} MiB`;
}

/** Builds an element: el('td', { class: 'num' }, 'text', child, ...). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) {
      continue;
    }
    if (name.startsWith('on')) {
      node.addEventListener(name.slice(2), value);
    } else if (value === true) {
      node.setAttribute(name, '');
    } else {
      node.setAttribute(name, value);
    }
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}

// Whether what the page shows is current: every poll reports here, and the header says "live", "stale" (no fresh
// answer for a while) or "unreachable" (the node did not answer at all), so a frozen number is never taken for a calm one.

import { Unreachable } from './api.js';

const STALE_AFTER_MS = 5000;
let lastOk = 0;
let lastError = null;

function render() {
  const status = document.getElementById('status');
  if (!status) {
    return;
  }
  const since = lastOk ? (performance.now() - lastOk) / 1000 : null;
  let state;
  let text;
  if (lastError instanceof Unreachable) {
    state = 'unreachable';
    text = since === null ? 'node unreachable' : `node unreachable — data from ${Math.round(since)} s ago`;
  } else if (lastError) {
    state = 'error';
    text = `error: ${lastError.message}`;
  } else if (since === null) {
    state = 'loading';
    text = 'loading…';
  } else if (since * 1000 > STALE_AFTER_MS) {
    state = 'stale';
    text = `stale — updated ${Math.round(since)} s ago`;
  } else {
    state = 'live';
    text = 'live';
  }
  status.textContent = text;
  status.dataset.state = state;
}

export function ok() {
  lastOk = performance.now();
  lastError = null;
  render();
}

export function failed(error) {
  lastError = error;
  render();
}

setInterval(render, 1000);

/**
 * Runs task now and again every intervalMs after each run ends (never two at once), reporting to the header.
 * Returns { stop } for when the view goes away.
 */
export function poll(task, intervalMs) {
  let stopped = false;
  let timer = null;
  const run = async () => {
    try {
      await task();
      if (!stopped) {
        ok();
      }
    } catch (error) {
      if (!stopped) {
        failed(error);
      }
    }
    if (!stopped) {
      timer = setTimeout(run, intervalMs);
    }
  };
  run();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

// Every call the page makes goes to the node's own /v1 API, the same endpoints and checks as curl. The admin token,
// when the node asks for one, lives in this tab's sessionStorage only and travels as a bearer token: never in a URL
// (logs, history, Referer) nor in a cookie (which the browser would attach to requests other sites make).

const TOKEN_KEY = 'clusterqueue.adminToken';

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }

  /** Field errors of a validation problem, as { field: [message, ...] }. */
  get fields() {
    return this.problem?.errors ?? {};
  }
}

/** Thrown when the node cannot be reached at all (no HTTP answer). */
export class Unreachable extends Error {}

const listeners = { unauthorized: [] };

export function onUnauthorized(listener) {
  listeners.unauthorized.push(listener);
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) {
    sessionStorage.setItem(TOKEN_KEY, value);
  } else {
    sessionStorage.removeItem(TOKEN_KEY);
  }
}

export async function call(method, path, body) {
  const headers = { accept: 'application/json' };
  const saved = token();
  if (saved) {
    headers.authorization = `Bearer ${saved}`;
  }
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      redirect: 'error',
    });
  } catch (error) {
    throw new Unreachable(error.message);
  }
  const type = response.headers.get('content-type') || '';
  const payload = type.includes('json') ? await response.json() : null;
  if (response.status === 401) {
    listeners.unauthorized.forEach((listener) => listener());
  }
  if (!response.ok) {
    throw new ApiError(response.status, payload);
  }
  return payload;
}

export const get = (path) => call('GET', path);
export const post = (path, body) => call('POST', path, body);
export const patch = (path, body) => call('PATCH', path, body);

/** A path segment or query value, escaped. */
export const enc = encodeURIComponent;

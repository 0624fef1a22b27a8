// Same-origin JSON fetch wrapper. Network failures reject with the browser's TypeError (unchanged);
// HTTP errors reject with ApiError carrying the API's {error: {code, message}}.

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

export async function api(method, path, body) {
  const init = {
    method,
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { Accept: 'application/json' },
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = res.status === 204 ? '' : await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const err = data && typeof data === 'object' && data.error ? data.error : {};
    throw new ApiError(
      res.status,
      err.code || `http_${res.status}`,
      err.message || res.statusText || `Request failed (${res.status})`,
      data,
    );
  }
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body);
export const patch = (path, body) => api('PATCH', path, body);

/** A failure worth retrying with the same request: no network, or the server says "try later". */
export function isTransient(err) {
  if (err instanceof TypeError) return true;
  return err instanceof ApiError && [429, 502, 503, 504].includes(err.status);
}

/** Human text for an error from api(). */
export function describeError(err) {
  if (err instanceof TypeError) return "Can't reach the server. Check your connection and try again.";
  if (err instanceof ApiError) return err.message;
  return String(err?.message || err || 'Something went wrong');
}

/** crypto.randomUUID() needs a secure context (https or localhost); fall back for plain-http LAN use. */
export function uuid() {
  if (globalThis.crypto && typeof crypto.randomUUID === 'function') {
    try {
      return crypto.randomUUID();
    } catch {
      /* insecure context: fall through */
    }
  }
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

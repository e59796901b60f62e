// The console's only door to the API: every /v1 call carries the signed-in key as
// `Authorization: Bearer`, and every failure becomes an ApiError with the API's own message
// (`{"error": {"type", "message", "request_id"}}`), which the pages show, never swallow.

const KEY_STORAGE = "agent-service.console.key";

/** The API key of this browser tab: sessionStorage only (gone when the tab closes). */
export const session = {
  get key() {
    return sessionStorage.getItem(KEY_STORAGE);
  },
  set key(value) {
    if (value) sessionStorage.setItem(KEY_STORAGE, value);
    else sessionStorage.removeItem(KEY_STORAGE);
  },
};

export class ApiError extends Error {
  constructor(status, type, message, requestId = null, retryAfter = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.type = type;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }
}

const listeners = { unauthorized: [] };

/** Called with the ApiError when a key is refused (401), whatever page made the call. */
export function onUnauthorized(listener) {
  listeners.unauthorized.push(listener);
}

function url(path, query) {
  const target = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value === null || value === undefined || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) target.searchParams.append(name, item);
  }
  return target.pathname + target.search;
}

function headers(extra, key) {
  const all = { Accept: "application/json", ...extra };
  const token = key ?? session.key;
  if (token) all.Authorization = `Bearer ${token}`;
  return all;
}

/** The ApiError of a failed response (the API's error shape, or the status line). */
export async function errorOf(response) {
  let type = "http_error";
  let message = `${response.status} ${response.statusText || "error"}`;
  let requestId = response.headers.get("X-Request-ID");
  try {
    const body = await response.json();
    if (body && body.error) {
      type = body.error.type || body.error.code || type;
      message = body.error.message || message;
      requestId = body.error.request_id || requestId;
    } else if (body && body.detail) {
      message = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    }
  } catch {
    // not JSON (a proxy's error page): the status line says what there is to say
  }
  const retry = Number(response.headers.get("Retry-After"));
  const error = new ApiError(response.status, type, message, requestId, retry > 0 ? retry : null);
  if (response.status === 401) listeners.unauthorized.forEach((listener) => listener(error));
  return error;
}

/**
 * Send a request; the raw Response when it succeeded, else throws ApiError.
 * options: {body (JSON), query, signal, headers, key (instead of the session's)}.
 */
export async function send(method, path, options = {}) {
  const init = {
    method,
    headers: headers(options.headers, options.key),
    signal: options.signal,
    cache: "no-store",
  };
  if (options.body !== undefined) {
    init.body = JSON.stringify(options.body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(url(path, options.query), init);
  } catch (exc) {
    if (exc.name === "AbortError") throw exc;
    throw new ApiError(0, "network", `cannot reach the API: ${exc.message}`);
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

/** A request whose answer is JSON. */
export async function call(method, path, options = {}) {
  const response = await send(method, path, options);
  if (response.status === 204) return null;
  return response.json();
}

export const get = (path, query, options = {}) => call("GET", path, { ...options, query });
export const post = (path, body, options = {}) => call("POST", path, { ...options, body });

/**
 * Read a text/event-stream response body, calling onEvent({event, data, id}) per event; `data`
 * is parsed as JSON when it is JSON. Returns when the stream ends. EventSource cannot send an
 * Authorization header, hence this reader over fetch's ReadableStream.
 */
export async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { event: "message", data: [], id: null };
  const dispatch = () => {
    if (event.data.length) {
      const raw = event.data.join("\n");
      let data = raw;
      try {
        data = JSON.parse(raw);
      } catch {
        // plain text data stays a string
      }
      onEvent({ event: event.event, data, id: event.id });
    }
    event = { event: "message", data: [], id: null };
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === "") dispatch();
      else if (line.startsWith(":")) continue; // a comment: keep-alive
      else {
        const colon = line.indexOf(":");
        const name = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (name === "event") event.event = value;
        else if (name === "data") event.data.push(value);
        else if (name === "id") event.id = value;
      }
    }
  }
  dispatch();
}

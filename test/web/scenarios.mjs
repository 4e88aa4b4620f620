// The calls every web client makes to helloworld.Greeter through grelay, shared by the Node
// clients (client.mjs) and the browser page (page.mjs), so that both report the same results
// for the same scenario. A scenario returns what the client library made of the call: reply
// messages, response header and trailer values, and error codes by their library name (Code's
// names, "NotFound") with the message as sent (ConnectError's rawMessage).
//
// The backend (test/integration/greeter_backend.py) is steered by keys that a Node client sends
// as request metadata; a browser may send only the headers that grelay's CORS policy allows, so
// it puts them after "?" in the request's name instead. |steer(name, keys, headers)| builds the
// request name and headers for its side.

import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { Greeter } from "./gen/helloworld_pb.js";

// Keeps a broken relay from hanging the run; no scenario but "deadline" sets a timeout.
const guardMs = 20000;
// The deadline of the "deadline" scenario, and how long the backend is asked to sleep.
export const deadlineMs = 1500;
const sleepMs = 10000;

export const metadataValue = "round-trip; 42";
export const errorMessage = "no greeting for café";
export const streamErrorMessage = "stream aborted after 2";

// For a Node client: every key as request metadata, values percent-encoded (metadata is ASCII).
export function steerByMetadata(name, keys = {}, headers = {}) {
  const all = { ...headers };
  for (const [k, v] of Object.entries(keys)) all[k] = encodeURIComponent(v);
  return { name, headers: all };
}

// For a browser: the keys in the request's name, only |headers| as metadata.
export function steerByName(name, keys = {}, headers = {}) {
  const query = new URLSearchParams(keys).toString();
  return { name: query ? `${name}?${query}` : name, headers };
}

function describe(error) {
  const e = ConnectError.from(error);
  return { code: Code[e.code], message: e.rawMessage };
}

function guarded(headers, extra = {}) {
  return { headers, signal: AbortSignal.timeout(guardMs), ...extra };
}

export const scenarios = {
  // The call id lets a test tell whether the call reached the backend at all.
  async unary(client, steer, callId) {
    const { name, headers } = steer("web", { "x-call-id": callId });
    const reply = await client.sayHello({ name }, guarded(headers));
    return { message: reply.message };
  },

  async stream(client, steer) {
    const { name, headers } = steer("stream", { "x-interval-ms": "20" });
    const messages = [];
    for await (const reply of client.sayHelloStream({ name, count: 3 }, guarded(headers))) {
      messages.push(reply.message);
    }
    return { messages };
  },

  async metadata(client, steer) {
    const { name, headers } = steer("meta", {}, { "x-custom": metadataValue });
    let header = null;
    let trailer = null;
    const reply = await client.sayHello({ name }, guarded(headers, {
      onHeader: (h) => { header = h.get("x-echo"); },
      onTrailer: (t) => { trailer = t.get("x-echo"); },
    }));
    return { message: reply.message, header, trailer };
  },

  async error(client, steer) {
    const { name, headers } = steer("web", {
      "x-status-code": "5", "x-status-message": errorMessage,
    });
    try {
      const reply = await client.sayHello({ name }, guarded(headers));
      return { code: "OK", message: reply.message };
    } catch (e) {
      return describe(e);
    }
  },

  // Replies, then an error status: the status arrives after data (trailers, or the end of the
  // stream), not in a Trailers-Only answer as in "error".
  async stream_error(client, steer) {
    const { name, headers } = steer("web", {
      "x-status-code": "10", "x-status-message": streamErrorMessage,
    });
    const messages = [];
    try {
      for await (const reply of client.sayHelloStream({ name, count: 2 }, guarded(headers))) {
        messages.push(reply.message);
      }
      return { messages, code: "OK" };
    } catch (e) {
      return { messages, ...describe(e) };
    }
  },

  // The backend sleeps far past the deadline. The client library reports DeadlineExceeded
  // whether its own timer or the relay's answer ends the call first, so the message is not
  // reported; the backend's events tell the deadline the call arrived with (x-call-id).
  async deadline(client, steer, callId) {
    const { name, headers } = steer("late", { "x-sleep-ms": String(sleepMs), "x-call-id": callId });
    try {
      const reply = await client.sayHello({ name }, { headers, timeoutMs: deadlineMs });
      return { code: "OK", message: reply.message };
    } catch (e) {
      return { code: describe(e).code };
    }
  },
};

// Runs |names| (default: all) one after the other on |transport|; a scenario that throws
// reports { thrown: { code, message } }. Call ids are "|idPrefix|-SCENARIO".
export async function runScenarios(transport, steer, idPrefix, names = Object.keys(scenarios)) {
  const client = createClient(Greeter, transport);
  const results = {};
  for (const name of names) {
    try {
      results[name] = await scenarios[name](client, steer, `${idPrefix}-${name}`);
    } catch (e) {
      results[name] = { thrown: describe(e) };
    }
  }
  return results;
}

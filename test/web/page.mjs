// Runs scenarios.mjs in the browser, against grelay at the page's ?target= URL, through
// @connectrpc/connect-web's transports (fetch: HTTP/1.1 from this page, and cross-origin, so
// every call goes through grelay's CORS answers). Query parameters:
//
//   target     grelay's base URL (required)
//   transport  one of the transports below, or all (default)
//   scenario   one scenario, or all (default)
//   id         prefix of the call ids (default "browser")
//
// The results, {TRANSPORT: {SCENARIO: result}}, go to window.grelayResults and to #output as JSON;
// a failure to start lands in window.grelayResults as {failed: MESSAGE}.

import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { runScenarios, scenarios, steerByName } from "./scenarios.mjs";

const transports = {
  "grpc-web": (baseUrl) => createGrpcWebTransport({ baseUrl }),
  "connect-json": (baseUrl) => createConnectTransport({ baseUrl, useBinaryFormat: false }),
  "connect-proto": (baseUrl) => createConnectTransport({ baseUrl, useBinaryFormat: true }),
};

function pick(all, wanted) {
  if (!wanted || wanted === "all") return Object.keys(all);
  if (!(wanted in all)) throw new Error(`unknown name "${wanted}"`);
  return [wanted];
}

function publish(results) {
  document.getElementById("output").textContent = JSON.stringify(results);
  window.grelayResults = results;
}

try {
  const params = new URLSearchParams(location.search);
  const target = params.get("target");
  if (!target) throw new Error("no ?target= given");
  const prefix = params.get("id") || "browser";
  const names = pick(scenarios, params.get("scenario"));
  const entries = await Promise.all(pick(transports, params.get("transport")).map(async (t) => [
    t, await runScenarios(transports[t](target), steerByName, `${prefix}-${t}`, names),
  ]));
  publish(Object.fromEntries(entries));
} catch (e) {
  publish({ failed: String(e) });
}

// Node clients of @connectrpc/connect-node calling helloworld.Greeter through grelay:
//
//   node client.mjs BASE_URL [TRANSPORT|all [SCENARIO|all]]
//
// e.g. `node client.mjs http://127.0.0.1:50050 connect-json-h1 unary`. Prints one JSON line,
// {TRANSPORT: {SCENARIO: result}}, with every transport running at the same time and its
// scenarios (scenarios.mjs) one after the other. The backend is steered by request metadata.

import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { runScenarios, scenarios, steerByMetadata } from "./scenarios.mjs";

export const transports = {
  "grpc-web-h1": (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
  "grpc-web-h2": (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "2" }),
  "connect-proto-h1": (baseUrl) =>
    createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true }),
  "connect-proto-h2": (baseUrl) =>
    createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true }),
  "connect-json-h1": (baseUrl) =>
    createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false }),
  "connect-json-h2": (baseUrl) =>
    createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: false }),
  // Plain gRPC on the same listener, which web = true must keep serving.
  "grpc-h2": (baseUrl) => createGrpcTransport({ baseUrl, httpVersion: "2" }),
};

function pick(all, wanted, what) {
  if (!wanted || wanted === "all") return Object.keys(all);
  if (!(wanted in all)) {
    console.error(`client.mjs: unknown ${what} "${wanted}" (${Object.keys(all).join(", ")})`);
    process.exit(2);
  }
  return [wanted];
}

const [baseUrl, transportArg, scenarioArg] = process.argv.slice(2);
if (!baseUrl) {
  console.error("usage: node client.mjs BASE_URL [TRANSPORT|all [SCENARIO|all]]");
  process.exit(2);
}
const names = pick(scenarios, scenarioArg, "scenario");
const entries = await Promise.all(pick(transports, transportArg, "transport").map(async (t) => [
  t, await runScenarios(transports[t](baseUrl), steerByMetadata, `node-${t}`, names),
]));
process.stdout.write(JSON.stringify(Object.fromEntries(entries)) + "\n");
// Pooled HTTP/2 sessions would keep the process alive for their idle timeout.
process.exit(0);

// Loaded first by every script here. Two jobs, neither of which changes what the SDK does on loopback:
// * refuse any connection that would leave 127.0.0.0/8 or ::1 (the tests talk only to this machine), and report
//   it, so that a test can show *where* a client would have gone (169.254.170.2 for a RELATIVE_URI);
// * record the status of every HTTP answer the process receives, so that a test can see retries the SDK hides.
import diagnostics from "node:diagnostics_channel";
import net from "node:net";

export const blocked = [];
export const answers = [];

const isLoopback = (host) =>
  host === undefined || host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);

const originalConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function connect(...args) {
  // net.createConnection() passes [options, callback] as one normalised array; a user may pass (options) or (port, host).
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  const options = typeof first === "object" && first !== null ? first : { port: first, host: args[1] };
  // A path names a Unix socket; http's agent passes `path: null` for TCP.
  if (!options.path && !isLoopback(options.host)) {
    const where = `${options.host}:${options.port}`;
    blocked.push(where);
    process.stderr.write(`BLOCKED connection to ${where}\n`);
    const error = Object.assign(new Error(`connect ECONNREFUSED ${where} (blocked by the test)`), {
      code: "ECONNREFUSED",
    });
    process.nextTick(() => this.destroy(error));
    return this;
  }
  return originalConnect.apply(this, args);
};

diagnostics.subscribe("http.client.response.finish", ({ request, response }) => {
  answers.push({ host: request.host, path: request.path, status: response.statusCode });
});

// What the guard saw since the last call: connections refused, and the status of every HTTP answer.
export function observed() {
  return { blocked: blocked.splice(0), answers: answers.splice(0) };
}

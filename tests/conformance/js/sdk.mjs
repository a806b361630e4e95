// Shared by the client scripts: build an STS client the way a user's program would, call GetCallerIdentity, and
// describe the outcome (or the error, exactly as the SDK worded it) as one JSON object.
import { inspect } from "node:util";

import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { fromContainerMetadata, fromHttp } from "@aws-sdk/credential-providers";

export { observed } from "./guard.mjs";

// "default": the SDK's own chain, as every Node tool gets it; "http" and "container": one provider, explicitly.
export function makeProvider(kind, options = {}) {
  if (kind === "default") return undefined;
  if (kind === "http") return fromHttp(options);
  if (kind === "container") return fromContainerMetadata(options);
  throw new Error(`unknown provider ${kind}`);
}

export function makeClient(endpoint, kind, options = {}) {
  const credentials = makeProvider(kind, options);
  return new STSClient({ endpoint, ...(credentials ? { credentials } : {}) });
}

export async function whoami(client) {
  const started = Date.now();
  try {
    const identity = await client.send(new GetCallerIdentityCommand({}));
    const credentials = await client.config.credentials(); // memoised: the very credentials the call was signed with
    return {
      ok: true,
      arn: identity.Arn,
      account: identity.Account,
      accessKeyId: credentials.accessKeyId,
      expiration: credentials.expiration ? credentials.expiration.toISOString() : null,
      accountId: credentials.accountId ?? null,
      region: await client.config.region(),
      elapsedMs: Date.now() - started,
    };
  } catch (error) {
    return {
      ok: false,
      name: error?.name,
      message: String(error?.message ?? error),
      // What Node prints for an uncaught error: the message plus every property the SDK attached.
      inspected: inspect(error, { depth: 2 }),
      statusCode: error?.statusCode ?? null,
      Code: error?.Code ?? null,
      Message: error?.Message ?? null,
      elapsedMs: Date.now() - started,
    };
  }
}

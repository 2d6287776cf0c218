// Runs the official OpenFeature OFREP server provider (@openfeature/ofrep-provider,
// single-flag evaluation; it has no event stream support) against an OFREP server.
//
// Environment: OFREP_URL (base URL), FLAG (a string flag), COUNT (evaluations, one
// after the other, default 3). Prints one JSON line per evaluation:
//   {"value":...,"errorCode":...,"errorMessage":...,"requests":N}
// where requests counts the HTTP requests the provider has really sent so far.
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

const baseUrl = process.env.OFREP_URL;
const flag = process.env.FLAG;
const count = Number(process.env.COUNT || '3');
if (!baseUrl || !flag) {
  console.error('harness: OFREP_URL and FLAG are required');
  process.exit(2);
}

let requests = 0;
const countingFetch = (...args) => {
  requests++;
  return fetch(...args);
};

await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl, fetchImplementation: countingFetch }));
const client = OpenFeature.getClient();
for (let i = 0; i < count; i++) {
  const d = await client.getStringDetails(flag, '<default>', { targetingKey: 'node-server-user' });
  process.stdout.write(
    JSON.stringify({ value: d.value, errorCode: d.errorCode ?? null, errorMessage: d.errorMessage ?? null, requests }) + '\n',
  );
}
await OpenFeature.close();

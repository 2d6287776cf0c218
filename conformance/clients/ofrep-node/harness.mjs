// Runs the official OpenFeature OFREP web provider (@openfeature/ofrep-web-provider,
// with ADR-0008 event stream support) against an OFREP server, in Node.
//
// Environment: OFREP_URL (base URL), OFREP_API_KEY (optional, sent as X-API-Key on
// evaluation requests only: the event stream is opened by EventSource, which sends
// no headers, with the ticket from the bulk response), FLAGS (comma-separated keys
// to report).
//
// Polling is off (pollInterval 0), so the only way the provider learns of a change
// is the event stream. Each line on stdout is one JSON object:
//   {"event":"ready","values":{...}}
//   {"event":"eventsource-open","path":"/ofrep/v1/events"}   (path only: the query holds the ticket)
//   {"event":"changed","flagsChanged":[...],"values":{...}}
//   {"event":"stale"|"error","message":"..."}
// It exits when its stdin closes, so a test that dies never leaves it behind.
import { EventSource as NodeEventSource } from 'eventsource';
import { OpenFeature, ProviderEvents } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

// Browsers have EventSource; Node 20 does not. The provider uses the global one.
globalThis.EventSource = class extends NodeEventSource {
  constructor(url, init) {
    super(url, init);
    this.addEventListener('open', () => out({ event: 'eventsource-open', path: new URL(url).pathname }));
  }
};

const baseUrl = process.env.OFREP_URL;
const apiKey = process.env.OFREP_API_KEY;
const keys = (process.env.FLAGS || '').split(',').filter(Boolean);
if (!baseUrl || keys.length === 0) {
  console.error('harness: OFREP_URL and FLAGS are required');
  process.exit(2);
}

const provider = new OFREPWebProvider({
  baseUrl,
  headers: apiKey ? [['X-API-Key', apiKey]] : [],
  pollInterval: 0,
  changeDetection: 'sse',
  cacheMode: 'disabled',
});
const client = OpenFeature.getClient();
const values = () => Object.fromEntries(keys.map((k) => [k, client.getStringDetails(k, '<default>').value]));

client.addHandler(ProviderEvents.ConfigurationChanged, (d) =>
  out({ event: 'changed', flagsChanged: d?.flagsChanged ?? [], values: values() }),
);
client.addHandler(ProviderEvents.Stale, (d) => out({ event: 'stale', message: String(d?.message) }));
client.addHandler(ProviderEvents.Error, (d) => out({ event: 'error', message: String(d?.message) }));

await OpenFeature.setContext({ targetingKey: 'node-user' });
await OpenFeature.setProviderAndWait(provider);
out({ event: 'ready', values: values() });

process.stdin.resume();
process.stdin.on('end', async () => {
  await OpenFeature.close();
  process.exit(0);
});

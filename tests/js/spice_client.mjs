// Drives Spice's own JavaScript SDK (@spiceai/spice, pinned in package-lock.json) for
// tests/e2e/test_spice_clients.py: one SDK call per run, its outcome as one JSON line on stdout.
//
//   node spice_client.mjs <refresh|ready|healthy> '{"httpUrl": "...", "apiKey": "...", ...}'
//
// The SDK is called unchanged, the way a Spice user calls it: new SpiceClient({apiKey, httpUrl}).
import { SpiceClient } from '@spiceai/spice';

const [operation, rawArgs] = process.argv.slice(2);
const args = JSON.parse(rawArgs || '{}');
const client = new SpiceClient({ apiKey: args.apiKey, httpUrl: args.httpUrl, httpOnly: true });

async function run() {
  switch (operation) {
    case 'refresh':
      return client.refreshAcceleration(args.dataset, args.options);
    case 'ready':
      return client.isSpiceReady();
    case 'healthy':
      return client.isSpiceHealthy();
    default:
      throw new Error(`unknown operation ${operation}; use refresh, ready or healthy`);
  }
}

try {
  const result = await run();
  process.stdout.write(JSON.stringify({ ok: true, result }) + '\n');
} catch (error) {
  process.stdout.write(JSON.stringify({ ok: false, error: String(error && error.message ? error.message : error) }) + '\n');
} finally {
  if (typeof client.close === 'function') {
    await Promise.resolve(client.close()).catch(() => {});
  }
}

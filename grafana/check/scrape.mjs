// Waits for a freshly started service to answer on its metrics URL, then
// saves what it answered.
//
// Usage: node scrape.mjs URL OUT_FILE DEADLINE_SECONDS PID
//
// Polls every 100 ms until the URL answers 200 or the deadline passes, and
// gives up early if process PID (the service) has exited, since then nothing
// will ever answer. Exits 1 on either failure.

import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const [url, out, seconds, pid] = process.argv.slice(2);
if (!url || !out || !seconds || !pid) {
  console.error('usage: node scrape.mjs URL OUT_FILE DEADLINE_SECONDS PID');
  process.exit(2);
}

const started = Date.now();
const deadline = started + Number(seconds) * 1000;
let lastError = 'no answer yet';

while (Date.now() < deadline) {
  if (!alive(Number(pid))) {
    console.error(`the service (pid ${pid}) exited before answering ${url}`);
    process.exit(1);
  }

  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    if (response.ok) {
      writeFileSync(out, await response.text());
      console.log(`${url} answered after ${Date.now() - started} ms`);
      process.exit(0);
    }
    lastError = `status ${response.status}`;
  } catch (error) {
    lastError = error.cause?.code ?? error.message;
  }
  await sleep(100);
}

console.error(`${url} did not answer within ${seconds} s (last: ${lastError})`);
process.exit(1);

/** Whether a process exists (signal 0 only asks). */
function alive(id) {
  try {
    process.kill(id, 0);
    return true;
  } catch {
    return false;
  }
}

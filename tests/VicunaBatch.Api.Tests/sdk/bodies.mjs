// OpenAI request bodies beyond one string prompt, sent through the plain OpenAI SDK's batch flow.
// Usage: OPENAI_BASE_URL=... OPENAI_API_KEY=... node bodies.mjs chat.jsonl completions.jsonl refused.jsonl
// Prints one JSON line per input file: {"endpoint", "status", "outputs": {custom_id: body}, "errors": {custom_id: {code, param}}};
// for a create the server refuses, {"endpoint", "status": <HTTP status>, "code"}.
import fs from 'node:fs';
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: process.env.OPENAI_API_KEY });

async function lines(fileId) {
  if (!fileId) return [];
  const content = await client.files.content(fileId);
  return (await content.text()).split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line));
}

async function run(path, endpoint) {
  const file = await client.files.create({ file: fs.createReadStream(path), purpose: 'batch' });
  let batch;
  try {
    batch = await client.batches.create({ input_file_id: file.id, endpoint, completion_window: '24h' });
  } catch (e) {
    if (!(e instanceof OpenAI.APIError)) throw e;
    return { endpoint, status: e.status, code: e.code };
  }
  const deadline = Date.now() + 60_000;
  while (!['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) {
    if (Date.now() > deadline) throw new Error(`batch ${batch.id} still ${batch.status} after 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 250));
    batch = await client.batches.retrieve(batch.id);
  }
  const outputs = Object.fromEntries((await lines(batch.output_file_id)).map((l) => [l.custom_id, l.response.body]));
  // an error line's error is ours ({code, param}) or OpenAI's response.body.error
  const errors = Object.fromEntries((await lines(batch.error_file_id)).map((l) => {
    const error = l.error ?? l.response?.body?.error;
    return [l.custom_id, { code: error.code, param: error.param ?? null }];
  }));
  return { endpoint, status: batch.status, outputs, errors };
}

console.log(JSON.stringify(await run(process.argv[2], '/v1/chat/completions')));
console.log(JSON.stringify(await run(process.argv[3], '/v1/completions')));
console.log(JSON.stringify(await run(process.argv[4], '/v1/chat/completions')));

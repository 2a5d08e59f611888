// Calls of the plain OpenAI SDK that vicuna-batch refuses as OpenAI does (issue 22); only baseURL and apiKey point at it.
// Usage: OPENAI_BASE_URL=http://127.0.0.1:8080/v1 OPENAI_API_KEY=... node refusals.mjs input.jsonl
// Prints one JSON line per call: {"case", "status", "type", "param", "code", "message"} ({"case", "status": 200, "id"} if accepted).
import fs from 'node:fs';
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: process.env.OPENAI_API_KEY, maxRetries: 0 });

const file = await client.files.create({ file: fs.createReadStream(process.argv[2]), purpose: 'batch' });
const base = { input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' };
const cases = {
  'metadata: 17 pairs': { ...base, metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) },
  'metadata: a key of 65 characters': { ...base, metadata: { ['k'.repeat(65)]: 'v' } },
  'metadata: a value of 513 characters': { ...base, metadata: { k: 'v'.repeat(513) } },
  'completion_window: 1h': { ...base, completion_window: '1h' },
};
for (const [name, body] of Object.entries(cases)) {
  try {
    const batch = await client.batches.create(body);
    console.log(JSON.stringify({ case: name, status: 200, id: batch.id }));
  } catch (e) {
    if (!(e instanceof OpenAI.APIError)) throw e;
    console.log(JSON.stringify({ case: name, status: e.status, type: e.type, param: e.param, code: e.code, message: e.error?.message }));
  }
}

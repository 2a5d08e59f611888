// response_format through the plain OpenAI SDK (issue 23): a batch whose lines ask for json_schema (strict) and
// json_object, and one line whose schema uses a keyword vicuna-batch does not enforce (an unsupported_parameter error
// line, the rest running); only baseURL and apiKey point at vicuna-batch.
// Usage: OPENAI_BASE_URL=http://127.0.0.1:8080/v1 OPENAI_API_KEY=... node json_schema.mjs input.jsonl
// Writes input.jsonl, then prints one JSON line per output or error line,
// {"custom_id", "finish_reason", "content"} or {"custom_id", "error_code", "message"}.
import fs from 'node:fs';
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: process.env.OPENAI_API_KEY });

const reading = {
  type: 'object',
  properties: { x: { type: 'integer' }, ok: { type: 'boolean' }, kind: { enum: ['a', 'b'] }, n: { type: 'null' } },
  required: ['x', 'ok', 'kind', 'n'],
  additionalProperties: false,
};
const line = (id, responseFormat, temperature) => JSON.stringify({
  custom_id: id, method: 'POST', url: '/v1/chat/completions',
  body: { messages: [{ role: 'user', content: `Reading ${id} as JSON` }], max_tokens: 400, temperature, seed: 7, response_format: responseFormat },
});
const schemaFormat = { type: 'json_schema', json_schema: { name: 'reading', strict: true, schema: reading } };
const lines = [
  line('schema-greedy', schemaFormat, 0),
  line('schema-sampled', schemaFormat, 1),
  line('object', { type: 'json_object' }, 0),
  line('unsupported', { type: 'json_schema', json_schema: { name: 'r', schema: { type: 'string', maxLength: 5 } } }, 0),
];
fs.writeFileSync(process.argv[2], lines.join('\n') + '\n');

const file = await client.files.create({ file: fs.createReadStream(process.argv[2]), purpose: 'batch' });
let batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
const deadline = Date.now() + 60_000;
while (!['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) {
  if (Date.now() > deadline) throw new Error(`batch ${batch.id} still ${batch.status} after 60 s`);
  await new Promise((resolve) => setTimeout(resolve, 250));
  batch = await client.batches.retrieve(batch.id);
}
const linesOf = async (id) => id ? (await (await client.files.content(id)).text()).split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l)) : [];
for (const out of await linesOf(batch.output_file_id)) {
  const choice = out.response.body.choices[0];
  console.log(JSON.stringify({ custom_id: out.custom_id, finish_reason: choice.finish_reason, content: choice.message.content }));
}
for (const err of await linesOf(batch.error_file_id)) {
  const error = err.error ?? err.response?.body?.error;
  console.log(JSON.stringify({ custom_id: err.custom_id, error_code: error?.code, message: error?.message }));
}


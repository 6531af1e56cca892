// The official `ollama` and `openai` JavaScript clients against a live
// `parallama serve`: nothing of the clients is mocked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { Ollama } from 'ollama';
import OpenAI from 'openai';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = process.env.PARALLAMA_BIN ?? join(ROOT, 'build', 'bin', 'parallama');
const DEMO = join(ROOT, 'assets', 'stories260k.gguf');
const MODEL = 'stories260k';

let server, ollama, openai, port, tmp;
let log = '';

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

before(async () => {
  port = await freePort();
  tmp = mkdtempSync(join(tmpdir(), 'parallama-js-'));
  const env = { ...process.env, OLLAMA_HOST: `127.0.0.1:${port}`, OLLAMA_MODELS: join(tmp, 'models'),
                PARALLAMA_DEMO_MODEL: DEMO, OLLAMA_NUM_PARALLEL: '2', PARALLAMA_THREADS: '1' };
  server = spawn(BIN, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  server.stdout.on('data', (d) => { log += d; });
  server.stderr.on('data', (d) => { log += d; });
  const host = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    try { if ((await fetch(host)).ok) break; } catch { await new Promise((r) => setTimeout(r, 100)); }
  }
  ollama = new Ollama({ host });
  openai = new OpenAI({ baseURL: `${host}/v1`, apiKey: 'unused' });
});

after(() => { server.kill('SIGTERM'); });

const greedy = { temperature: 0, num_predict: 20 };

test('ollama: list and show', async () => {
  const { models } = await ollama.list();
  const m = models.find((x) => x.name === 'stories260k:latest');
  assert.ok(m, 'the demo model is listed');
  assert.equal(m.details.family, 'llama');
  const info = await ollama.show({ model: MODEL });
  assert.equal(info.model_info['general.architecture'], 'llama');
  assert.match(info.modelfile, /FROM /);
});

test('ollama: generate, streamed and not, agree', async () => {
  const whole = await ollama.generate({ model: MODEL, prompt: 'Once upon a time', options: greedy });
  assert.equal(whole.done, true);
  assert.equal(whole.eval_count, 20);
  assert.ok(whole.response.length > 0);
  let text = '';
  let last;
  for await (const part of await ollama.generate({ model: MODEL, prompt: 'Once upon a time', options: greedy, stream: true })) {
    text += part.response;
    last = part;
  }
  assert.equal(text, whole.response);
  assert.equal(last.done_reason, 'length');
});

test('ollama: chat, streamed and not', async () => {
  const messages = [{ role: 'user', content: 'Tom ran.' }];
  const whole = await ollama.chat({ model: MODEL, messages, options: greedy });
  assert.equal(whole.message.role, 'assistant');
  let text = '';
  for await (const part of await ollama.chat({ model: MODEL, messages, options: greedy, stream: true })) text += part.message.content;
  assert.equal(text, whole.message.content);
});

test('ollama: embed and ps', async () => {
  const r = await ollama.embed({ model: MODEL, input: ['Tom ran.', 'Lily sat.'] });
  assert.equal(r.embeddings.length, 2);
  assert.equal(r.embeddings[0].length, 64);
  const norm = Math.sqrt(r.embeddings[0].reduce((a, x) => a + x * x, 0));
  assert.ok(Math.abs(norm - 1) < 1e-4);
  const ps = await ollama.ps();
  const m = ps.models.find((x) => x.name === 'stories260k:latest');
  assert.ok(m);
  assert.equal(m.num_parallel, 2);
});

test('ollama: create from a model and from an uploaded GGUF, then delete', async () => {
  await ollama.create({ model: 'teller', from: MODEL, system: 'Lily sat.', parameters: { temperature: 0 } });
  const info = await ollama.show({ model: 'teller' });
  assert.equal(info.system, 'Lily sat.');
  // A GGUF file uploaded as a blob (what `ollama create` does with FROM ./file.gguf).
  const gguf = join(tmp, 'tiny.gguf');
  execFileSync(BIN, ['make-model', '-o', gguf, '--vocab', DEMO, '--type', 'q4_0', '--n-embd', '64', '--n-head', '4']);
  const data = readFileSync(gguf);
  const digest = 'sha256:' + createHash('sha256').update(data).digest('hex');
  const up = await fetch(`http://127.0.0.1:${port}/api/blobs/${digest}`, { method: 'POST', body: data });
  assert.equal(up.status, 201);
  await ollama.create({ model: 'tiny', files: { 'tiny.gguf': digest } });
  const tiny = (await ollama.list()).models.find((x) => x.name === 'tiny:latest');
  assert.equal(tiny.details.quantization_level, 'Q4_0');
  await ollama.delete({ model: 'teller' });
  await ollama.delete({ model: 'tiny' });
  const names = (await ollama.list()).models.map((x) => x.name);
  assert.ok(!names.includes('teller:latest') && !names.includes('tiny:latest'));
  await assert.rejects(ollama.show({ model: 'teller' }), /not found/);
});

test('ollama: errors reach the client', async () => {
  await assert.rejects(ollama.generate({ model: 'no-such-model', prompt: 'x' }), /not found/);
  await assert.rejects(ollama.generate({ model: MODEL, prompt: 'x', options: { temperature: 'hot' } }), /temperature/);
});

test('openai: chat completions, streamed and not', async () => {
  const messages = [{ role: 'user', content: 'Tom ran.' }];
  const whole = await openai.chat.completions.create({ model: MODEL, messages, temperature: 0, max_tokens: 20 });
  assert.equal(whole.choices[0].message.role, 'assistant');
  assert.equal(whole.choices[0].finish_reason, 'length');
  assert.equal(whole.usage.completion_tokens, 20);
  const stream = await openai.chat.completions.create({ model: MODEL, messages, temperature: 0, max_tokens: 20, stream: true });
  let text = '';
  let finish;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, 'length');
  // The same as Ollama's own endpoint with the same settings.
  const o = await ollama.chat({ model: MODEL, messages, options: { temperature: 0, num_predict: 20 } });
  assert.equal(o.message.content, text);
});

test('openai: models and embeddings', async () => {
  const models = await openai.models.list();
  assert.ok(models.data.some((m) => m.id === 'stories260k:latest'));
  const r = await openai.embeddings.create({ model: MODEL, input: ['Tom ran.', 'Lily sat.'] });  // base64 on the wire
  assert.equal(r.data.length, 2);
  assert.equal(r.data[0].embedding.length, 64);
  const f = await openai.embeddings.create({ model: MODEL, input: 'Tom ran.', encoding_format: 'float' });
  f.data[0].embedding.forEach((x, i) => assert.ok(Math.abs(x - r.data[0].embedding[i]) < 1e-4));
  await assert.rejects(openai.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status === 404);
});

// Structured output: the clients' own `format` / `response_format` fields reach the grammar, and what comes
// back parses and has the schema's shape.
const PERSON = {
  type: 'object',
  properties: { name: { type: 'string', maxLength: 10 }, pets: { type: 'array', items: { enum: ['cat', 'dog'] }, maxItems: 2 },
                ok: { type: 'boolean' } },
  required: ['name', 'pets', 'ok'],
};

function checkPerson(text) {
  const v = JSON.parse(text);
  assert.deepEqual(Object.keys(v), ['name', 'pets', 'ok']);  // the schema's order
  assert.equal(typeof v.name, 'string');
  assert.ok([...v.name].length <= 10);
  assert.ok(Array.isArray(v.pets) && v.pets.length <= 2 && v.pets.every((p) => p === 'cat' || p === 'dog'));
  assert.equal(typeof v.ok, 'boolean');
}

test('ollama: format schema on generate and chat', async () => {
  const g = await ollama.generate({ model: MODEL, prompt: 'Once upon a time', format: PERSON, options: { temperature: 0, num_predict: 200 } });
  assert.equal(g.done_reason, 'stop');
  checkPerson(g.response);
  const c = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'Who?' }], format: PERSON,
                                options: { temperature: 1, seed: 3, num_predict: 200 } });
  checkPerson(c.message.content);
  let text = '';
  for await (const part of await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'Who?' }], format: PERSON,
                                               options: { temperature: 1, seed: 3, num_predict: 200 }, stream: true })) {
    text += part.message.content;
  }
  assert.equal(text, c.message.content);
  await assert.rejects(ollama.generate({ model: MODEL, prompt: 'x', format: { type: 'string', pattern: 'a' } }), /pattern/);
});

test('openai: response_format json_schema and json_object', async () => {
  const r = await openai.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'Who?' }], temperature: 0, max_tokens: 200,
    response_format: { type: 'json_schema', json_schema: { name: 'person', schema: PERSON, strict: true } },
  });
  assert.equal(r.choices[0].finish_reason, 'stop');
  checkPerson(r.choices[0].message.content);
  const o = await openai.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'Who?' }], max_tokens: 30, seed: 1,
    response_format: { type: 'json_object' },
  });
  assert.ok(o.choices[0].message.content.startsWith('{'));
  await assert.rejects(openai.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'x' }], response_format: { type: 'xml' },
  }), (e) => e.status === 400 && /response_format/.test(e.message));
});

// Tool calls end to end: a template without a call marker makes the server read Llama 3's bare JSON calls, and a
// format schema that only get_weather(city="Paris") satisfies makes even this tiny model write one.
test('tool calls forced by a format schema come back through both clients', async () => {
  await ollama.create({ model: 'tooled-js', from: MODEL,
                        template: '{{ if .Tools }}Tools: {{ range .Tools }}{{ .Function.Name }} {{ end }}{{ end }}{{ range .Messages }}{{ .Content }} {{ end }}' });
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather in a city',
                                                 parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
  const call = {
    type: 'object',
    properties: { name: { const: 'get_weather' },
                  parameters: { type: 'object', properties: { city: { const: 'Paris' } }, required: ['city'] } },
    required: ['name', 'parameters'],
  };
  const messages = [{ role: 'user', content: 'Weather in Paris?' }];
  const o = await ollama.chat({ model: 'tooled-js', messages, tools, format: call, options: { temperature: 0, num_predict: 100 } });
  assert.equal(o.message.tool_calls.length, 1);
  assert.equal(o.message.tool_calls[0].function.name, 'get_weather');
  assert.deepEqual(o.message.tool_calls[0].function.arguments, { city: 'Paris' });

  const r = await openai.chat.completions.create({
    model: 'tooled-js', messages, tools, temperature: 0, max_tokens: 100,
    response_format: { type: 'json_schema', json_schema: { name: 'call', schema: call } },
  });
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  const calls = r.choices[0].message.tool_calls;
  assert.equal(calls.length, 1);
  assert.equal(calls[0].function.name, 'get_weather');
  assert.equal(typeof calls[0].function.arguments, 'string');
  assert.deepEqual(JSON.parse(calls[0].function.arguments), { city: 'Paris' });
  await ollama.delete({ model: 'tooled-js' });
});

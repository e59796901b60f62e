// The OpenAI npm SDK and the Vercel AI SDK as clients of agent-service, one scenario per run:
//   node clients.mjs <client> <scenario>
// with AGENT_BASE_URL (http://host:port/v1) and AGENT_API_KEY in the environment. Prints one
// JSON line with what the scenario saw and exits 0, or prints the error and exits 1.
// tests/integration/test_openai_js.py runs every client x scenario and checks the output.
// Clients: openai-chat, openai-responses (the `openai` package), ai-chat (`.chat(model)`),
// ai-responses (the AI SDK's default provider, on /v1/responses).
import OpenAI from "openai";
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText, tool, Output, stepCountIs } from "ai";
import { z } from "zod";

const baseURL = process.env.AGENT_BASE_URL;
const apiKey = process.env.AGENT_API_KEY;
const FORECAST = "18 degrees and sunny";
const ASK_WEATHER = 'call tool get_weather with {"city": "Paris"}';
const QUESTION = "what is 12*(3+4)?";
const WEATHER_SCHEMA = {
  type: "object",
  properties: { city: { type: "string" } },
  required: ["city"],
  additionalProperties: false,
};
const REPORT_SCHEMA = {
  type: "object",
  properties: { city: { type: "string" }, temperature: { type: "number" }, sunny: { type: "boolean" } },
  required: ["city", "temperature", "sunny"],
  additionalProperties: false,
};
const Report = z.object({ city: z.string(), temperature: z.number(), sunny: z.boolean() });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- the `openai` package -------------------------------------------------------------------

const sdk = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const chatTools = [
  { type: "function", function: { name: "get_weather", parameters: WEATHER_SCHEMA } },
];
const responseTools = [
  { type: "function", name: "get_weather", parameters: WEATHER_SCHEMA, strict: true },
];

const openaiChat = {
  async plain() {
    const c = await sdk.chat.completions.create({ model: "sim", messages: [{ role: "user", content: QUESTION }] });
    return { text: c.choices[0].message.content, tokens: c.usage.total_tokens };
  },
  async stream() {
    const stream = await sdk.chat.completions.create({
      model: "sim", messages: [{ role: "user", content: QUESTION }], stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let tokens = 0;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      tokens = chunk.usage?.total_tokens ?? tokens;
    }
    return { text, tokens };
  },
  async history() {
    const c = await sdk.chat.completions.create({
      model: "sim", tools: chatTools,
      messages: [
        { role: "user", content: "weather in Paris?" },
        { role: "assistant", content: null, tool_calls: [{ id: "call_earlier", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] },
        { role: "tool", tool_call_id: "call_earlier", content: FORECAST },
        { role: "assistant", content: "It is 18 degrees and sunny." },
        { role: "user", content: QUESTION },
      ],
    });
    return { text: c.choices[0].message.content };
  },
  async tool_round_trip() {
    const messages = [{ role: "user", content: ASK_WEATHER }];
    const first = await sdk.chat.completions.create({ model: "sim", messages, tools: chatTools });
    const message = first.choices[0].message;
    const call = message.tool_calls[0];
    messages.push(message, { role: "tool", tool_call_id: call.id, content: FORECAST });
    const final = await sdk.chat.completions.create({ model: "sim", messages, tools: chatTools });
    return { finish: first.choices[0].finish_reason, called: call.function.name, args: JSON.parse(call.function.arguments), text: final.choices[0].message.content };
  },
  async structured() {
    const c = await sdk.chat.completions.create({
      model: "sim", messages: [{ role: "user", content: "report the weather in Paris: 18 degrees" }],
      response_format: { type: "json_schema", json_schema: { name: "report", schema: REPORT_SCHEMA, strict: true } },
    });
    return { object: Report.parse(JSON.parse(c.choices[0].message.content)) };
  },
};

async function waitFor(id) {
  let response = await sdk.responses.retrieve(id);
  const deadline = Date.now() + 30000;
  while (response.status === "queued" || response.status === "in_progress") {
    if (Date.now() > deadline) throw new Error(`response ${id} still ${response.status}`);
    await sleep(50);
    response = await sdk.responses.retrieve(id);
  }
  return response;
}

const openaiResponses = {
  async plain() {
    const r = await sdk.responses.create({ model: "sim", input: QUESTION });
    return { text: r.output_text, tokens: r.usage.total_tokens, items: r.output.map((i) => i.type) };
  },
  async stream() {
    const stream = await sdk.responses.create({ model: "sim", input: QUESTION, stream: true });
    let text = "";
    const types = [];
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "response.output_text.delta") text += event.delta;
    }
    return { text, types };
  },
  async history() {
    const r = await sdk.responses.create({
      model: "sim", tools: responseTools, store: false,
      input: [
        { role: "user", content: "weather in Paris?" },
        { type: "function_call", call_id: "call_earlier", name: "get_weather", arguments: '{"city":"Paris"}' },
        { type: "function_call_output", call_id: "call_earlier", output: FORECAST },
        { role: "assistant", content: "It is 18 degrees and sunny." },
        { role: "user", content: QUESTION },
      ],
    });
    return { text: r.output_text };
  },
  async tool_round_trip() {
    const first = await sdk.responses.create({ model: "sim", input: ASK_WEATHER, tools: responseTools });
    const call = first.output.find((i) => i.type === "function_call");
    const final = await sdk.responses.create({
      model: "sim", tools: responseTools, previous_response_id: first.id,
      input: [{ type: "function_call_output", call_id: call.call_id, output: FORECAST }],
    });
    return { called: call.name, args: JSON.parse(call.arguments), text: final.output_text };
  },
  async structured() {
    const r = await sdk.responses.create({
      model: "sim", input: "report the weather in Paris: 18 degrees",
      text: { format: { type: "json_schema", name: "report", schema: REPORT_SCHEMA, strict: true } },
    });
    return { object: Report.parse(JSON.parse(r.output_text)) };
  },
  async background() {
    const queued = await sdk.responses.create({ model: "sim", input: QUESTION, background: true });
    const done = await waitFor(queued.id);
    return { first: queued.status, status: done.status, text: done.output_text };
  },
  async chain() {
    const tokens = [];
    let previous;
    let last;
    for (const input of ["My name is Ada.", "I live in Paris.", "What is my name?"]) {
      last = await sdk.responses.create({ model: "sim", input, previous_response_id: previous });
      previous = last.id;
      tokens.push(last.usage.input_tokens);
    }
    return { tokens, text: last.output_text, previous: last.previous_response_id };
  },
};

// --- the Vercel AI SDK ----------------------------------------------------------------------

const provider = createOpenAI({ baseURL, apiKey });
const weatherTool = tool({
  description: "The weather now",
  inputSchema: z.object({ city: z.string() }),
  execute: async () => FORECAST,
});
const aiHistory = [
  { role: "user", content: "weather in Paris?" },
  { role: "assistant", content: [{ type: "tool-call", toolCallId: "call_earlier", toolName: "get_weather", input: { city: "Paris" } }] },
  { role: "tool", content: [{ type: "tool-result", toolCallId: "call_earlier", toolName: "get_weather", output: { type: "text", value: FORECAST } }] },
  { role: "assistant", content: "It is 18 degrees and sunny." },
  { role: "user", content: QUESTION },
];

function vercel(model) {
  return {
    async plain() {
      const r = await generateText({ model, prompt: QUESTION, maxRetries: 0 });
      return { text: r.text, tokens: r.usage.totalTokens };
    },
    async stream() {
      const r = streamText({ model, prompt: QUESTION, maxRetries: 0 });
      let text = "";
      for await (const part of r.textStream) text += part;
      return { text, tokens: (await r.usage).totalTokens };
    },
    async history() {
      const r = await generateText({ model, messages: aiHistory, tools: { get_weather: weatherTool }, maxRetries: 0 });
      return { text: r.text };
    },
    async tool_round_trip() {
      // The SDK runs the tool itself (client side) and sends the result back: two steps.
      const r = await generateText({
        model, prompt: ASK_WEATHER, tools: { get_weather: weatherTool }, stopWhen: stepCountIs(3), maxRetries: 0,
      });
      const calls = r.steps.flatMap((s) => s.toolCalls.map((c) => ({ name: c.toolName, args: c.input })));
      return { called: calls[0].name, args: calls[0].args, steps: r.steps.length, text: r.text };
    },
    async structured() {
      const r = await generateText({
        model, prompt: "report the weather in Paris: 18 degrees", output: Output.object({ schema: Report }), maxRetries: 0,
      });
      return { object: r.output };
    },
  };
}

const aiResponses = {
  ...vercel(provider("sim")),
  async background() {
    // The AI SDK has no background option: a fetch wrapper adds it, and the SDK must read the
    // queued response; then the response is polled.
    const backgrounded = createOpenAI({
      baseURL, apiKey,
      fetch: async (url, init) => {
        const body = JSON.parse(init.body);
        return fetch(url, { ...init, body: JSON.stringify({ ...body, background: true }) });
      },
    });
    const queued = await generateText({ model: backgrounded("sim"), prompt: QUESTION, maxRetries: 0 });
    const id = queued.providerMetadata.openai.responseId;
    const done = await waitFor(id);
    return { first: queued.finishReason, status: done.status, text: done.output_text };
  },
  async chain() {
    const tokens = [];
    let previousResponseId;
    let last;
    for (const prompt of ["My name is Ada.", "I live in Paris.", "What is my name?"]) {
      last = await generateText({
        model: provider("sim"), prompt, maxRetries: 0,
        providerOptions: { openai: { previousResponseId } },
      });
      previousResponseId = last.providerMetadata.openai.responseId;
      tokens.push(last.usage.inputTokens);
    }
    return { tokens, text: last.text, previous: previousResponseId };
  },
};

const clients = {
  "openai-chat": openaiChat,
  "openai-responses": openaiResponses,
  "ai-chat": vercel(provider.chat("sim")),
  "ai-responses": aiResponses,
};

const [clientName, scenario] = process.argv.slice(2);
try {
  const run = clients[clientName]?.[scenario];
  if (run === undefined) throw new Error(`unknown client or scenario: ${clientName} ${scenario}`);
  console.log(JSON.stringify(await run()));
} catch (error) {
  console.error(error?.stack ?? String(error));
  if (error?.responseBody) console.error(error.responseBody);
  process.exit(1);
}

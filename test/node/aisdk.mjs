// Drives paygate with the Vercel AI SDK (`ai` with `@ai-sdk/openai`'s Chat
// Completions model, openai.chat, or `@ai-sdk/openai-compatible`'s), the way
// a bot written with it does.
// Usage: PAYGATE_URL=http://host:port/v1 PAYGATE_KEY=… node aisdk.mjs <mode>
// Prints one JSON object on stdout for the Go test to check.
//
// The AI SDK validates every chunk against its own schema, always asks for
// usage when streaming (stream_options.include_usage), and retries a
// 408/409/429/5xx on its own whatever x-should-retry says (PAYGATE_RETRIES:
// its maxRetries, 0 unless set; its default is 2).
import { createOpenAI } from "@ai-sdk/openai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { APICallError, RetryError, generateText, isStepCount, streamText, tool } from "ai";
import { z } from "zod";

// PAYGATE_AISDK_PROVIDER=compatible: @ai-sdk/openai-compatible's chat model
// (its own chunk schema and tool-call tracker), as for a provider the
// openai package does not cover; else @ai-sdk/openai's openai.chat.
const settings = {
  baseURL: process.env.PAYGATE_URL,
  apiKey: process.env.PAYGATE_KEY,
  headers: process.env.PAYGATE_OPENID ? { "X-WeChat-OpenID": process.env.PAYGATE_OPENID } : {},
};
const model = process.env.PAYGATE_AISDK_PROVIDER === "compatible"
  ? createOpenAICompatible({ ...settings, name: "paygate", includeUsage: true }).chatModel(process.env.PAYGATE_MODEL)
  : createOpenAI(settings).chat(process.env.PAYGATE_MODEL);
const maxRetries = Number(process.env.PAYGATE_RETRIES ?? 0);
const [kind, ...flags] = (process.argv[2] ?? "").split(":");
const stream = flags.includes("stream");

// The bot's own tool, for the mixed modes: the SDK runs every call it gets
// of a tool in its list, and a call of one not in it (a payment tool that
// reached it) is a tool-error in its steps.
const called = [];
// opts: the members the AI SDK sends that the openai SDK's bots rarely do
// (a strict tool schema, parallel_tool_calls, a token cap).
const opts = flags.includes("opts");
const weather = tool({
  description: "The weather in a city", ...(opts ? { strict: true } : {}),
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => { called.push(city); return { celsius: 21 }; },
});

function describe(err) {
  // RetryError wraps the last try's APICallError (reason maxRetriesExceeded).
  const tries = RetryError.isInstance(err) ? err.errors.length : 1;
  const last = RetryError.isInstance(err) ? err.lastError : err;
  return {
    error: String(err), name: err?.name ?? null, tries,
    status: APICallError.isInstance(last) ? last.statusCode ?? null : null,
    message: last?.message ?? null,
    retryable: APICallError.isInstance(last) ? last.isRetryable : null,
    code: last?.data?.error?.code ?? null,
    // The error's paygate member (a failed turn's order): the SDK's parsed
    // error (data) keeps only the members of its schema, so a bot reads it
    // from the response's body.
    paygate: parseBody(last?.responseBody)?.error?.paygate ?? null,
    called,
  };
}

function parseBody(body) {
  try {
    return typeof body === "string" ? JSON.parse(body) : null;
  } catch {
    return null;
  }
}

async function main() {
  const params = {
    model, maxRetries, prompt: "Say hello",
    ...(kind === "mixed" ? { tools: { get_weather: weather }, stopWhen: isStepCount(4) } : {}),
    ...(opts ? { maxOutputTokens: 500, providerOptions: {
      openai: { parallelToolCalls: false },
      paygate: { parallel_tool_calls: false }, // the compatible provider's: members sent as named
    } } : {}),
  };
  if (!stream) {
    let r;
    try {
      // include.responseBody: each step's answer as paygate sent it, where
      // a bot finds the paygate member (the first round's, a purchase's).
      r = await generateText({ ...params, include: { responseBody: true } });
    } catch (err) {
      return describe(err);
    }
    const steps = await r.steps;
    return summary(r, steps, steps.map((s) => s.response?.body?.paygate).find(Boolean) ?? null);
  }
  // Streaming: the raw chunks (includeRawChunks) are where a bot finds the
  // paygate member, which the SDK's parts do not carry.
  let paygate = null, error = null;
  const parts = [];
  const r = streamText({
    ...params, includeRawChunks: true,
    onError: ({ error: e }) => { error ??= e; },
  });
  for await (const p of r.fullStream) {
    if (p.type === "raw" && p.rawValue?.paygate) paygate = p.rawValue.paygate;
    if (p.type === "error") error ??= p.error;
    if (p.type !== "raw") parts.push(p.type);
  }
  // An error part does not end fullStream: the parts after it (a tool-call
  // the SDK flushes) are the output too, and called what its loop ran.
  if (error) return { ...describe(error), parts, paygatePart: paygate };
  const steps = await r.steps;
  return { ...summary({ text: await r.text, finishReason: await r.finishReason, totalUsage: await r.totalUsage }, steps, paygate), parts };
}

function summary(r, steps, paygate) {
  return {
    text: r.text, finish: r.finishReason, called,
    usage: r.totalUsage ? { input: r.totalUsage.inputTokens, output: r.totalUsage.outputTokens, total: r.totalUsage.totalTokens } : null,
    steps: steps.map((s) => ({
      finish: s.finishReason, text: s.text,
      toolCalls: s.toolCalls.map((c) => ({ id: c.toolCallId, name: c.toolName, input: c.input })),
      errors: s.content.filter((c) => c.type === "tool-error").map((c) => `${c.toolName}: ${c.error}`),
    })),
    paygate,
  };
}

main().then(
  (out) => { process.stdout.write(JSON.stringify(out) + "\n"); },
  (err) => { process.stdout.write(JSON.stringify({ ...describe(err), uncaught: true }) + "\n"); process.exitCode = 1; },
);

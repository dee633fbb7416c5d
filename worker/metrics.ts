/**
 * Request counts and latencies by route and status, kept in the isolate that
 * served them (a Worker has many isolates at the edge; each /metrics scrape
 * sees the one that answers it, labelled with its `isolate` id).
 */
let isolate: string | null = null;
/** Made on first use: Workers forbid random values at global scope. */
const isolateId = () => (isolate ??= crypto.randomUUID().slice(0, 8));

/** Latency buckets in ms (Prometheus `le`). */
const BUCKETS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000];

interface Series {
  count: number;
  sumMs: number;
  buckets: number[];
}

const requests = new Map<string, Series>();

export function observeRequest(method: string, route: string, status: number, ms: number): void {
  const key = `${method} ${route} ${status}`;
  let s = requests.get(key);
  if (!s) requests.set(key, (s = { count: 0, sumMs: 0, buckets: BUCKETS.map(() => 0) }));
  s.count++;
  s.sumMs += ms;
  BUCKETS.forEach((le, i) => {
    if (ms <= le) s!.buckets[i]++;
  });
}

/** Escapes a Prometheus label value. */
export const label = (v: string | number) => String(v).replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");

export function requestMetrics(): string[] {
  const lines = [
    "# HELP edgeq_http_requests_total HTTP requests served by this isolate, by route and status.",
    "# TYPE edgeq_http_requests_total counter",
  ];
  const hist = [
    "# HELP edgeq_http_request_duration_ms Time to answer, in milliseconds, by route.",
    "# TYPE edgeq_http_request_duration_ms histogram",
  ];
  for (const [key, s] of requests) {
    const [method, route, status] = key.split(" ");
    const l = `isolate="${isolateId()}",method="${method}",route="${label(route)}",status="${status}"`;
    lines.push(`edgeq_http_requests_total{${l}} ${s.count}`);
    BUCKETS.forEach((le, i) => hist.push(`edgeq_http_request_duration_ms_bucket{${l},le="${le}"} ${s.buckets[i]}`));
    hist.push(`edgeq_http_request_duration_ms_bucket{${l},le="+Inf"} ${s.count}`);
    hist.push(`edgeq_http_request_duration_ms_sum{${l}} ${s.sumMs}`);
    hist.push(`edgeq_http_request_duration_ms_count{${l}} ${s.count}`);
  }
  return [...lines, ...hist];
}

import { describe, expect, it } from "vitest";
import { taskWrites } from "../../durable/task-writes";
import type { TaskRow } from "../../schema/shard";

// Which values of a batch's task writes are bound once and which ride in each row's JSON (what
// SQLite stores from either is checked on a Durable Object in test/workerd/engine-sqlite.test.ts).
const lease = (i: number, extra: Partial<TaskRow> = {}): [string, Partial<TaskRow>] => [
  `t${i}`,
  { status: "running", workerId: "w1", leaseToken: `token-${i}`, startedAt: 2_000, dueAt: 32_000, ...extra },
];

describe("a batch's task writes", () => {
  it("bind the values every row shares once, and carry in each row's JSON only what differs", () => {
    const [statement, ...rest] = taskWrites([], [lease(0), lease(1), lease(2)], []);
    expect(rest).toEqual([]);
    expect(statement.sql).toContain("status = ?, worker_id = ?, started_at = ?, due_at = ?, lease_token = u.lease_token");
    expect(statement.params).toEqual([
      JSON.stringify([
        ["t0", "token-0"],
        ["t1", "token-1"],
        ["t2", "token-2"],
      ]),
      "running",
      "w1",
      2_000,
      32_000,
    ]);
  });

  it("share nothing for a lone row, and never a value that binds other than its JSON reads (a boolean, an infinity)", () => {
    const [alone] = taskWrites([], [lease(0)], []);
    expect(alone.params).toHaveLength(1);
    const odd = { sealed: true as unknown as number, dueAt: Infinity };
    const [statement] = taskWrites([], [lease(0, odd), lease(1, odd)], []);
    expect(statement.sql).toMatch(/sealed = u\.sealed/);
    expect(statement.sql).toMatch(/due_at = u\.due_at/);
    expect(statement.params.slice(1)).toEqual(["running", "w1", 2_000]);
  });
});

import init from "./0001_init.sql";
import dependencies from "./0002_dependencies.sql";
import children from "./0003_children.sql";
import groups from "./0004_groups.sql";
import readySplit from "./0005_ready_split.sql";
import keys from "./0006_keys.sql";
import mailDead from "./0007_mail_dead.sql";
import statusLists from "./0008_status_lists.sql";
import historyDead from "./0009_history_dead.sql";
import leaseBatches from "./0010_lease_batches.sql";
import taskBodies from "./0011_task_bodies.sql";

/** QueueShard storage migrations, applied in order, each once (see durable/migrate.ts). */
export const SHARD_MIGRATIONS: { name: string; sql: string }[] = [
  { name: "0001_init", sql: init },
  { name: "0002_dependencies", sql: dependencies },
  { name: "0003_children", sql: children },
  { name: "0004_groups", sql: groups },
  { name: "0005_ready_split", sql: readySplit },
  { name: "0006_keys", sql: keys },
  { name: "0007_mail_dead", sql: mailDead },
  { name: "0008_status_lists", sql: statusLists },
  { name: "0009_history_dead", sql: historyDead },
  { name: "0010_lease_batches", sql: leaseBatches },
  { name: "0011_task_bodies", sql: taskBodies },
];

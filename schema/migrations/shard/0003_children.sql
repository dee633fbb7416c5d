-- Parents and children (see docs/ARCHITECTURE.md, "Parents and children").
-- wait_for_children: 1 when the parent runs only after its children finish;
-- sealed: 1 once no more children will come; children: JSON counts {total, completed, failed, cancelled}.
ALTER TABLE tasks ADD COLUMN wait_for_children INTEGER;
ALTER TABLE tasks ADD COLUMN sealed INTEGER;
ALTER TABLE tasks ADD COLUMN children TEXT;

-- Kept by the parent's shard: each child, its outcome ('active' until it finishes) and result.
CREATE TABLE children (
  parent_id TEXT NOT NULL,
  child_id TEXT NOT NULL,
  status TEXT NOT NULL,
  result TEXT,
  PRIMARY KEY (parent_id, child_id)
) WITHOUT ROWID;

-- 0006 worker abandoned threads: how many handler threads each worker has given up at
-- their step's timeout and that have not returned yet (reported with every heartbeat).
ALTER TABLE tasker.workers ADD COLUMN abandoned_threads integer NOT NULL DEFAULT 0;

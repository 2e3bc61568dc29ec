"""The on-disk queue, importing no other subpackage: spec (the job spec), states, paths (every file
name), ids, store (enqueue, look up, move), claim, lease, workers (heartbeat files), reaper (recovering
orphaned claims), control (cancel, retry), attempts (one record per attempt), security (who may write)."""

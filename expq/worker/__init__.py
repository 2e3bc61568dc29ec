"""Running jobs: loop (the Worker: slots, supervision, heartbeat, recovery), job (start and finish one
job), child (its process tree), cgroup (one cgroup per job where possible), gpus (ids and locks),
lock_dir (the host's lock folder), host_reaper (one orphan reaper per host), start_turn (workers
starting together take turns), envfile (run.env), result (result.json), signals, main (the CLI entry)."""

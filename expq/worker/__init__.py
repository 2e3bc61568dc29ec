"""Running jobs: loop (the Worker: slots, supervision, heartbeat, recovery), job (start and finish one
job), child (its process tree), cgroup (one cgroup per job where possible), gpus (ids and locks),
envfile (run.env), result (result.json), signals, main (the CLI entry)."""

"""The command line, the only part that talks to people: entry (the console script's first lines),
cli (argparse and one handler per command), argtypes (value types), submit/sweep/template (building
job specs), report/render/run_files (status, show), logs, runs/plot/export/ui/slurm commands.
Command modules import nothing heavy at module level."""

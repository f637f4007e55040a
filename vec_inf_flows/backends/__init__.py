"""Where jobs run: a Slurm cluster, or (without Slurm) detached local processes."""

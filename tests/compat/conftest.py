"""vec-inf compatibility: scripts, JSON and jobs written for or by vec-inf, on the real local
Slurm cluster with the simulator. Tests that touch the cluster take the ``sandbox`` fixture."""

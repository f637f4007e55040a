"""The Slurm backend, in psij-style seams: ``commands`` builds argv (pure), ``parse`` reads
output (pure), ``runner`` runs one command, ``errors`` classifies a failure, and ``backend``
adds the policies (retry, one query per poll, idempotent submit)."""

"""The write API: receives commands over HTTP and hands them to the command bus. Nothing else."""

"""Real inference engines prepared on this machine (the CPU build of vLLM and small models)."""

"""lm-eval task YAMLs and their local data (the bundled evaluation set)."""

"""``python -m vec_inf_flows.sim serve ...``: the entry point job scripts run instead of vLLM."""

from vec_inf_flows.sim.cli import main

raise SystemExit(main())

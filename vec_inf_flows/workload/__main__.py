import sys

from vec_inf_flows.workload.cli import main

sys.exit(main())

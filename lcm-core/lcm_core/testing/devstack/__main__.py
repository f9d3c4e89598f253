import sys

from lcm_core.testing.devstack.stack import main

sys.exit(main())

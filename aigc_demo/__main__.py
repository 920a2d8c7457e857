import sys

from aigc_demo.cli import main

sys.exit(main())

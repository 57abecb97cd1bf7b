"""Start the courselab app: `python app.py [--host H] [--port P] [--auth-file FILE]`.

The same as `courselab app`; see `courselab app --help` for every option.
"""

import sys

from assistant.cli import main

if __name__ == "__main__":
    main(["app", *sys.argv[1:]])

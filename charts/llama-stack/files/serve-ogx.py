"""`ogx run`, with credentials masked in every log line the server writes.

The masking is serve.py's, loaded from the same directory (one definition for both servers):
its log record factory masks credential-looking query parameters, `Authorization` values and
JSON `"api_key": "..."`-style fields in every record, uvicorn's and OGX's alike. This launcher
installs it, then runs the `ogx run` entry point with the same arguments.

Usage: python serve-ogx.py /etc/ogx/config.yaml --port 8321
"""

import logging
import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    masking = runpy.run_path(str(Path(__file__).with_name("serve.py")))  # not as __main__: defines only
    logging.setLogRecordFactory(masking["_record"])
    from ogx.cli.ogx import main

    sys.argv = ["ogx", "run", *sys.argv[1:]]
    sys.exit(main())

#!/usr/bin/env python3
"""CDK entry point: `cdk synth` (all environments) or `cdk synth -c env=dev`."""

import sys

from llmops.app import build_app
from llmops.config import ConfigError

try:
    build_app().synth()
except ConfigError as err:
    # A config mistake is the user's to fix: show the message, not a jsii stack trace.
    print(f"error: {err}", file=sys.stderr)
    sys.exit(2)

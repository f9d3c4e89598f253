"""`lcm`: the command tree, and the one place that turns an expected failure into a one-line message and a
non-zero exit (1: the API refused or could not be reached; 2: the command line itself was wrong; 130: Ctrl-C).
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from lcm_cli.commands import auth, costs, definitions, events, pools, sessions, workers
from lcm_cli.commands.common import Context, UsageError, seconds
from lcm_cli.config import CredentialStore, config_dir, resolve
from lcm_cli.transport.client import ApiClient, ApiError, Credentials

EPILOG = """\
configuration (first found wins):
  API URL       --api-url, LCM_API_URL, else http://127.0.0.1:8030
  credentials   --token, LCM_TOKEN (a bearer token), else the session `lcm login` kept for that URL
  local stack   source .lcm/dev/stack.env   (after `make run`: sets LCM_API_URL and LCM_TOKEN)

exit status: 0 done, 1 the API refused (401, 403, 404, 409, 422, ...) or could not be reached, 2 bad usage
"""


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="lcm", description="Operate Lablet Cloud Manager through the control-plane API.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    root.add_argument("--api-url", metavar="URL", help="the control-plane API (default: LCM_API_URL)")
    root.add_argument("--token", metavar="TOKEN", help="a bearer token (default: LCM_TOKEN, else `lcm login`)")
    root.add_argument("--json", action="store_true", help="print the API's JSON instead of tables (for scripts)")
    root.add_argument("--timeout", type=seconds, default=30.0, metavar="SECONDS", help="per request (default 30)")
    root.set_defaults(handler=None, usage_of=root)
    sub = root.add_subparsers(title="commands", metavar="COMMAND")
    for module in (workers, sessions, definitions, pools, events, costs, auth):
        module.register(sub)
    return root


def _stop_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # `timeout lcm events tail`, a supervisor: end like Ctrl-C, without a traceback


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.handler is None:
        args.usage_of.print_help(sys.stderr)
        return 2
    store = CredentialStore(config_dir())
    target = resolve(args.api_url, args.token, store)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # Explicitly: a shell running `lcm events tail &` without job control starts it with SIGINT ignored, and
    # `kill -INT` (what Ctrl-C sends) would then never end it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with ApiClient(target.api_url, Credentials(target.token, target.session), timeout=args.timeout) as api:
            return args.handler(Context(api=api, target=target, store=store, json=args.json), args)
    except ApiError as exc:
        print(f"lcm: {exc.message}", file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"lcm: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Ctrl-C ends a tail the usual way (0); anything else it interrupted did not finish (130).
        return 0 if args.handler is events.tail_handler else 130
    except BrokenPipeError:
        # `lcm ... | head`: the reader went away; nothing more to say.
        sys.stderr.close()
        return 0


def run() -> None:
    sys.exit(main())

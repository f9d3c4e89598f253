"""`lcm login|logout|whoami`: a session of the API's login (`/api/auth/login`), kept for the API URL it was
opened at (see `lcm_cli.config`). The password is sent once and never stored or printed."""

from __future__ import annotations

import argparse
import getpass
import os

from lcm_cli.commands.common import Context, Subparsers, UsageError, command
from lcm_cli.config import StoredSession
from lcm_cli.transport.client import ApiClient, ApiError, Credentials


def _ask(prompt: str, secret: bool) -> str:
    try:
        return getpass.getpass(prompt) if secret else input(prompt)
    except (EOFError, OSError):  # no terminal, stdin closed or not readable
        raise UsageError(f"no {prompt.strip(': ').lower()} given (set LCM_USERNAME / LCM_PASSWORD)") from None


def _login(ctx: Context, args: argparse.Namespace) -> int:
    username = args.username or os.environ.get("LCM_USERNAME") or _ask("Username: ", secret=False)
    password = os.environ.get("LCM_PASSWORD") or _ask("Password: ", secret=True)
    if not username or not password:
        raise UsageError("a username and a password are needed")
    session, me = ctx.api.login(username, password)
    roles = [str(r) for r in me.get("roles", [])]
    ctx.store.put(StoredSession(ctx.target.api_url, session, str(me.get("subject", username)), roles))
    ctx.emit({"api_url": ctx.target.api_url, "subject": me.get("subject"), "roles": roles},
             lambda: f"logged in to {ctx.target.api_url} as {me.get('subject')} (roles: {', '.join(roles) or '-'}); "
                     f"session kept in {ctx.store.path}")
    if ctx.target.source in ("--token", "LCM_TOKEN"):
        ctx.note(f"note: {ctx.target.source} is set and wins over this session")
    return 0


def _logout(ctx: Context, args: argparse.Namespace) -> int:
    stored = ctx.store.get(ctx.target.api_url)
    if stored is None:
        ctx.note(f"no session kept for {ctx.target.api_url}")
        return 0
    ended_on_server = True
    try:
        with ApiClient(ctx.target.api_url, Credentials(session=stored.session)) as api:
            api.logout()
    except ApiError as exc:
        ended_on_server = False
        ctx.note(f"the API did not end the session ({exc.message}); forgetting it here anyway")
    ctx.store.remove(ctx.target.api_url)
    ctx.print(f"logged out of {ctx.target.api_url}" + ("" if ended_on_server else " (here only)"))
    return 0


def _whoami(ctx: Context, args: argparse.Namespace) -> int:
    me = ctx.api.get("/api/auth/me")
    ctx.emit({**me, "api_url": ctx.target.api_url, "credentials": ctx.target.source},
             lambda: f"{me.get('subject')} at {ctx.target.api_url} (roles: {', '.join(me.get('roles', [])) or '-'}; "
                     f"via {ctx.target.source})")
    return 0


def register(root: Subparsers) -> None:
    login = command(root, "login", "log in with a username and password (LCM_USERNAME/LCM_PASSWORD or a prompt)",
                    _login)
    login.add_argument("--username", "-u", help="default: LCM_USERNAME, else asked")
    command(root, "logout", "end the kept session (on the API too) and forget it", _logout)
    command(root, "whoami", "who the API sees, with which roles and credentials", _whoami)

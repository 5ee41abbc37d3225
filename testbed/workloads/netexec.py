"""An agnhost ``netexec``-compatible server (HTTP + UDP [+ SCTP]), stdlib and asyncio only.

Run once per pod as::

    python3 -m testbed.workloads.netexec [netexec] [--http-port=8080] [--udp-port=8081]
        [--sctp-port=-1] [--http-override=PATH] [--udp-listen-addresses=A,B]
        [--delay-shutdown=N] [--tls-cert-file=F --tls-private-key-file=K]

Flags follow agnhost's spelling (``--flag=value`` or ``--flag value``); a leading
``netexec`` word is accepted because pod specs pass ``args: ["netexec", ...]``;
unknown flags are ignored with a warning; ``--udp-port=-1`` disables UDP.
``--listen-address=IP`` is a testbed extension binding HTTP (and default UDP/SCTP)
to one address instead of all of them.

Endpoints: ``/`` ``/echo`` ``/hostname`` ``/hostName`` ``/clientip`` ``/header``
``/healthz`` ``/readyz`` ``/exit`` ``/shutdown`` ``/shell`` ``/redirect`` ``/dial``
``/upload``; UDP/SCTP commands ``hostname``, ``echo <msg>``, ``clientip``.
SIGTERM makes ``/readyz`` answer 503, then exits 0 after ``--delay-shutdown`` seconds.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from testbed.workloads.netexec_core import App, Options, log, warn

#: agnhost flag name -> (Options attribute, value type)
FLAGS: dict[str, tuple[str, type]] = {
    "http-port": ("http_port", int),
    "udp-port": ("udp_port", int),
    "sctp-port": ("sctp_port", int),
    "http-override": ("http_override", str),
    "udp-listen-addresses": ("udp_listen_addresses", str),
    "delay-shutdown": ("delay_shutdown", int),
    "tls-cert-file": ("tls_cert_file", str),
    "tls-private-key-file": ("tls_private_key_file", str),
    "listen-address": ("listen_address", str),
}


class UsageError(Exception):
    """Invalid command line (reported on stderr, exit status 1 like cobra)."""


def _parse_int(text: str, flag: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        try:
            return int(text)
        except ValueError:
            raise UsageError(f'invalid argument "{text}" for "--{flag}" flag: '
                             "parse error") from None


def parse_args(argv: list[str]) -> Options:
    """Parse agnhost-style ``netexec`` arguments into :class:`Options`.

    Raises :class:`UsageError` for a malformed value of a known flag and
    ``SystemExit(0)`` for ``-h``/``--help``.
    """
    opts = Options()
    args = list(argv)
    if args and args[0] == "netexec":
        args.pop(0)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            for extra in args[i:]:
                warn(f"ignoring positional argument {extra!r}")
            break
        if not arg.startswith("-") or arg == "-":
            warn(f"ignoring positional argument {arg!r}")
            continue
        name, has_value, value = arg.lstrip("-").partition("=")
        if name in ("h", "help"):
            sys.stdout.write(__doc__ or "")
            raise SystemExit(0)
        if name not in FLAGS:
            if not has_value and i < len(args) and not args[i].startswith("-"):
                value = args[i]
                i += 1
            warn(f"ignoring unknown flag --{name}" + (f"={value}" if value else ""))
            continue
        if not has_value:
            if i >= len(args):
                raise UsageError(f"flag needs an argument: --{name}")
            value = args[i]
            i += 1
        attr, kind = FLAGS[name]
        setattr(opts, attr, _parse_int(value, name) if kind is int else value)
    return opts


async def serve(opts: Options) -> None:
    """Start every listener of ``opts`` and serve forever (exit happens via ``App.exit``)."""
    from testbed.workloads import netexec_net as net
    from testbed.workloads.netexec_handlers import ROUTES, root
    from testbed.workloads.netexec_http import HTTPServer, start_http

    app = App(opts)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: loop.create_task(app.on_sigterm()))
    loop.add_signal_handler(signal.SIGINT, app.exit, 130)
    try:
        if opts.udp_port != -1:
            await net.start_udp(app)
        if opts.sctp_port != -1:
            await net.start_sctp(app)
        await start_http(app, HTTPServer(app, ROUTES, root, opts.http_override))
    except OSError as exc:
        sys.stderr.write(f"netexec: failed to start: {exc}\n")
        app.exit(1)
    log(f"Started HTTP server on port {opts.http_port}")
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (``python3 -m testbed.workloads.netexec``)."""
    try:
        opts = parse_args(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        raise SystemExit(1) from None
    asyncio.run(serve(opts))


if __name__ == "__main__":
    main()
